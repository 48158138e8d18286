"""The cloud phase of one request, transport-free: seeded latents, steps [0, s), the handoff.

`CloudPhaseRunner.run(job)` prepares the run (in a worker thread: prompt encoding is model work)
and submits it to the cloud's shared `DenoisingEngine`, which batches its UNet calls with every
other request's; it yields a `CloudStep` after every step and a `CloudHandoff` at the end. Leaving
the iteration (the RPC ended) cancels the request at its next step boundary. A job may offer cheaper
EC-Diff strategies (load-adaptive quality): the same run with each, which the engine may serve
instead under load; the handoff then says which and why, and hands over at that plan's switch step.

Time is reported in two parts: queueing (waiting for a preparing thread, then in the engine's
queue) and compute (preparing, then the engine's steps from the first to the last, shared with the
requests batched beside it).

A runner made with `checkpoint_every` n attaches the loop's whole state to a `CloudStep` about every
n steps, and `run(job, resume=step.checkpoint)` continues a run from it exactly as it would have gone
on: the Ray Serve front end resumes a stream on another replica so (services/ray_runner.py). The
engine chooses a job's plan once, before its first step; a checkpoint of a job that offers cheaper
plans says which it serves (`CloudStep.downgrade`), and the run resumes with that plan as the job's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import AsyncIterator, Callable, Optional, Protocol

import torch

from ecdiff.engine.aio import EngineStep, engine_events
from ecdiff.engine.core import DenoisingEngine
from ecdiff.engine.work import CheaperPlan, Downgrade
from ecdiff.loading import LoadedModel
from ecdiff.preparation import PreparedRun, prepare_run
from ecdiff.sampling import SamplerState, StepRecord
from ecdiff.strategies import StepKind, Strategy


@dataclass(frozen=True)
class CloudJob:
    prompt: str
    seed: int
    num_steps: int
    strategy: Strategy
    latents_every: int = 0  # send the latent after step i when (i + 1) % latents_every == 0
    # Cheaper strategies the engine may serve instead under load, most accurate first (the frontier's
    # ladder, `ecdiff.strategy_config.Frontier`); empty: exactly `strategy`.
    cheaper: tuple[Strategy, ...] = ()


@dataclass(frozen=True)
class CloudStep:
    record: StepRecord
    latents: Optional[torch.Tensor]  # only at the steps the job asked for
    checkpoint: Optional[SamplerState] = None  # the loop's whole state after this step, when checkpointed
    # With a checkpoint: the engine serves job.cheaper[downgrade.index], whose state it is (None: job.strategy's).
    downgrade: Optional[Downgrade] = None


@dataclass(frozen=True)
class CloudHandoff:
    step: int
    latents: torch.Tensor
    timesteps: tuple[int, ...]
    cloud_calls: int
    approx_steps: int
    compute_seconds: float  # preparing + the engine's steps, queueing excluded
    queue_seconds: float  # waiting for a preparing thread and in the engine's queue
    downgrade: Optional[Downgrade] = None  # the engine served job.cheaper[downgrade.index]
    resumed_at: tuple[int, ...] = ()  # steps from which the phase resumed on another replica


def checkpoints(every: int, start: int, stop: int) -> Optional[Callable[[SamplerState], bool]]:
    """Which states of a run of steps [start, stop) to checkpoint (`engine_events`' keep_state): the
    first one materialised `every` or more steps after the last, never the one entering `stop` (the
    end is sent anyway); None when `every` is 0."""
    if not every:
        return None
    checkpointed = start

    def due(state: SamplerState) -> bool:
        nonlocal checkpointed
        if state.step - checkpointed >= every and state.step < stop:
            checkpointed = state.step
            return True
        return False

    return due


class CloudPhaseLost(Exception):
    """The process running the cloud phase went away mid-stream (a Ray Serve replica died)."""


class RunsCloudPhase(Protocol):
    """Where a cloud phase runs: this process's engine, or a Ray Serve replica's (services/ray_runner.py)."""

    def run(self, job: CloudJob, deadline: Optional[float] = None,
            request_id: str = "") -> AsyncIterator[CloudStep | CloudHandoff]: ...


class CloudPhaseRunner:
    def __init__(self, model: LoadedModel, engine: DenoisingEngine, executor: Executor,
                 checkpoint_every: int = 0) -> None:
        self.model, self.engine, self.executor = model, engine, executor
        self.checkpoint_every = checkpoint_every  # 0: no checkpoints

    async def run(self, job: CloudJob, deadline: Optional[float] = None, request_id: str = "",
                  resume: Optional[SamplerState] = None) -> AsyncIterator[CloudStep | CloudHandoff]:
        """`resume`: continue `job.strategy`'s plan from this checkpointed state instead of the seeded
        start (its cheaper plans are then not offered: the state is that plan's; a checkpoint of a
        cheaper plan resumes with that plan as `job.strategy`)."""
        asked = time.perf_counter()
        start = dict(seeds=job.seed) if resume is None else dict(state=resume)

        def prepare() -> tuple[PreparedRun, float, float]:
            began = time.perf_counter()
            run = prepare_run(job.strategy, prompts=job.prompt, num_steps=job.num_steps, guidance=self.model.guidance,
                              cloud=self.model.pipe, **start)
            return run, began, time.perf_counter()

        run, began, prepared = await asyncio.get_running_loop().run_in_executor(self.executor, prepare)
        # A cheaper plan is the same run (prompt, latents, schedule) under another strategy.
        cheaper = () if resume is not None else tuple(
            CheaperPlan(replace(run, strategy=strategy), strategy.handoff_step(job.num_steps)) for strategy in job.cheaper)
        switch = job.strategy.handoff_step(job.num_steps)
        every = job.latents_every
        pending = False  # a wanted latent not yet sent: it fell inside a fused approximated run

        def keep(record: StepRecord, x: Optional[torch.Tensor], switch: int) -> bool:
            # Runs are never split to materialise a latent: splitting a fused run changes its
            # rounding, and the result must stay bit-identical to the in-process `sample`.
            nonlocal pending
            pending = pending or (every > 0 and (record.index + 1) % every == 0)
            send = pending and x is not None and record.index + 1 < switch
            pending = pending and not send
            return send

        counts = {StepKind.CLOUD: 0, StepKind.APPROX: 0}
        keep_state = checkpoints(self.checkpoint_every, run.start_step, switch)
        events = engine_events(self.engine, run, switch, keep_latents=keep, keep_state=keep_state,
                               deadline=deadline, request_id=request_id, cheaper=cheaper)
        # Closed with this generator, not later by the garbage collector: leaving cancels the request at once.
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, EngineStep):
                    counts[event.record.kind] += 1
                    yield CloudStep(event.record, event.latents, event.state, event.downgrade)
                else:
                    served = job.strategy if event.downgrade is None else job.cheaper[event.downgrade.index]
                    yield CloudHandoff(step=served.handoff_step(job.num_steps), latents=event.state.latents,
                                       timesteps=tuple(int(t) for t in run.scheduler.timesteps.tolist()),  # one read-back, not one per step
                                       cloud_calls=counts[StepKind.CLOUD], approx_steps=counts[StepKind.APPROX],
                                       compute_seconds=(prepared - began) + event.run_seconds,
                                       queue_seconds=(began - asked) + event.queued_seconds, downgrade=event.downgrade)
