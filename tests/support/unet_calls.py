"""Control a model's pace from a test instead of timing it: count a UNet's calls and hold them."""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional


class UNetCalls:
    """Counts the calls a UNet starts; from the `hold_at`-th call on (1-based), each waits for
    `release` before it runs, so the test decides when the model moves on.

        with UNetCalls(pipe.unet, hold_at=3) as calls:
            ...; calls.held.wait(30); ...; calls.release.set()
    """

    def __init__(self, unet, hold_at: Optional[int] = None, max_hold_s: float = 120.0) -> None:
        self.unet, self.hold_at, self.max_hold_s = unet, hold_at, max_hold_s
        self.count = 0
        self.held = threading.Event()  # the hold_at-th call is waiting
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._handle = None

    def _pre_hook(self, *_):
        with self._lock:
            self.count += 1
            count = self.count
        if self.hold_at is not None and count >= self.hold_at:
            self.held.set()
            self.release.wait(self.max_hold_s)

    def __enter__(self) -> "UNetCalls":
        self._handle = self.unet.register_forward_pre_hook(self._pre_hook)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._handle.remove()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll `condition` until it holds; a bounded wait for an event, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)
