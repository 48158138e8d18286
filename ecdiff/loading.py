"""Which models to run: the one place that loads them, for the services, the demo, the search and
the benchmarks.

A model is named ("toyworld-cloud", "toyworld-edge", a path understood by
`ecdiff.models.load_pipeline`) or "tiny" for the tiny random pair. The default is the shipped
pair (models/toyworld-*, or under $ECDIFF_MODELS_DIR). A model that cannot be loaded, the default
included, is a `ModelLoadError` naming what is missing and what to do; random weights are used
only when asked for, because their images are noise and numbers measured on them look plausible.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Optional

import torch

ROLES = ("cloud", "edge")
TINY = "tiny"
TINY_GUIDANCE = 3.0
TINY_PAIR_NAME = "tiny-random-seed0"

log = logging.getLogger(__name__)


class ModelLoadError(ValueError):
    """A model asked for (by default or by name) cannot be loaded; the message says what to do."""


@dataclass(frozen=True)
class LoadedModel:
    role: str
    name: str
    pipe: object  # a diffusers StableDiffusionPipeline
    guidance: float
    description: str
    random_weights: bool


@dataclass(frozen=True)
class ModelPair:
    """Both roles' models with one guidance scale: what the search and the benchmarks run on."""

    cloud_model: LoadedModel
    edge_model: LoadedModel
    name: str  # identifies the pair in caches and reports

    @property
    def cloud(self):  # the cloud pipeline
        return self.cloud_model.pipe

    @property
    def edge(self):  # the edge pipeline
        return self.edge_model.pipe

    @property
    def guidance(self) -> float:
        return self.cloud_model.guidance

    @functools.cached_property
    def cache_key(self) -> str:
        """Names, guidance and a digest of every weight: caches keyed by it miss when a model is retrained
        under the same name (a name alone once served stale labels after a fine-tune)."""
        return f"{self.name}@{self.guidance:g}#{weights_digest(self.cloud)[:12]}+{weights_digest(self.edge)[:12]}"


def weights_digest(pipe) -> str:
    """sha256 over the UNet's and the VAE's parameters and buffers, in state-dict order."""
    digest = hashlib.sha256()
    for module in (pipe.unet, pipe.vae):
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _tiny_pair():
    # One build per process: both roles then share the VAE and text encoder, as the pair does.
    from .tiny_models import tiny_pipelines

    return tiny_pipelines(seed=0)


def _tiny(role: str) -> LoadedModel:
    cloud, edge = _tiny_pair()
    return LoadedModel(role, f"{TINY}-{role}", cloud if role == "cloud" else edge, TINY_GUIDANCE,
                       f"tiny RANDOM {role} model (asked for): the images are noise", True)


def _trained(role: str, target: str, tiny_flag: str) -> LoadedModel:
    from .models import DEFAULT_GUIDANCE, load_pipeline

    try:
        pipe = load_pipeline(target)
    except OSError as exc:  # a missing folder or file, or unreadable weights: diffusers reports both as OSError
        raise ModelLoadError(
            f"the {role} model {target!r} cannot be loaded: {exc}\nA shipped model (models/toyworld-*) is restored "
            f"with `git checkout -- models/` or retrained with `make models`; for tiny random weights (noise "
            f"images) pass {tiny_flag}.") from exc
    return LoadedModel(role, target, pipe, float(DEFAULT_GUIDANCE), f"trained model {target}", False)


def load_model(role: str, name: Optional[str] = None) -> LoadedModel:
    """The model for `role`: the named one, "tiny" for random weights, or the shipped one by default."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if name == TINY:
        return _tiny(role)
    return _trained(role, name or f"toyworld-{role}", f"`--model {TINY}`")


def load_pair(*, tiny: bool = False, cloud: Optional[str] = None, edge: Optional[str] = None,
              guidance: Optional[float] = None) -> ModelPair:
    """The shipped trained pair (or the named models), or the tiny random pair when asked for."""
    if tiny:
        if cloud or edge:
            raise ValueError("--tiny uses the tiny random pair; do not combine it with --cloud/--edge")
        models, name = (_tiny("cloud"), _tiny("edge")), TINY_PAIR_NAME
    else:
        cloud, edge = cloud or "toyworld-cloud", edge or "toyworld-edge"
        models, name = (_trained("cloud", cloud, "`--tiny`"), _trained("edge", edge, "`--tiny`")), f"{cloud}+{edge}"
    if guidance is not None:
        models = tuple(replace(m, guidance=float(guidance)) for m in models)
    return ModelPair(*models, name)


def load_scorer():
    """The trained pair's alignment scorer (an `ecdiff.metrics.Scorer`), or None where none is installed."""
    try:
        from .models import load_scorer as load
    except ImportError:
        return None
    try:
        return load()
    except FileNotFoundError as exc:
        log.warning("no alignment scorer installed (%s); prompt fidelity will be n/a", exc)
        return None
