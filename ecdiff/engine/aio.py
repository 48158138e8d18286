"""The engine from asyncio: submit a prepared run and iterate over its events, no thread per request.

Events come from the engine's thread through `call_soon_threadsafe`. Leaving the iteration early
(the caller was cancelled, or its RPC ended) cancels the request, which then leaves the engine at
its next step boundary.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Optional

import torch

from ..preparation import PreparedRun
from ..sampling import StepRecord
from .core import DenoisingEngine
from .work import CheaperPlan, EngineResult, EngineWork


@dataclass(frozen=True)
class EngineStep:
    record: StepRecord
    latents: Optional[torch.Tensor]  # a private copy, only for the steps `keep_latents` chose


@dataclass(frozen=True)
class _End:
    outcome: EngineResult | BaseException


KeepLatents = Callable[[StepRecord, Optional[torch.Tensor], int], bool]


async def engine_events(engine: DenoisingEngine, run: PreparedRun, stop: int, *,
                        keep_latents: KeepLatents = lambda r, x, stop: False, deadline: Optional[float] = None,
                        request_id: str = "", cheaper: tuple[CheaperPlan, ...] = ()
                        ) -> AsyncIterator[EngineStep | EngineResult]:
    """Yield an `EngineStep` per step, then the `EngineResult`; raise what ended the request otherwise
    (QueueFull / DeadlineUnmeetable at submission, DeadlineExceeded, a model error). `keep_latents(record,
    latents, stop)`: whether to copy the step's latents out, `stop` being where the served plan stops
    (a cheaper plan's, when the engine serves one of `cheaper`)."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def on_step(record: StepRecord, latents: Optional[torch.Tensor]) -> None:
        # Asked at every step (the caller may track state across steps); copied on the engine's
        # thread, so the request's next step cannot race the caller's reading. The engine chose the
        # served plan before the first step.
        keep = keep_latents(record, latents, work.served[1])
        kept = latents.clone() if keep and latents is not None else None
        loop.call_soon_threadsafe(events.put_nowait, EngineStep(record, kept))

    def on_end(outcome: EngineResult | BaseException) -> None:
        loop.call_soon_threadsafe(events.put_nowait, _End(outcome))

    work = EngineWork(run, stop, on_step, on_end, deadline, request_id, cheaper=cheaper)
    ticket = engine.submit(work)
    ended = False
    try:
        while True:
            event = await events.get()
            if isinstance(event, _End):
                ended = True
                if isinstance(event.outcome, BaseException):
                    raise event.outcome
                yield event.outcome
                return
            yield event
    finally:
        if not ended:
            ticket.cancel()
