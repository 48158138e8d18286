"""The engine's one validated configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    # Samples in one UNet call (each guided sample adds two rows: unconditional and conditional).
    # Measured on the shipped cloud UNet, 2 CPU threads: 1 -> 26 ms, 8 -> 57 ms (3.7x the
    # throughput), 32 -> 166 ms (5.1x); on an SD-1.x-size GPU model about 3x at 8.
    max_batch: int = 8
    # Requests being denoised at once. Approximated steps cost no UNet call, so an EC-Diff request
    # needs the UNet on about a third of its cloud steps: twice max_batch keeps batches full.
    max_running: int = 16
    max_queue: int = 64  # admitted requests waiting for a running slot; more are refused

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_running", "max_queue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"engine {name} must be an integer >= 1, got {value!r}")
        if self.max_running < self.max_batch:
            raise ValueError(f"engine max_running ({self.max_running}) must be >= max_batch ({self.max_batch})")
