"""The edge phase of one request, transport-free: continue from a latent, decode, PNG.

`EdgePhaseRunner.finish(job, emit)` (synchronous, in a worker thread) emits an `EdgeStep` per step,
`EdgeDecoding`, then the `EdgeOutcome`; it runs steps [start, T) with the edge model through
`Sampler.run` (same strategy, num_steps and scheduler config as the cloud, so the result equals
the in-process `sample` bit for bit given the exact handoff latent), then decodes with the
edge's VAE; latents that end non-finite are `NonFiniteLatents`, never an image. Degraded runs
(the cloud stream broke at step j) use HybridSD(j), whose plan puts every step from j on the
edge; edge-only runs draw the seeded latents themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ecdiff.images import decode_images, png_bytes
from ecdiff.loading import LoadedModel
from ecdiff.preparation import prepare_run
from ecdiff.sampling import StepRecord
from ecdiff.strategies import Strategy

PREVIEW_SIZE = 64


class NonFiniteLatents(ValueError):
    """The edge phase ended with NaN or infinite latents: its input latent was not a sound one."""


@dataclass(frozen=True)
class EdgeJob:
    prompt: str
    seed: int
    num_steps: int
    strategy: Strategy  # its plan must put every step in [start, num_steps) on the edge
    start: int
    latents: Optional[torch.Tensor]  # latent entering `start`; None: draw the seeded latents (start must be 0)
    guidance: float
    preview_every: int = 0


@dataclass(frozen=True)
class EdgeStep:
    record: StepRecord
    preview_png: bytes  # empty unless a preview was due


@dataclass(frozen=True)
class EdgeDecoding:
    """Emitted once the last step is done, before the VAE decode."""


@dataclass(frozen=True)
class EdgeOutcome:
    latents: torch.Tensor
    image_png: bytes
    edge_calls: int
    compute_seconds: float
    decode_seconds: float


class EdgePhaseRunner:
    def __init__(self, model: LoadedModel) -> None:
        self.model = model

    def finish(self, job: EdgeJob, emit: Callable[[object], None]) -> EdgeOutcome:
        started = time.perf_counter()
        pipe = self.model.pipe
        if job.latents is None and job.start != 0:
            raise ValueError("an edge job without latents must start at step 0")
        start = dict(seeds=job.seed) if job.latents is None else dict(latents=job.latents, start_step=job.start)
        run = prepare_run(job.strategy, prompts=job.prompt, num_steps=job.num_steps, guidance=job.guidance,
                          edge=pipe, **start)
        records: list[StepRecord] = []

        def on_step(record: StepRecord, x: Optional[torch.Tensor]) -> None:
            due = job.preview_every > 0 and x is not None and (record.index + 1 - job.start) % job.preview_every == 0
            emit(EdgeStep(record, self.preview(x) if due else b""))

        state = run.sampler().run(run.initial_state(), None, on_step, records)
        if not bool(torch.isfinite(state.latents).all()):  # decoding them would give a garbage image
            raise NonFiniteLatents(f"the edge phase from step {job.start} ended with NaN or infinite latents "
                                   "(its input latent or guidance scale is not sound)")
        edge_seconds = time.perf_counter() - started
        emit(EdgeDecoding())
        decode_started = time.perf_counter()
        image = png_bytes(decode_images(pipe, state.latents)[0])
        outcome = EdgeOutcome(
            latents=state.latents,
            image_png=image,
            edge_calls=sum(r.kind == "edge" for r in records),
            compute_seconds=edge_seconds,
            decode_seconds=time.perf_counter() - decode_started,
        )
        emit(outcome)
        return outcome

    def preview(self, latents: torch.Tensor) -> bytes:
        image = decode_images(self.model.pipe, latents)[0]
        image.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
        return png_bytes(image)
