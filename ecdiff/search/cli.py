"""`ecdiff search`: the two-stage greedy search on a model pair and a prompt set."""

from __future__ import annotations

import argparse
import functools
import shlex
import shutil
import sys
from pathlib import Path

from ..strategy_config import CONFIG_ENV, DEFAULT_CONFIG_PATH, StrategyDefaults
from .config import SearchConfig
from .evaluator import PipelineEvaluator
from ..cli_options import add_pair_arguments, pair_from_args
from .prompts import add_prompt_arguments, read_prompts
from .runner import RESULT_FILE, run_search


# Where the output goes, not what is searched: left out of the command a result's header gives.
_OUTPUT_OPTIONS = ("out", "cache", "install")


def reproducing_command(parser: argparse.ArgumentParser, args) -> str:
    """The command (`ecdiff search`, `ecdiff ladder`) with every option this run was given (in its
    documented spelling), apart from the output ones."""
    words = parser.prog.split()
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.help == argparse.SUPPRESS or action.dest in _OUTPUT_OPTIONS \
                or value is None or value is False or value == action.default:
            continue
        words.append(action.option_strings[0])
        if value is not True:  # a flag (--tiny) has no value
            words.extend(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    return shlex.join(words)


def run(parser: argparse.ArgumentParser, args) -> int:
    try:
        overrides = {name: value for name, value in (
            ("num_steps", args.steps), ("pre_steps", args.pre_steps),
            ("weights", tuple(args.weights) if args.weights else None)) if value is not None}
        config = SearchConfig.from_toml(args.config, **overrides) if args.config else SearchConfig(**overrides)
        base = StrategyDefaults.load(args.strategy_config)
        items = read_prompts(args.prompts, args.seed)
        pair = pair_from_args(args)
        print(f"models: {pair.name}; {len(items)} prompts; {config.num_steps} steps; p = {config.pre_steps}", file=sys.stderr)
        evaluator = PipelineEvaluator(pair, items, config.num_steps)
        source = (f"Model pair {pair.name}, guidance {pair.guidance}; prompts {args.prompts} ({len(items)}, "
                  f"seeds {items[0].seed}..{items[-1].seed}).")
        outcome = run_search(config, evaluator, args.cache or args.out / "cache", args.out, base, source,
                             reproducing_command(parser, args))
    except (ValueError, FileNotFoundError) as exc:
        print(f"ecdiff search: error: {exc}", file=sys.stderr)
        return 2
    best = outcome.best
    damping = f"alpha={best.alpha}" if best.rule == "paper" else f"beta={best.beta}"
    print(f"best: rule={best.rule} p={best.pre_steps} k={best.k} {damping} s={best.switch_step} "
          f"(objective {outcome.objective:.4f}); written to {args.out / RESULT_FILE}")
    if args.install is not None:
        shutil.copyfile(args.out / RESULT_FILE, args.install)
        print(f"installed as {args.install}: the services, the demo and `ecdiff bench` now use it")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="two-stage greedy search of EC-Diff's rule, k, alpha/beta and s",
                                   description=__doc__ + " See docs/search.md.")
    add_pair_arguments(parser)
    add_prompt_arguments(parser)
    parser.add_argument("--config", type=Path, help="TOML file with a [search] table (grids, starts, weights, ...) (default: the built-in "
                        "SearchConfig, as docs/search.md lists)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: config, 50)")
    parser.add_argument("--pre-steps", type=int, help="p (default: config, 7); see `ecdiff noise-curve`")
    parser.add_argument("--weights", type=float, nargs=3, metavar=("W_SSIM", "W_EFF", "W_BURDEN"),
                        help="objective weights of SSIM, Efficiency and Burden (default: config, 0.3 0.3 0.4)")
    add_output_arguments(parser, "out/search", "base strategy config for the values not searched (HybridSD's)",
                         DEFAULT_CONFIG_PATH, "read by the services, the demo and the bench")
    parser.set_defaults(func=functools.partial(run, parser))


def add_output_arguments(parser, out: str, base: str, shipped: Path, read_by: str) -> None:
    """--out, --cache, --strategy-config (`base`: what it is for) and --install (into `shipped`, `read_by`):
    the options `reproducing_command` leaves out, but --strategy-config."""
    parser.add_argument("--out", type=Path, default=Path(out), help=f"output folder (default: {out})")
    parser.add_argument("--cache", type=Path, help="measurement cache folder (default: OUT/cache)")
    parser.add_argument("--strategy-config", type=Path,
                        help=f"{base}; default: ${CONFIG_ENV} or {DEFAULT_CONFIG_PATH.parent.name}/{DEFAULT_CONFIG_PATH.name}")
    parser.add_argument("--install", type=Path, nargs="?", const=shipped, metavar="PATH",
                        help=f"also copy the result to PATH (default: the shipped {shipped.parent.name}/{shipped.name}, "
                             f"{read_by})")
