"""Which models to run: the one place that loads them, for the services, the demo, the search and
the benchmarks.

A model is named ("toyworld-cloud", "toyworld-edge", a path understood by
`ecdiff.models.load_pipeline`) or "tiny" for the tiny random pair. The default is the shipped
pair (models/toyworld-*, or under $ECDIFF_MODELS_DIR). A model that cannot be loaded, the default
included, is a `ModelLoadError` naming what is missing and what to do; random weights are used
only when asked for, because their images are noise and numbers measured on them look plausible.

Every model is placed by an `ecdiff.placement.Placement` (None: auto, the GPU in float16 where CUDA
exists, else the CPU in float32), and gets its own default guidance scale unless one is given: the
toy world's `DEFAULT_GUIDANCE`, the pipeline class's own default for a diffusers folder (7.5 for
SD-1.x), `TINY_GUIDANCE` for the tiny pair.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Optional

import torch

from .placement import CPU_FLOAT32, Placement

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
    placement: Placement


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
        """Names, guidance, placement and a digest of every weight: caches keyed by it miss when a model is
        retrained under the same name (a name alone once served stale labels after a fine-tune) and when
        it runs elsewhere (another device or dtype computes other pictures). The CPU in float32, where
        every cache so far was made, is left unmarked so those caches stay valid."""
        placement = self.cloud_model.placement
        where = "" if placement == CPU_FLOAT32 else f"[{placement.describe()}]"
        return (f"{self.name}@{self.guidance:g}{where}#{weights_digest(self.cloud)[:12]}"
                f"+{weights_digest(self.edge)[:12]}")


def weights_digest(pipe) -> str:
    """sha256 over the UNet's (or transformer's) and the VAE's parameters and buffers, in state-dict order."""
    from .conditioning import denoising_model

    return module_digest(denoising_model(pipe), pipe.vae)


def module_digest(*modules: torch.nn.Module) -> str:
    """sha256 over the modules' parameters and buffers, in state-dict order."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=2)
def _tiny_pair(placement: Placement):
    # One build per process and placement: both roles then share the VAE and text encoder, as the pair does.
    from .tiny_models import tiny_pipelines

    return tuple(pipe.to(placement.device, placement.dtype) for pipe in tiny_pipelines(seed=0))


def _tiny(role: str, placement: Placement) -> LoadedModel:
    cloud, edge = _tiny_pair(placement)
    return LoadedModel(role, f"{TINY}-{role}", cloud if role == "cloud" else edge, TINY_GUIDANCE,
                       f"tiny RANDOM {role} model (asked for): the images are noise", True, placement)


def model_guidance(target: str, pipe) -> float:
    """The default guidance scale of a loaded model (see the module's docstring)."""
    from .models import DEFAULT_GUIDANCE
    from .models.pipeline import is_toyworld, pipeline_default_guidance

    if is_toyworld(target):
        return float(DEFAULT_GUIDANCE)
    own = pipeline_default_guidance(pipe)
    if own is None:
        raise ModelLoadError(f"{target!r}: its pipeline {type(pipe).__name__} names no default guidance scale; "
                             "give one with --guidance")
    return own


def _trained(role: str, target: str, tiny_flag: str, placement: Placement) -> LoadedModel:
    from .models import load_pipeline

    try:
        pipe = load_pipeline(target, dtype=placement.dtype, device=placement.device)
    except OSError as exc:  # a missing folder or file, or unreadable weights: diffusers reports both as OSError
        raise ModelLoadError(
            f"the {role} model {target!r} cannot be loaded: {exc}\nA shipped model (models/toyworld-*) is restored "
            f"with `git checkout -- models/` or retrained with `make models`; for tiny random weights (noise "
            f"images) pass {tiny_flag}.") from exc
    return LoadedModel(role, target, pipe, model_guidance(target, pipe), f"trained model {target}", False, placement)


def load_model(role: str, name: Optional[str] = None, *, placement: Optional[Placement] = None,
               guidance: Optional[float] = None) -> LoadedModel:
    """The model for `role`: the named one, "tiny" for random weights, or the shipped one by default;
    on `placement` (None: auto), at `guidance` (None: the model's own default)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    placement = placement or Placement.resolve()
    model = _tiny(role, placement) if name == TINY else \
        _trained(role, name or f"toyworld-{role}", f"`--model {TINY}`", placement)
    return model if guidance is None else replace(model, guidance=float(guidance))


def load_pair(*, tiny: bool = False, cloud: Optional[str] = None, edge: Optional[str] = None,
              guidance: Optional[float] = None, placement: Optional[Placement] = None) -> ModelPair:
    """The shipped trained pair (or the named models), or the tiny random pair when asked for; on
    `placement` (None: auto). The pair runs at one guidance scale: `guidance`, else the cloud's own."""
    placement = placement or Placement.resolve()
    if tiny:
        if cloud or edge:
            raise ValueError("--tiny uses the tiny random pair; do not combine it with --cloud/--edge")
        models, name = (_tiny("cloud", placement), _tiny("edge", placement)), TINY_PAIR_NAME
    else:
        cloud, edge = cloud or "toyworld-cloud", edge or "toyworld-edge"
        models = (_trained("cloud", cloud, "`--tiny`", placement), _trained("edge", edge, "`--tiny`", placement))
        name = f"{cloud}+{edge}"
    scale = float(guidance) if guidance is not None else models[0].guidance
    models = tuple(replace(m, guidance=scale) for m in models)
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
