"""`ecdiff noise-curve`: mean ||eps_i - eps_(i-1)|| per step over a prompt set, its plot, and p."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..conventions import DEFAULT_NUM_STEPS
from .noise_curve import noise_differences, plot_curve, propose_p
from ..cli_options import add_pair_arguments, pair_from_args
from .prompts import add_prompt_arguments, read_prompts


def run(args) -> int:
    try:
        items = read_prompts(args.prompts, args.seed)
        pair = pair_from_args(args)
        curve = noise_differences(pair, items, args.steps)
        p = propose_p(curve, args.fraction)
    except ValueError as exc:
        print(f"ecdiff noise-curve: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rule = f"p = 1 + first i with mean d_i <= min + {args.fraction} * (max - min)"
    (args.out / "curve.json").write_text(json.dumps(
        {"models": pair.name, "num_steps": args.steps, "prompts": [[i.prompt, i.seed] for i in items],
         "rule": rule, "fraction": args.fraction, "proposed_p": p, "curve": curve.as_dict()}, indent=1) + "\n")
    plot_curve(curve, p, args.out / "curve.png", f"noise difference per step, {pair.name}, {len(items)} prompts")
    print(f"proposed p = {p} ({rule}); curve in {args.out}/curve.json and curve.png")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("noise-curve", help="plot the noise-difference curve and propose p",
                                   description=__doc__ + " See docs/search.md.")
    add_pair_arguments(parser)
    add_prompt_arguments(parser)
    parser.add_argument("--steps", type=int, default=DEFAULT_NUM_STEPS, help="denoising steps (default: 50)")
    parser.add_argument("--fraction", type=float, default=0.1, help="flatness threshold of the rule (default: 0.1)")
    parser.add_argument("--out", type=Path, default=Path("out/noise-curve"), help="output folder (default: out/noise-curve)")
    parser.set_defaults(func=run)
