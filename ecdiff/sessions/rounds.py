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
from typing import Optional

import torch

from ecdiff.conventions import initial_latents
from ecdiff.denoiser import latent_shape, pipeline_denoiser
from ecdiff.img2img import img2img
from ecdiff.sampling import SampleResult, StepCallback, sample
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
    if role not in ("edge", "cloud"):
        raise ValueError(f"role must be 'edge' or 'cloud', got {role!r}")
    strategy = strategy or (EdgeOnly() if role == "edge" else CloudOnly())
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)  # set_timesteps mutates it
    denoiser = pipeline_denoiser(pipe, spec.prompt, guidance)
    cloud, edge = (None, denoiser) if role == "edge" else (denoiser, None)
    if spec.init is None:
        latents = initial_latents(spec.seed, latent_shape(pipe), scheduler, num_steps=spec.num_steps, device=pipe.device)
        return sample(strategy, scheduler, cloud, edge, latents, num_steps=spec.num_steps, on_step=on_step)
    init = spec.init.to(pipe.device, torch.float32)
    noise = round_noise(spec.seed, spec.round_index, tuple(init.shape)).to(pipe.device)
    return img2img(strategy, scheduler, cloud, edge, init, noise, num_steps=spec.num_steps, strength=spec.strength,
                   on_step=on_step)
