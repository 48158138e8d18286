"""`ecdiff search`: the two-stage greedy search on a model pair and a prompt set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import SearchConfig
from .evaluator import PipelineEvaluator
from .pair import add_pair_arguments, pair_from_args
from .prompts import read_prompts
from .runner import run_search


def run(args) -> int:
    try:
        overrides = {name: value for name, value in (
            ("num_steps", args.steps), ("pre_steps", args.pre_steps),
            ("weights", tuple(args.weights) if args.weights else None)) if value is not None}
        config = SearchConfig.from_toml(args.config, **overrides) if args.config else SearchConfig(**overrides)
        items = read_prompts(args.prompts, args.seed)
        pair = pair_from_args(args)
        print(f"models: {pair.name}; {len(items)} prompts; {config.num_steps} steps; p = {config.pre_steps}", file=sys.stderr)
        evaluator = PipelineEvaluator(pair, items, config.num_steps)
        outcome = run_search(config, evaluator, args.cache or args.out / "cache", args.out)
    except ValueError as exc:
        print(f"ecdiff search: error: {exc}", file=sys.stderr)
        return 2
    best = outcome.best
    print(f"best: p={best.pre_steps} k={best.k} alpha={best.alpha} s={best.switch_step} "
          f"(objective {outcome.objective:.4f}); written to {args.out / 'ecdiff.toml'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="two-stage greedy search of EC-Diff's k, alpha and s",
                                   description=__doc__ + " See docs/search.md.")
    add_pair_arguments(parser)
    parser.add_argument("--prompts", type=Path, required=True, help="prompt file (lines, or TSV with prompt[/seed])")
    parser.add_argument("--seed", type=int, default=0, help="first seed for prompts without one (default: 0)")
    parser.add_argument("--config", type=Path, help="TOML file with a [search] table (grids, starts, weights, ...)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: config, 50)")
    parser.add_argument("--pre-steps", type=int, help="p (default: config, 7); see `ecdiff noise-curve`")
    parser.add_argument("--weights", type=float, nargs=3, metavar=("W_SSIM", "W_EFF", "W_BURDEN"))
    parser.add_argument("--out", type=Path, default=Path("out/search"), help="output folder (default: out/search)")
    parser.add_argument("--cache", type=Path, help="measurement cache folder (default: OUT/cache)")
    parser.set_defaults(func=run)
