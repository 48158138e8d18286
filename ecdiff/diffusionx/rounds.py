"""One DiffusionX round on one model, the convention shared by the edge, the cloud and the bench.

- Round 0 (txt2img): the generation convention's seeded latents (`ecdiff.conventions`), all steps.
- Round r > 0 and the cloud's refinement (img2img): the previous latent noised to the start step
  with `round_noise(seed, r)` and denoised from there (`ecdiff.img2img`: diffusers' strength
  semantics, at least one step). The refinement is round `len(rounds)`.

`round_noise` seeds its own CPU generator with `(seed + r * 1_000_003) mod 2**64`, so the edge and
the cloud draw the same noise for the same session round without sending it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from ecdiff.preparation import Img2ImgStart, PreparedRun, prepare_run
from ecdiff.sampling import SampleResult, StepCallback
from ecdiff.strategies import CloudOnly, EdgeOnly, Strategy

_ROUND_STRIDE = 1_000_003


def round_noise(seed: int, round_index: int, shape: tuple[int, ...]) -> torch.Tensor:
    if round_index < 0:
        raise ValueError(f"round_index must be >= 0, got {round_index}")
    generator = torch.Generator("cpu").manual_seed((seed + round_index * _ROUND_STRIDE) % 2**64)
    return torch.randn(shape, generator=generator, dtype=torch.float32)


@dataclass(frozen=True)
class RoundSpec:
    prompt: str
    seed: int
    round_index: int
    num_steps: int
    strength: Optional[float] = None  # None: txt2img (needs init None)
    init: Optional[torch.Tensor] = None  # the previous latent (img2img)

    def __post_init__(self) -> None:
        if (self.init is None) != (self.strength is None):
            raise ValueError("txt2img has neither init latents nor strength; img2img needs both")


def run_round(pipe, guidance: float, spec: RoundSpec, *, role: str = "edge", strategy: Optional[Strategy] = None,
              on_step: Optional[StepCallback] = None) -> SampleResult:
    """Denoise one round on `pipe` in the `role` slot of the plan (edge: EdgeOnly, cloud: CloudOnly or
    the given cloud-phase strategy, e.g. EC-Diff with its approximation)."""
    return run_rounds(pipe, guidance, [spec], role=role, strategy=strategy, on_step=on_step)


def run_rounds(pipe, guidance: float, specs: Sequence[RoundSpec], *, role: str = "edge",
               strategy: Optional[Strategy] = None, on_step: Optional[StepCallback] = None) -> SampleResult:
    """Several rounds as one batch (one UNet call per step): same step count and strength, each item
    with its own prompt, seed, round index and init latent. Batch item i equals `run_round(specs[i])`
    up to float rounding of the batched kernels."""
    return prepare_rounds(pipe, guidance, specs, role=role, strategy=strategy).sample(on_step)


def prepare_rounds(pipe, guidance: float, specs: Sequence[RoundSpec], *, role: str = "edge",
                   strategy: Optional[Strategy] = None) -> PreparedRun:
    """The prepared run of `run_rounds` (for a driver of its own, such as the cloud's engine)."""
    if role not in ("edge", "cloud"):
        raise ValueError(f"role must be 'edge' or 'cloud', got {role!r}")
    if not specs or len({(s.num_steps, s.strength) for s in specs}) != 1:
        raise ValueError("a batch needs at least one round, all with the same num_steps and strength")
    first = specs[0]
    strategy = strategy or (EdgeOnly() if role == "edge" else CloudOnly())
    models = {role: pipe}
    prompts = first.prompt if len(specs) == 1 else [s.prompt for s in specs]
    if first.init is None:
        start = dict(seeds=[s.seed for s in specs])
    else:
        noise = torch.cat([round_noise(s.seed, s.round_index, tuple(s.init.shape)) for s in specs])
        start = dict(img2img=Img2ImgStart(torch.cat([s.init for s in specs]), noise, first.strength))
    return prepare_run(strategy, prompts=prompts, num_steps=first.num_steps, guidance=guidance, **models, **start)
