"""Preparing a run: model(s), prompt(s), seed(s), steps, strategy and guidance -> everything it needs.

`prepare_run` is the one place that makes a run's private scheduler (never the caller's: the
pipeline's own class, or a named kind), the conditioning of every model the plan still needs
(`ecdiff.conditioning`), and the latents entering the first step: the generation convention's
seeded latents (`ecdiff.conventions`), latents the caller hands over (an edge continuing from a
handoff), an img2img start (`ecdiff.img2img`: the init latents noised to the start step), or a
loop state recorded mid-run (a run resumed elsewhere, e.g. on another Ray Serve replica).
The library, the services, the search, the noise curve and DiffusionX all prepare runs here, so
they all compute the same thing for the same request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .conditioning import denoising_model, encode_conditioning, pipeline_device
from .conventions import initial_latents
from .denoiser import BoundDenoiser, denoiser_for, latent_shape
from .img2img import noised_to_start
from .sampling import SampleResult, Sampler, SamplerState, StepCallback, sample
from .schedules import fresh_scheduler
from .strategies import StepKind, Strategy


@dataclass(frozen=True)
class Img2ImgStart:
    """Start from `init_latents` noised with `noise` at diffusers' img2img `strength`."""

    init_latents: torch.Tensor
    noise: torch.Tensor
    strength: float


@dataclass(frozen=True)
class PreparedRun:
    strategy: Strategy
    num_steps: int
    start_step: int
    scheduler: object  # private to this run, timesteps set
    latents: torch.Tensor  # the latent entering `start_step`
    cloud: Optional[BoundDenoiser]  # None where the plan needs no cloud call from start_step on
    edge: Optional[BoundDenoiser]
    resumed: Optional[SamplerState] = None  # a resumed run: the loop's whole state entering start_step

    def sampler(self) -> Sampler:
        return Sampler(self.strategy, self.scheduler, self.cloud, self.edge, num_steps=self.num_steps,
                       device=self.latents.device)

    def initial_state(self) -> SamplerState:
        return self.resumed if self.resumed is not None else SamplerState(step=self.start_step, latents=self.latents)

    def sample(self, on_step: Optional[StepCallback] = None, synchronize: bool = False) -> SampleResult:
        """Steps [start_step, num_steps) in this process (`ecdiff.sampling.sample`; `synchronize` for timing runs)."""
        if self.resumed is not None:  # `sample` starts from a latent alone
            raise ValueError("a resumed run continues with sampler().run(initial_state()) or on an engine")
        return sample(self.strategy, self.scheduler, self.cloud, self.edge, self.latents, num_steps=self.num_steps,
                      on_step=on_step, start_step=self.start_step, synchronize=synchronize)


def prepare_run(
    strategy: Strategy,
    *,
    prompts: str | Sequence[str],
    num_steps: int,
    guidance: float,
    cloud=None,
    edge=None,
    seeds: int | Sequence[int] | None = None,
    latents: Optional[torch.Tensor] = None,
    img2img: Optional[Img2ImgStart] = None,
    state: Optional[SamplerState] = None,
    start_step: int = 0,
    scheduler: Optional[str] = None,
) -> PreparedRun:
    """A run of `strategy` on the cloud and/or edge pipeline for one prompt or a batch of prompts.

    The scheduler's config and the latent shape come from the cloud pipeline when there is one,
    else from the edge's. The start is exactly one of: `seeds` (txt2img from the seeded latents, one
    seed per prompt), `latents` (the latent entering `start_step`), or `img2img` (the caller draws its
    noise; the start step follows from the strength).
    """
    source = cloud if cloud is not None else edge
    if source is None:
        raise ValueError("prepare_run needs a cloud or an edge pipeline")
    batch = 1 if isinstance(prompts, str) else len(prompts)
    if batch < 1:
        raise ValueError("prepare_run needs at least one prompt")
    if sum(x is not None for x in (seeds, latents, img2img, state)) != 1:
        raise ValueError("give exactly one start: seeds (txt2img), latents, img2img, or a state")
    run_scheduler = fresh_scheduler(source, scheduler)
    device = pipeline_device(source)
    resumed = None
    if state is not None:
        if not 0 <= state.step < num_steps or start_step not in (0, state.step):
            raise ValueError(f"a state entering step {state.step} cannot start a {num_steps}-step run"
                             + (f" at step {start_step}" if start_step else ""))
        resumed = state.map(lambda x: x.to(device))
        start_step, start_latents = state.step, resumed.latents
    elif img2img is not None:
        start_step, start_latents = noised_to_start(run_scheduler, img2img.init_latents.to(device, torch.float32),
                                                    img2img.noise.to(device), num_steps, img2img.strength)
    elif latents is not None:
        start_latents = latents.to(device)
    else:
        seed_list = [seeds] if isinstance(seeds, int) else list(seeds)
        if len(seed_list) != batch:
            raise ValueError(f"{len(seed_list)} seeds for {batch} prompts")
        start_latents = torch.cat([initial_latents(seed, latent_shape(source), run_scheduler, num_steps=num_steps,
                                                   device=device) for seed in seed_list])
    if state is not None or latents is not None:  # the other starts set them on the way; a handoff reads them
        run_scheduler.set_timesteps(num_steps, device=device)
    ahead = strategy.plan(num_steps)[start_step:]

    def bound(pipe, kind: StepKind) -> Optional[BoundDenoiser]:
        if pipe is None or kind not in ahead:
            return None
        return BoundDenoiser(denoiser_for(denoising_model(pipe)), encode_conditioning(pipe, prompts, guidance))

    return PreparedRun(strategy, num_steps, start_step, run_scheduler, start_latents,
                       bound(cloud, StepKind.CLOUD), bound(edge, StepKind.EDGE), resumed)
