"""Which models to run: the embedded trained pair when installed, tiny random models otherwise.

The one place that decides the fallback, for the services, the demo and the benchmarks. A model
is named ("toyworld-cloud", "toyworld-edge", a path understood by `ecdiff.models.load_pipeline`)
or "tiny" for the tiny random pair. With no name, the role's embedded model is tried and, when
it is not installed, the tiny one is used with a loud warning (its images are noise).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Optional

ROLES = ("cloud", "edge")
TINY = "tiny"
TINY_GUIDANCE = 3.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    role: str
    name: str
    pipe: object  # a diffusers StableDiffusionPipeline
    guidance: float
    description: str
    random_weights: bool


@functools.lru_cache(maxsize=1)
def _tiny_pair():
    # One build per process: both roles then share the VAE and text encoder, as the pair does.
    from .tiny_models import tiny_pipelines

    return tiny_pipelines(seed=0)


def _tiny(role: str, why: str) -> LoadedModel:
    cloud, edge = _tiny_pair()
    return LoadedModel(role, f"{TINY}-{role}", cloud if role == "cloud" else edge, TINY_GUIDANCE,
                       f"tiny RANDOM {role} model ({why}): the images are noise", True)


def load_model(role: str, name: Optional[str] = None) -> LoadedModel:
    """The model for `role`; an explicit name that cannot be loaded is an error, not a fallback."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if name == TINY:
        return _tiny(role, "asked for")
    target = name or f"toyworld-{role}"
    try:
        from .models import DEFAULT_GUIDANCE, load_pipeline

        pipe = load_pipeline(target)
    except (ImportError, FileNotFoundError, OSError) as exc:
        if name is not None:
            raise
        log.warning("no trained %s model installed (%s: %s); falling back to tiny RANDOM models, images are noise",
                    role, type(exc).__name__, exc)
        return _tiny(role, "no trained pair installed")
    return LoadedModel(role, target, pipe, float(DEFAULT_GUIDANCE), f"trained model {target}", False)


def load_best_pair(cloud: Optional[str] = None, edge: Optional[str] = None) -> tuple[LoadedModel, LoadedModel]:
    return load_model("cloud", cloud), load_model("edge", edge)
