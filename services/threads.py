"""Run a blocking, event-emitting job in a worker thread and consume its events from asyncio.

The job gets an `emit(event)` function. Stopping (the RPC was cancelled, timed out, or the
server is shutting down) makes the next `emit` raise `Stopped`, so a denoising loop that emits
once per step stops within one step; the worker thread is always joined before returning.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import Executor
from typing import AsyncIterator, Callable

_DONE = object()


class Stopped(Exception):
    """Raised inside the worker when its consumer went away."""


async def events_from_thread(executor: Executor, job: Callable[[Callable[[object], None]], object]) -> AsyncIterator[object]:
    """Yield every event `job(emit)` emits; re-raise its exception; stop it when abandoned."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def emit(event: object) -> None:
        if stop.is_set():
            raise Stopped()
        loop.call_soon_threadsafe(queue.put_nowait, event)

    # run_in_executor does not carry context variables (the request id) into the thread.
    future = loop.run_in_executor(executor, contextvars.copy_context().run, job, emit)
    future.add_done_callback(lambda _: queue.put_nowait(_DONE))
    try:
        while True:
            event = await queue.get()
            if event is _DONE:
                break
            yield event
        future.result()  # re-raises the job's exception
    finally:
        stop.set()
        if not future.done():
            # Wait for the thread to notice (within one step) even if we are being cancelled,
            # so a slot is only freed when its compute really ended.
            try:
                await asyncio.shield(future)
            except BaseException:
                pass
