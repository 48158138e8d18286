"""How long the engine's iterations take on its model's device, without waiting for the device.

The engine's deadline admission and its iteration histogram need each iteration's time. On the CPU
an iteration's work is done when the host returns from it, so the host's clock times it. On CUDA
the host only enqueues the UNet call and the updates and runs ahead: its clock would time the
launches. There a CUDA event is recorded before and after each iteration's work and the time
between them is read once the second one has completed (`Event.query`, which never blocks), one or
more iterations later. The interval covers the device's work and any wait for the host's launches
in between, so it is the iteration's time whichever side is the slower. The loop synchronises only
when it has nothing left to run (`drain`), never per iteration.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Optional

import torch


class IterationTimer:
    def __init__(self, device: Optional[torch.device | str] = None) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._cuda = self.device.type == "cuda"
        self._pending: deque[tuple[int, object, object]] = deque()  # (batch, start, end), oldest first

    def start(self) -> object:
        """A mark taken before an iteration's work."""
        if not self._cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(self.device))
        return event

    def stop(self, started: object, batch: int) -> None:
        """The iteration begun at `started` has enqueued all its work, a UNet call of `batch` rows."""
        if not self._cuda:
            self._pending.append((batch, started, time.perf_counter()))
            return
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(self.device))
        self._pending.append((batch, started, event))

    def finished(self) -> list[tuple[int, float]]:
        """(batch, seconds) of the iterations timed since the last call whose work has completed, oldest first."""
        done = []
        while self._pending and self._complete(self._pending[0][2]):
            done.append(self._seconds(*self._pending.popleft()))
        return done

    def drain(self) -> list[tuple[int, float]]:
        """Every pending iteration's (batch, seconds), waiting for the device where it is still busy."""
        if self._cuda and self._pending:
            self._pending[-1][2].synchronize()
        return self.finished()

    def _complete(self, end: object) -> bool:
        return not self._cuda or end.query()

    def _seconds(self, batch: int, start: object, end: object) -> tuple[int, float]:
        return batch, (end - start if not self._cuda else start.elapsed_time(end) / 1000.0)
