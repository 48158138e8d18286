"""Bounded concurrency: at most `limit` requests compute at once; the rest are refused at once
(`Busy`, which the servicers report as RESOURCE_EXHAUSTED) rather than queued behind minutes of
denoising. Used from the event loop only, so a plain counter suffices."""

from __future__ import annotations

import contextlib
from typing import Iterator


class Busy(Exception):
    pass


class Admission:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"concurrency limit must be >= 1, got {limit}")
        self.limit = limit
        self.active = 0
        self.refused = 0

    def acquire(self) -> None:
        if self.active >= self.limit:
            self.refused += 1
            raise Busy(f"server busy: {self.active} of {self.limit} requests running; retry later")
        self.active += 1

    def release(self) -> None:
        self.active -= 1

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot for the block; raises Busy when none is free."""
        self.acquire()
        try:
            yield
        finally:
            self.release()
