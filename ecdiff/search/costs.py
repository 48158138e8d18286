"""Seconds per picture predicted from a plan's work, with per-step costs measured on calibration pictures.

Why a model instead of each point's own stopwatch: on this 2-core VM a picture's time drifts by
10-30 % over minutes, idle or not, and even timed right beside a cloud-only picture the ratio
scatters by about 0.01 (docs/search.md). Neighbouring points of the walk differ by one step's work
(an edge call turned into an approximated step is about 0.5 % of a cloud-only picture), so their
own timings ranked them by noise and reruns disagreed. Every step is one of three kinds of fixed
work, so a picture's time is the overhead (prompt encoding, initial latents, decoding) plus its
steps' costs; measured once per search as medians over hundreds of timed steps, these give every
point a time that depends on its work alone, and points of equal work (alpha changes values, not
work) tie exactly, so SSIM ranks them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Sequence

from ..strategies import PlanCounts, StepKind


@dataclass(frozen=True)
class StepCosts:
    cloud_s: float  # one real cloud UNet step (guided)
    approx_s: float  # one approximated step
    edge_s: float  # one edge UNet step (guided)
    cloud_only_overhead_s: float  # the rest of a cloud-only picture: prompt encoding, latents, decoding
    collaborative_overhead_s: float  # the rest of a picture that uses both models (two prompt encodings)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.cloud_s <= 0:
            raise ValueError(f"cloud_s must be > 0, got {self.cloud_s}")

    def seconds(self, counts: PlanCounts) -> float:
        overhead = self.collaborative_overhead_s if counts.edge else self.cloud_only_overhead_s
        return overhead + counts.cloud * self.cloud_s + counts.approx * self.approx_s + counts.edge * self.edge_s

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StepCosts":
        return cls(**{name: float(data[name]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class TimedPicture:
    """What costs are fitted from: a picture's wall time and its steps' seconds, summed per kind."""

    latency_s: float
    counts: PlanCounts
    step_seconds: dict[StepKind, float]


def fit_step_costs(cloud_only: Sequence[TimedPicture], collaborative: Sequence[TimedPicture]) -> StepCosts:
    """Medians over pictures of seconds per step of each kind, and of the time outside the steps.

    `cloud_only`: pictures whose every step is a real cloud call; `collaborative`: pictures with
    approximated and edge steps (and cloud calls)."""
    if any(p.counts.approx or p.counts.edge for p in cloud_only):
        raise ValueError("cloud-only calibration pictures must have cloud steps only")
    if not collaborative or any(not (p.counts.cloud and p.counts.approx and p.counts.edge) for p in collaborative):
        raise ValueError("collaborative calibration pictures must have cloud, approximated and edge steps")
    if not cloud_only:
        raise ValueError("calibration needs at least one cloud-only picture")

    def per_step(pictures: Sequence[TimedPicture], kind: StepKind) -> float:
        return statistics.median(p.step_seconds[kind] / getattr(p.counts, kind.value) for p in pictures)

    def overhead(pictures: Sequence[TimedPicture]) -> float:
        return statistics.median(max(0.0, p.latency_s - sum(p.step_seconds.values())) for p in pictures)

    return StepCosts(
        cloud_s=per_step([*cloud_only, *collaborative], StepKind.CLOUD),
        approx_s=per_step(collaborative, StepKind.APPROX),
        edge_s=per_step(collaborative, StepKind.EDGE),
        cloud_only_overhead_s=overhead(cloud_only),
        collaborative_overhead_s=overhead(collaborative),
    )
