"""The cloud phase of one request, transport-free: seeded latents, steps [0, s), the handoff.

`CloudPhaseRunner.run(job, emit)` is synchronous (it runs in a worker thread under the servicer);
it calls `emit` with a `CloudStep` after every step and a `CloudHandoff` at the end. `emit` may
raise to stop the loop (cancellation), which then stops within one step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ecdiff.loading import LoadedModel
from ecdiff.preparation import prepare_run
from ecdiff.sampling import StepRecord
from ecdiff.strategies import Strategy
from ecdiff.strategy_config import StrategyParams


@dataclass(frozen=True)
class CloudJob:
    prompt: str
    seed: int
    num_steps: int
    strategy_name: str
    strategy: Strategy
    params: StrategyParams
    latents_every: int = 0  # send the latent after step i when (i + 1) % latents_every == 0


@dataclass(frozen=True)
class CloudStep:
    record: StepRecord
    latents: Optional[torch.Tensor]  # only at the steps the job asked for


@dataclass(frozen=True)
class CloudHandoff:
    step: int
    latents: torch.Tensor
    timesteps: tuple[int, ...]
    cloud_calls: int
    approx_steps: int
    compute_seconds: float


class CloudPhaseRunner:
    def __init__(self, model: LoadedModel) -> None:
        self.model = model

    def run(self, job: CloudJob, emit: Callable[[object], None]) -> CloudHandoff:
        started = time.perf_counter()
        run = prepare_run(job.strategy, prompts=job.prompt, num_steps=job.num_steps, guidance=self.model.guidance,
                          cloud=self.model.pipe, seeds=job.seed)
        sampler = run.sampler()
        switch = sampler.switch_step
        every = job.latents_every
        records: list[StepRecord] = []

        pending = False  # a wanted latent not yet sent: it fell inside a fused approximated run

        def on_step(record: StepRecord, x: Optional[torch.Tensor]) -> None:
            # Runs are never split to materialise a latent: splitting a fused run changes its
            # rounding, and the result must stay bit-identical to the in-process `sample`.
            nonlocal pending
            pending = pending or (every > 0 and (record.index + 1) % every == 0)
            send = pending and x is not None and record.index + 1 < switch
            pending = pending and not send
            emit(CloudStep(record, x if send else None))

        state = sampler.run(run.initial_state(), switch, on_step, records)
        handoff = CloudHandoff(
            step=switch,
            latents=state.latents,
            timesteps=tuple(int(t) for t in sampler.timesteps),
            cloud_calls=sum(r.kind == "cloud" for r in records),
            approx_steps=sum(r.kind == "approx" for r in records),
            compute_seconds=time.perf_counter() - started,
        )
        emit(handoff)
        return handoff
