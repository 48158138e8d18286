"""The engine's one validated configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    # Samples in one UNet call (each guided sample adds two rows: unconditional and conditional).
    # Chosen with `ecdiff bench load` on this 2-core CPU (shipped pair, 32 clients, EC-Diff): 16
    # served 4.6-4.9 req/s, 8 only 3.0-3.4 and 32 no more than 16 (docs/evaluation.md); at light
    # load batches stay small whatever the bound. On an SD-1.x-size GPU model about 3x at 8.
    max_batch: int = 16
    # Requests being denoised at once. Approximated steps cost no UNet call, so an EC-Diff request
    # needs the UNet on about a third of its cloud steps: twice max_batch keeps batches full.
    max_running: int = 32
    max_queue: int = 64  # admitted requests waiting for a running slot; more are refused
    # Load-adaptive quality: a request that offers cheaper plans (`EngineWork.cheaper`, EC-Diff's
    # measured ladder) is served with the most accurate one whose estimated end meets its deadline
    # when its own plan would not, or when `adaptive_queue` or more requests wait. Off by default: a
    # result's quality then never depends on the load unless the operator chose that.
    adaptive_quality: bool = False
    # Queue length from which a request is served cheaper even when its deadline allows its own plan
    # (or it has none); 0 = deadlines alone decide. A throughput-for-quality trade the operator sets.
    adaptive_queue: int = 0

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_running", "max_queue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"engine {name} must be an integer >= 1, got {value!r}")
        if self.max_running < self.max_batch:
            raise ValueError(f"engine max_running ({self.max_running}) must be >= max_batch ({self.max_batch})")
        if not isinstance(self.adaptive_quality, bool):
            raise ValueError(f"engine adaptive_quality must be true or false, got {self.adaptive_quality!r}")
        if isinstance(self.adaptive_queue, bool) or not isinstance(self.adaptive_queue, int) or self.adaptive_queue < 0:
            raise ValueError(f"engine adaptive_queue must be an integer >= 0, got {self.adaptive_queue!r}")
        if self.adaptive_queue and not self.adaptive_quality:
            raise ValueError(f"engine adaptive_queue ({self.adaptive_queue}) needs adaptive_quality on")
