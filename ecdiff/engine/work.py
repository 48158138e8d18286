"""What the engine is given and what it gives back, as typed values.

`EngineWork`: one request's prepared run, the steps to run, where its events go and its deadline.
`EngineTicket`: the caller's handle on it (cancel). Events, on the engine's thread: `on_step`
after every step, then exactly one `on_end` with an `EngineResult` (the state entering `stop`) or an
exception (`Cancelled`, `DeadlineExceeded`, or the error that stopped it).
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
class EngineResult:
    state: SamplerState  # the state entering `stop`
    records: tuple[StepRecord, ...]
    queued_seconds: float  # from submission to the first step
    run_seconds: float  # from the first step to the end


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
