"""img2img with diffusers' strength semantics, made safe for edge and cloud to share.

diffusers' StableDiffusionImg2ImgPipeline runs the last `int(num_steps * strength)` steps of the
schedule, starting from the init latents noised to that step's timestep. Two fixes the community
asks for: `int()` gives zero steps at low strength (an unchanged image and a silent no-op), so at
least one step always runs; and the step index is computed here once, from (num_steps, strength),
so the edge and the cloud (same scheduler config) agree on the exact timesteps.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .sampling import Denoiser, SampleResult, StepCallback, sample
from .strategies import Strategy


def img2img_start_step(num_steps: int, strength: float) -> int:
    """Index of the first step that runs; the run covers steps [start, num_steps)."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength):
        raise ValueError(f"strength must be a number in (0, 1], got {strength!r}")
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength!r}")
    steps_to_run = max(1, min(int(num_steps * strength), num_steps))
    return num_steps - steps_to_run


def noised_to_start(scheduler, init_latents: torch.Tensor, noise: torch.Tensor, num_steps: int,
                    strength: float) -> tuple[int, torch.Tensor]:
    """(start step, `init_latents` noised to its timestep with `noise`); sets the scheduler's timesteps."""
    if noise.shape != init_latents.shape:
        raise ValueError(f"noise {tuple(noise.shape)} and init_latents {tuple(init_latents.shape)} differ in shape")
    start = img2img_start_step(num_steps, strength)
    scheduler.set_timesteps(num_steps, device=init_latents.device)
    t_start = scheduler.timesteps[start : start + 1]
    return start, scheduler.add_noise(init_latents, noise.to(init_latents.dtype), t_start)


def img2img(
    strategy: Strategy,
    scheduler,
    cloud: Optional[Denoiser],
    edge: Optional[Denoiser],
    init_latents: torch.Tensor,
    noise: torch.Tensor,
    *,
    num_steps: int,
    strength: float,
    on_step: Optional[StepCallback] = None,
) -> SampleResult:
    """Noise `init_latents` to the start step's timestep with `noise`, then run the plan from there."""
    start, noised = noised_to_start(scheduler, init_latents, noise, num_steps, strength)
    return sample(strategy, scheduler, cloud, edge, noised, num_steps=num_steps, on_step=on_step, start_step=start)
