"""Command-line options shared by the `ecdiff` subcommands: one spelling and one default each.

Vocabulary: `--cloud-model` / `--edge-model` name a model (a name, a diffusers folder, or `tiny`);
`--cloud` / `--edge` are always a service address (HOST:PORT); `--device` / `--dtype` place the
models (`ecdiff.placement`); `--torch-threads` sets torch's CPU threads of this process; EC-Diff's parameters are `--pre-steps`, `--k`, `--alpha`, `--switch-step`
and HybridSD's `--cloud-steps`. Older spellings stay accepted as hidden aliases. The loading itself
(and its no-fallback policy) is `ecdiff.loading.load_pair`.
"""

from __future__ import annotations

import argparse
import os

from .loading import ModelPair, load_pair
from .placement import DEVICE_ENV, DTYPE_ENV, Placement
from .strategies import RULES
from .strategy_config import CONFIG_ENV

# The edge<->cloud link the demo and the benchmarks simulate when none is given: EC-Diff's
# measured bandwidth. The services themselves shape nothing unless asked (a real link is real).
SIMULATED_LINK_MBPS = 18.88


def hidden_alias(parser, alias: str, dest: str, **kwargs) -> None:
    """Accept an older spelling of an option without showing it in --help."""
    parser.add_argument(alias, dest=dest, help=argparse.SUPPRESS, **kwargs)


def add_torch_threads(parser) -> None:
    parser.add_argument("--torch-threads", type=int, help="torch CPU threads of this process (default: torch's "
                        "choice, all cores)")
    hidden_alias(parser, "--threads", "torch_threads", type=int)


def apply_torch_threads(args) -> None:
    if args.torch_threads is not None:
        if args.torch_threads < 1:
            raise ValueError(f"--torch-threads must be >= 1, got {args.torch_threads}")
        import torch

        torch.set_num_threads(args.torch_threads)


def add_placement_arguments(parser) -> None:
    parser.add_argument("--device", help=f"where the models run: auto, cpu, cuda or cuda:N (default: ${DEVICE_ENV}, "
                        "else auto = CUDA when available, else the CPU)")
    parser.add_argument("--dtype", help=f"model precision: float32, float16 or bfloat16 (default: ${DTYPE_ENV}, else "
                        "auto = float16 on CUDA, float32 on the CPU)")


def placement_from_args(args) -> Placement:
    return Placement.resolve(args.device, args.dtype)


def placement_flags(args) -> list[str]:
    """The placement options as given (flags, else $ECDIFF_DEVICE / $ECDIFF_DTYPE), for the command line of
    a service this command starts: a service reads only its own ECDIFF_<ROLE>_* variables, so without
    them `ECDIFF_DEVICE=cpu` would place this command on the CPU and its services on the GPU."""
    given = {"device": args.device or os.environ.get(DEVICE_ENV), "dtype": args.dtype or os.environ.get(DTYPE_ENV)}
    return [f for name, value in given.items() if value for f in (f"--{name}", value)]


def add_pair_arguments(parser) -> None:
    group = parser.add_argument_group("model pair (default: the shipped toy-world pair under models/)")
    group.add_argument("--tiny", action="store_true", help="use the tiny RANDOM pair (tests, smoke runs)")
    group.add_argument("--cloud-model", help="cloud model: a name or a local diffusers folder (default: toyworld-cloud)")
    group.add_argument("--edge-model", help="edge model: a name or a local diffusers folder (default: toyworld-edge)")
    hidden_alias(group, "--cloud", "cloud_model")
    hidden_alias(group, "--edge", "edge_model")
    group.add_argument("--guidance", type=float, help="guidance scale (default: the cloud model's own: 7.0 for the "
                       "toy-world pair, the pipeline's default for a diffusers folder, 7.5 for SD-1.x)")
    add_placement_arguments(group)
    add_torch_threads(parser)


def pair_from_args(args) -> ModelPair:
    apply_torch_threads(args)
    return load_pair(tiny=args.tiny, cloud=args.cloud_model, edge=args.edge_model, guidance=args.guidance,
                     placement=placement_from_args(args))


STRATEGY_OPTIONS = (  # (flag, dest, type, meaning)
    ("--pre-steps", "pre_steps", int, "EC-Diff p: real cloud calls before approximation starts"),
    ("--k", "k", int, "EC-Diff k: approximated steps per real call"),
    ("--alpha", "alpha", float, "EC-Diff alpha: the paper's smoothing of the noise gradient, in [0, 1]"),
    ("--switch-step", "switch_step", int, "EC-Diff s: first edge step"),
    ("--rule", "rule", str, f"EC-Diff extrapolation rule, one of {', '.join(RULES)}"),
    ("--beta", "beta", float, "EC-Diff beta: damping of the non-paper rules, in [0, 1]"),
    ("--cloud-steps", "cloud_steps", int, "HybridSD: steps on the cloud"),
)


ECDIFF_PARAMS = ("pre_steps", "k", "alpha", "switch_step", "rule", "beta")


def add_strategy_overrides(parser, names: tuple[str, ...] = ECDIFF_PARAMS + ("cloud_steps",)) -> None:
    """Options for the strategy parameters `names`, unset unless given."""
    for flag, dest, kind, meaning in STRATEGY_OPTIONS:
        if dest in names:
            parser.add_argument(flag, dest=dest, type=kind,
                                help=f"{meaning} (default: ${CONFIG_ENV} or configs/strategy.toml, scaled to the steps)")
    hidden_alias(parser, "--p", "pre_steps", type=int)
    hidden_alias(parser, "--s", "switch_step", type=int)


def strategy_overrides(args) -> dict:
    """The strategy parameters given on the command line."""
    return {dest: getattr(args, dest) for _, dest, _, _ in STRATEGY_OPTIONS if getattr(args, dest, None) is not None}
