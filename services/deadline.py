"""An RPC's gRPC deadline as the engine's clock (time.monotonic), or None when the caller set none."""

from __future__ import annotations

import time
from typing import Optional


def deadline_of(context) -> Optional[float]:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining
