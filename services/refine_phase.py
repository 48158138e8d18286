"""DiffusionX's refinement on the cloud, transport-free: the edge's last preview refined on the
cloud's shared engine.

`RefinePhaseRunner.run(job)` prepares the refinement (in a worker thread: strength prediction and
prompt encoding are model work), submits it to the `DenoisingEngine` beside the Denoise requests,
and yields a `RefineStep` after every step and the `Refinement` at the end. Leaving the iteration
(the RPC ended) cancels the request at its next step boundary. A Ray Serve replica runs the same
runner (services/ray_replica.py).

A runner made with `checkpoint_every` n attaches a `RefineCheckpoint` (the loop's whole state and the
strength chosen) to a `RefineStep` about every n steps, and `run(job, resume=step.checkpoint)`
continues the refinement from it exactly as it would have gone on: the Ray Serve front end resumes a
refinement whose replica died so (services/ray_runner.py), as it does a cloud phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import AsyncIterator, Optional, Protocol

import torch

from ecdiff.diffusionx.refine import RefineCheckpoint, RefineConfig, Refinement, Refiner
from ecdiff.engine.aio import EngineStep, engine_events
from ecdiff.engine.core import DenoisingEngine
from ecdiff.loading import LoadedModel
from ecdiff.sampling import StepRecord

from .cloud_phase import checkpoints
from .strength_choosers import choosers


@dataclass(frozen=True)
class RefineJob:
    prompt: str
    seed: int
    round_index: int
    latents: torch.Tensor  # the edge's last preview latent, of the cloud's latent shape
    strength: Optional[float]  # None: the cloud predictor's choice, else the default
    approximate: bool


@dataclass(frozen=True)
class RefineStep:
    record: StepRecord
    checkpoint: Optional[RefineCheckpoint] = None  # the refinement after this step, when checkpointed


class RunsRefinePhase(Protocol):
    """Where a refinement runs: this process's engine, or a Ray Serve replica's (services/ray_runner.py)."""

    def run(self, job: RefineJob, deadline: Optional[float] = None,
            request_id: str = "") -> AsyncIterator[RefineStep | Refinement]: ...


def cloud_refiner_of(model: LoadedModel, config: RefineConfig, predictors: Optional[str]) -> Refiner:
    """The cloud's refiner (a plain cloud's, or each Ray Serve replica's) with the cloud's predictor."""
    _, chooser = choosers(predictors)
    return Refiner(model.pipe, model.guidance, config, chooser)


class RefinePhaseRunner:
    def __init__(self, refiner: Refiner, engine: DenoisingEngine, executor: Executor,
                 checkpoint_every: int = 0) -> None:
        self.refiner, self.engine, self.executor = refiner, engine, executor
        self.checkpoint_every = checkpoint_every  # 0: no checkpoints

    async def run(self, job: RefineJob, deadline: Optional[float] = None, request_id: str = "",
                  resume: Optional[RefineCheckpoint] = None) -> AsyncIterator[RefineStep | Refinement]:
        """`resume`: continue the refinement from this checkpoint of it instead of its img2img start."""
        asked = time.perf_counter()

        def prepare():
            # The core checks its inputs (a ValueError is INVALID_ARGUMENT) before any model call.
            plan = self.refiner.prepare(job.prompt, job.seed, job.round_index, job.latents, job.strength,
                                        job.approximate, resume)
            return plan, time.perf_counter()

        plan, prepared = await asyncio.get_running_loop().run_in_executor(self.executor, prepare)
        run = plan.run
        events = engine_events(self.engine, run, run.num_steps, deadline=deadline, request_id=request_id,
                               keep_state=checkpoints(self.checkpoint_every, run.start_step, run.num_steps))
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, EngineStep):
                    yield RefineStep(event.record, None if event.state is None else plan.checkpoint(event.state))
                else:
                    # Compute as the cloud phase counts it: preparing and the engine's steps, not the waits.
                    yield replace(plan.refinement(event.state.latents),
                                  compute_seconds=(prepared - plan.started) + event.run_seconds,
                                  queue_seconds=(plan.started - asked) + event.queued_seconds)
