"""A simulated network hop: bandwidth (Mbps) and one-way latency, one direction.

Messages serialise one after another at the bandwidth, then travel for the latency; a message
arriving while the link is busy waits its turn (so a stream of latents queues up on a slow
link, as on a real one). Pure arithmetic on timestamps: the caller sleeps until `arrival`.
Used to reproduce the papers' links (EC-Diff: 18.88 Mbps WiFi; DiffusionX: 20 Mbps uplink).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkConfig:
    bandwidth_mbps: float = 0.0  # 0 = unlimited
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("bandwidth_mbps", "latency_ms"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @property
    def shaped(self) -> bool:
        return self.bandwidth_mbps > 0 or self.latency_ms > 0


class Link:
    def __init__(self, config: LinkConfig) -> None:
        self.config = config
        self._free_at = -math.inf

    def arrival(self, nbytes: int, sent_at: float) -> float:
        """When a message of `nbytes` sent at `sent_at` has fully arrived."""
        start = max(sent_at, self._free_at)
        mbps = self.config.bandwidth_mbps
        done = start + (nbytes * 8 / (mbps * 1e6) if mbps > 0 else 0.0)
        self._free_at = done
        return done + self.config.latency_ms / 1000.0
