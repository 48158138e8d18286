"""What the engine is given and what it gives back, as typed values.

`EngineWork`: one request's prepared run, the steps to run, where its events go and its deadline,
and the cheaper plans it may be served with under load (`CheaperPlan`, most accurate first).
`EngineTicket`: the caller's handle on it (cancel). Events, on the engine's thread: `on_step`
after every step, then exactly one `on_end` with an `EngineResult` (the state entering the served
plan's stop, and the `Downgrade` when a cheaper plan was served) or an exception (`Cancelled`,
`DeadlineExceeded`, or the error that stopped it).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..preparation import PreparedRun
from ..sampling import SamplerState, StateCallback, StepCallback, StepRecord


class QueueFull(Exception):
    """Refused at submission: the queue is full."""


class DeadlineUnmeetable(Exception):
    """Refused at submission: the queue ahead means the deadline cannot be met."""


class Cancelled(Exception):
    """The caller cancelled the request (or went away)."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before it finished."""


@dataclass(frozen=True)
class CheaperPlan:
    """Another way to serve the same request with fewer model calls (load-adaptive quality): the
    request's run prepared with a cheaper strategy, and the step it stops at."""

    run: PreparedRun
    stop: int


@dataclass(frozen=True)
class Downgrade:
    """The engine served `EngineWork.cheaper[index]` instead of the work's own plan."""

    index: int
    cause: str  # "deadline": its own plan would miss the deadline; "queue": the queue reached adaptive_queue
    reason: str  # what the engine saw, in words


@dataclass(frozen=True)
class EngineResult:
    state: SamplerState  # the state entering the served plan's stop
    records: tuple[StepRecord, ...]
    queued_seconds: float  # from submission to the first step
    run_seconds: float  # from the first step to the end
    downgrade: Optional[Downgrade] = None  # set when a cheaper plan was served


_ids = itertools.count(1)


@dataclass
class EngineWork:
    run: PreparedRun
    stop: int  # run steps [run.start_step, stop)
    on_step: StepCallback
    on_end: Callable[[EngineResult | BaseException], None]
    deadline: Optional[float] = None  # time.monotonic() by which it must end; None: no deadline
    request_id: str = ""
    on_state: Optional[StateCallback] = None  # the loop's whole state at materialised steps (resumable checkpoints)
    id: int = field(default_factory=lambda: next(_ids))
    submitted: float = field(default_factory=time.monotonic)
    # Plans the engine may serve instead when its adaptive quality is on, most accurate first; empty:
    # exactly `run` (the request forbade it, or it has no cheaper plan).
    cheaper: tuple[CheaperPlan, ...] = ()
    downgrade: Optional[Downgrade] = None  # set by the engine at submission, before any step runs

    @property
    def served(self) -> tuple[PreparedRun, int]:
        """The run and the stop the engine serves: its own, or the cheaper plan it chose."""
        if self.downgrade is None:
            return self.run, self.stop
        plan = self.cheaper[self.downgrade.index]
        return plan.run, plan.stop


class EngineTicket:
    def __init__(self, work: EngineWork) -> None:
        self.work = work
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Leave at the next step boundary (the request's `on_end` gets `Cancelled`)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()
