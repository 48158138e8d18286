"""The engine from asyncio: submit a prepared run and iterate over its events, no thread per request.

Events come from the engine's thread through `call_soon_threadsafe`. Leaving the iteration early
(the caller was cancelled, or its RPC ended) cancels the request, which then leaves the engine at
its next step boundary. A caller that may resume the run elsewhere asks for the loop's state at
some steps (`keep_state`: resumable checkpoints).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Optional

import torch

from ..preparation import PreparedRun
from ..sampling import SamplerState, StepRecord
from .core import DenoisingEngine
from .work import CheaperPlan, Downgrade, EngineResult, EngineWork


@dataclass(frozen=True)
class EngineStep:
    record: StepRecord
    latents: Optional[torch.Tensor]  # a private copy, only for the steps `keep_latents` chose
    # A private copy of the loop's whole state after this step, only for the steps `keep_state` chose.
    state: Optional[SamplerState] = None
    # With a state: the cheaper plan the engine serves, whose state it is (None: the request's own plan).
    downgrade: Optional[Downgrade] = None


@dataclass(frozen=True)
class _End:
    outcome: EngineResult | BaseException


KeepLatents = Callable[[StepRecord, Optional[torch.Tensor], int], bool]


async def engine_events(engine: DenoisingEngine, run: PreparedRun, stop: int, *,
                        keep_latents: KeepLatents = lambda r, x, stop: False,
                        keep_state: Optional[Callable[[SamplerState], bool]] = None, deadline: Optional[float] = None,
                        request_id: str = "", cheaper: tuple[CheaperPlan, ...] = ()
                        ) -> AsyncIterator[EngineStep | EngineResult]:
    """Yield an `EngineStep` per step, then the `EngineResult`; raise what ended the request otherwise
    (QueueFull / DeadlineUnmeetable at submission, DeadlineExceeded, a model error). `keep_latents(record,
    latents, stop)`: whether to copy the step's latents out, `stop` being where the served plan stops
    (a cheaper plan's, when the engine serves one of `cheaper`). `keep_state` is asked at every step
    whose latent was materialised."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    kept_state: list[SamplerState] = []  # the state kept for the step being emitted (engine thread)

    def on_step(record: StepRecord, latents: Optional[torch.Tensor]) -> None:
        # Asked at every step (the caller may track state across steps); copied on the engine's
        # thread, so the request's next step cannot race the caller's reading. The engine chose the
        # served plan before the first step.
        work = work_ref()  # alive: the engine holds it while it calls back
        keep = keep_latents(record, latents, work.served[1])
        kept = latents.clone() if keep and latents is not None else None
        state = kept_state.pop() if kept_state else None
        served = work.downgrade if state is not None else None
        loop.call_soon_threadsafe(events.put_nowait, EngineStep(record, kept, state, served))

    def on_state(state: SamplerState) -> None:  # called just before the same step's on_step
        if keep_state(state):
            kept_state.append(state.map(torch.Tensor.clone))

    def on_end(outcome: EngineResult | BaseException) -> None:
        loop.call_soon_threadsafe(events.put_nowait, _End(outcome))

    work = EngineWork(run, stop, on_step, on_end, deadline, request_id, None if keep_state is None else on_state,
                      cheaper=cheaper)
    # Weakly: work -> on_step -> work would be a reference cycle, and the request's run (its tensors,
    # scheduler, conditioning) would outlive it until a full garbage collection, minutes later.
    work_ref = weakref.ref(work)
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
