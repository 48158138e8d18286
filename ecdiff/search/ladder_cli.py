"""`ecdiff ladder`: measure cheaper EC-Diff points than the shipped one and keep the Pareto-optimal
ladder the cloud may serve under load (load-adaptive quality)."""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
from pathlib import Path

from ..cli_options import add_pair_arguments, pair_from_args
from ..loading import load_scorer
from ..strategy_config import DEFAULT_FRONTIER_PATH, StrategyDefaults
from .cli import add_output_arguments, reproducing_command
from .evaluator import PipelineEvaluator
from .ladder import DEFAULT_PRE_STEPS, DEFAULT_SWITCH_STEPS, RESULT_FILE, run_ladder
from .prompts import add_prompt_arguments, read_prompts


def run(parser: argparse.ArgumentParser, args) -> int:
    try:
        base = StrategyDefaults.load(args.strategy_config)
        items = read_prompts(args.prompts, args.seed)
        pair = pair_from_args(args)
        steps = args.steps or base.num_steps
        print(f"models: {pair.name}; {len(items)} prompts; {steps} steps", file=sys.stderr)
        evaluator = PipelineEvaluator(pair, items, steps, scorer=load_scorer())
        source = (f"Model pair {pair.name}, guidance {pair.guidance}; prompts {args.prompts} ({len(items)}, "
                  f"seeds {items[0].seed}..{items[-1].seed}).")
        outcome = run_ladder(evaluator, args.cache or args.out / "cache", args.out, base, args.pre_steps_grid,
                             args.switch_steps, source, reproducing_command(parser, args))
    except (ValueError, FileNotFoundError) as exc:
        print(f"ecdiff ladder: error: {exc}", file=sys.stderr)
        return 2
    for point in (outcome.shipped, *outcome.frontier.points):
        fidelity = "n/a" if point.fidelity is None else f"{point.fidelity:.1f}"
        print(f"p {point.pre_steps} s {point.switch_step}: {point.cloud_calls} cloud calls, SSIM {point.ssim:.4f}, "
              f"fidelity {fidelity}{' (shipped)' if point is outcome.shipped else ''}")
    print(f"{len(outcome.frontier.points)} of {len(outcome.measured)} candidates kept; written to {args.out / RESULT_FILE}")
    if args.install is not None:
        shutil.copyfile(args.out / RESULT_FILE, args.install)
        print(f"installed as {args.install}: a cloud with adaptive quality on now serves this ladder")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ladder", help="measure cheaper EC-Diff points for load-adaptive quality",
                                   description=__doc__ + " See docs/services.md, 'Load-adaptive quality'.")
    add_pair_arguments(parser)
    add_prompt_arguments(parser)
    parser.add_argument("--steps", type=int, help="denoising steps (default: the strategy config's, 50)")
    parser.add_argument("--pre-steps-grid", type=int, nargs="+", default=DEFAULT_PRE_STEPS, metavar="P",
                        help=f"p values to try (default: {' '.join(map(str, DEFAULT_PRE_STEPS))})")
    parser.add_argument("--switch-steps", type=int, nargs="+", default=DEFAULT_SWITCH_STEPS, metavar="S",
                        help=f"s values to try (default: {' '.join(map(str, DEFAULT_SWITCH_STEPS))})")
    add_output_arguments(parser, "out/ladder", "the shipped point the ladder descends from", DEFAULT_FRONTIER_PATH,
                         "read by a cloud with adaptive quality on")
    parser.set_defaults(func=functools.partial(run, parser))
