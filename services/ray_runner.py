"""The gRPC front end's side of the Ray deployment: the cloud phase and DiffusionX's refinement on a
replica, through a deployment handle with streaming responses, as the same typed events the local
runners yield.

Leaving the iteration (the RPC was cancelled or ended) cancels the Ray call, which cancels the
replica's engine request at its next step boundary; the deadline is sent as seconds left. A
replica's own refusal (QueueFull, DeadlineUnmeetable, DeadlineExceeded, a ValueError) is re-raised
as itself, so the servicer maps it to the same status code as on a plain cloud.

A replica that dies mid-stream (Ray's ActorDiedError and kin): the cloud phase or the refinement
resumes on another replica (Ray's router no longer picks the dead one) from the last checkpoint the
lost one streamed (the loop's whole state, every `resume_every` steps; a refinement's also keeps its
strength; a cloud phase's names the cheaper plan the engine served, which the resumed job then runs
as its own), or from the start when none came, at most `max_resumes` times per request; the caller
sees one stream with every step once, and the handoff or the refinement says where it resumed. Past that,
the loss is `CloudPhaseLost` (UNAVAILABLE) and the edge finishes from its last latent (degraded).
"""

from __future__ import annotations

import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import replace
from typing import AsyncIterator, Optional

from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import ReplicaUnavailableError

from ecdiff.diffusionx.refine import Refinement
from ecdiff.engine.work import Downgrade
from ecdiff.strategies import StepKind

from .cloud_phase import CloudHandoff, CloudJob, CloudPhaseLost, CloudStep
from .refine_phase import RefineStep

log = logging.getLogger(__name__)


class ResumingRunner(ABC):
    """One request's events across the replicas that serve it in turn: the replica's `method` is called
    with (job, seconds left, request id, checkpoint), from the start when the checkpoint is None. Steps
    carry a `record` and maybe a `checkpoint` (with its `step`); the event that is not a step ends the
    stream, adjusted by `resumed` when the stream resumed."""

    method: str  # the replica's streaming method
    what: str  # what runs, in logs

    def __init__(self, handle, max_resumes: int = 0) -> None:
        self.handle = handle.options(stream=True)
        self.max_resumes = max_resumes

    async def run(self, job, deadline: Optional[float] = None, request_id: str = "") -> AsyncIterator:
        started = time.perf_counter()
        call = getattr(self.handle, self.method)
        checkpoint = None
        served = None  # the engine's choice among the job's cheaper plans that the checkpoint belongs to
        sent = 0  # steps [0, sent) were passed on; a resumed replica repeats those after its checkpoint
        counts: Counter = Counter()  # steps passed on, by kind
        resumed_at: list[int] = []  # the step each resume started from (0: from the start)
        while True:
            try:
                async with contextlib.aclosing(replica_stream(call.remote(
                        self.job_to_resume(job, served), seconds_left(deadline), request_id, checkpoint))) as events:
                    async for event in events:
                        if not isinstance(event, (CloudStep, RefineStep)):
                            yield self.resumed(event, resumed_at, counts, time.perf_counter() - started, served) \
                                if resumed_at else event
                            return
                        if event.checkpoint is not None:
                            checkpoint = event.checkpoint
                            # A resumed run serves one plan, so its checkpoints name none: keep the first's.
                            served = self.plan_of(event) or served
                        if event.record.index >= sent:
                            sent = event.record.index + 1
                            counts[event.record.kind] += 1
                            yield event
                return  # ended without a final event: passed on as it came
            except CloudPhaseLost as lost:
                if len(resumed_at) >= self.max_resumes:
                    raise
                resumed_at.append(0 if checkpoint is None else checkpoint.step)
                log.warning("%s replica lost; resuming on another", self.what, extra={"fields": {
                    "step": resumed_at[-1], "resumes": len(resumed_at), "reason": str(lost)}})

    @abstractmethod
    def resumed(self, end, resumed_at: list[int], counts: Counter, wall_seconds: float, served):
        """The stream's last event when it resumed (`resumed_at` not empty); `served`: `plan_of` the
        checkpoint it resumed from."""

    def plan_of(self, step):
        """Which of the job's plans a checkpointed step's state belongs to; None: the job's own."""
        return None

    def job_to_resume(self, job, served):
        """The job to send a replica that resumes from a checkpoint of the plan `served`."""
        return job


class RayCloudPhaseRunner(ResumingRunner):
    method, what = "denoise", "cloud"

    def resumed(self, handoff: CloudHandoff, resumed_at: list[int], counts: Counter,
                wall_seconds: float, served: Optional[Downgrade]) -> CloudHandoff:
        """The handoff of a phase that resumed: its steps counted once each, the time lost with a replica
        counted as the cloud's compute (the front end's wall time since the first submission, less the
        last replica's queueing), and the cheaper plan the first replica's engine chose, which the
        resumed replicas ran as the job's own."""
        if resumed_at[-1] > 0:  # the last replica ran only the steps after its checkpoint
            handoff = replace(handoff, cloud_calls=counts[StepKind.CLOUD], approx_steps=counts[StepKind.APPROX])
        if served is not None:
            handoff = replace(handoff, downgrade=served)
        return replace(handoff, compute_seconds=max(0.0, wall_seconds - handoff.queue_seconds),
                       resumed_at=tuple(resumed_at))

    def plan_of(self, step: CloudStep) -> Optional[Downgrade]:
        return step.downgrade

    def job_to_resume(self, job: CloudJob, served: Optional[Downgrade]) -> CloudJob:
        """The served cheaper plan becomes the job's own (its state is that plan's; no other is offered)."""
        return job if served is None else replace(job, strategy=job.cheaper[served.index], cheaper=())


class RayRefinePhaseRunner(ResumingRunner):
    method, what = "refine", "refinement"

    def resumed(self, refinement: Refinement, resumed_at: list[int], counts: Counter,
                wall_seconds: float, served: None) -> Refinement:
        """Its counts are the whole refinement's already; the time lost with a replica is the cloud's
        (the front end's wall time since the first submission, less the last replica's queueing)."""
        return replace(refinement, compute_seconds=max(0.0, wall_seconds - refinement.queue_seconds),
                       resumed_at=tuple(resumed_at))


def seconds_left(deadline: Optional[float]) -> Optional[float]:
    """Replicas may run on other machines' clocks: a deadline travels as seconds left."""
    return None if deadline is None else deadline - time.monotonic()


async def replica_stream(response) -> AsyncIterator:
    """A replica's events (it streams them in lists), its own exceptions re-raised as themselves, its
    loss as CloudPhaseLost."""
    try:
        async for batch in response:
            for event in batch:
                yield event
    except RayTaskError as exc:
        # The replica's exception, with its type and message (not Ray's traceback dump).
        raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None
    except (RayActorError, ReplicaUnavailableError) as exc:  # ActorDiedError, ActorUnavailableError too
        raise CloudPhaseLost(f"the cloud replica serving this request was lost mid-stream: {type(exc).__name__}") from None
    finally:
        response.cancel()
