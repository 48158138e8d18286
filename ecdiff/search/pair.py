"""The model pair an evaluation runs on: the embedded trained pair, local folders through
ecdiff.models, or (only when asked for) the tiny random pair used by tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TINY_GUIDANCE = 3.0


@dataclass(frozen=True)
class ModelPair:
    cloud: Any  # diffusers StableDiffusionPipeline
    edge: Any
    guidance: float
    name: str  # identifies the pair in caches and reports


def load_pair(*, tiny: bool = False, cloud: str | None = None, edge: str | None = None,
              guidance: float | None = None) -> ModelPair:
    if tiny:
        if cloud or edge:
            raise ValueError("--tiny uses the tiny random pair; do not combine it with --cloud/--edge")
        from ..tiny_models import tiny_pipelines

        cloud_pipe, edge_pipe = tiny_pipelines(seed=0)
        return ModelPair(cloud_pipe, edge_pipe, TINY_GUIDANCE if guidance is None else guidance, "tiny-random-seed0")
    cloud, edge = cloud or "toyworld-cloud", edge or "toyworld-edge"
    try:
        from .. import models

        cloud_pipe, edge_pipe = models.load_pipeline(cloud), models.load_pipeline(edge)
    except (ImportError, FileNotFoundError) as exc:
        raise ValueError(
            f"no trained model pair ({exc}); pass --tiny to run on the tiny random models instead"
        ) from None
    return ModelPair(cloud_pipe, edge_pipe, models.DEFAULT_GUIDANCE if guidance is None else guidance, f"{cloud}+{edge}")


def load_scorer():
    """The pair's alignment scorer (an ecdiff.metrics.Scorer), or None where none is installed."""
    try:
        from .. import models
    except ImportError:
        return None
    factory = getattr(models, "load_scorer", None)
    return factory() if factory is not None else None


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
