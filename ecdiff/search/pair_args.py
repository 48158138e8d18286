"""Command-line options that pick the model pair, shared by `ecdiff search`, `noise-curve` and
`bench`; the loading itself (and its no-fallback policy) is `ecdiff.loading.load_pair`."""

from __future__ import annotations

from ..loading import ModelPair, load_pair


def add_pair_arguments(parser) -> None:
    group = parser.add_argument_group("model pair (default: the embedded trained pair)")
    group.add_argument("--tiny", action="store_true", help="use the tiny RANDOM pair (tests, smoke runs)")
    group.add_argument("--cloud", help="cloud model: a name or a local diffusers folder (via ecdiff.models)")
    group.add_argument("--edge", help="edge model: a name or a local diffusers folder (via ecdiff.models)")
    group.add_argument("--guidance", type=float, help="guidance scale (default: the pair's own)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def pair_from_args(args) -> ModelPair:
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    return load_pair(tiny=args.tiny, cloud=args.cloud, edge=args.edge, guidance=args.guidance)
