"""The search objective, J = w1 * SSIM + w2 * Efficiency + w3 * Burden (higher is better).

Terms for a candidate theta, each measured on the search's prompt set (docs/search.md):
    SSIM(theta)       mean SSIM of the decoded images against the cloud-only images of the same
                      prompts and seeds (ecdiff.metrics.ssim)
    Efficiency(theta) 1 - r(theta): the share of cloud-only latency saved, where r is the median
                      over the prompt set of t(theta) / t(cloud) with each cloud-only picture timed
                      right before theta's (Measurement.relative_latency)
    Burden(theta)     1 - c(theta) / T: the share of the T denoising steps that need no cloud
                      UNet call (approximated or on the edge), i.e. the relief of the cloud's load
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Timing:
    latency_s: float  # median seconds per image
    relative_latency: float  # median over prompts of seconds per image / cloud-only seconds timed beside it


@dataclass(frozen=True)
class Measurement:
    ssim: float  # mean over the prompt set, vs cloud-only
    latency_s: float  # median seconds per image
    cloud_calls: int  # real cloud UNet calls per image
    num_steps: int
    relative_latency: float  # median over prompts of seconds per image / cloud-only seconds timed beside it

    def __post_init__(self) -> None:
        timings = (self.latency_s, self.relative_latency)
        if not (math.isfinite(self.ssim) and all(math.isfinite(t) and t > 0 for t in timings)):
            raise ValueError(f"a measurement needs a finite SSIM and finite latencies > 0, got {self}")
        if not 0 <= self.cloud_calls <= self.num_steps:
            raise ValueError(f"cloud_calls must be in [0, num_steps], got {self.cloud_calls} of {self.num_steps}")

    @property
    def timing(self) -> Timing:
        return Timing(self.latency_s, self.relative_latency)

    def with_timing(self, timing: Timing) -> "Measurement":
        return replace(self, latency_s=timing.latency_s, relative_latency=timing.relative_latency)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Measurement":
        return cls(float(data["ssim"]), float(data["latency_s"]), int(data["cloud_calls"]), int(data["num_steps"]),
                   float(data["relative_latency"]))


@dataclass(frozen=True)
class ObjectiveTerms:
    ssim: float
    efficiency: float
    burden: float
    value: float

    def as_dict(self) -> dict:
        return asdict(self)


def objective_terms(m: Measurement, weights: tuple[float, float, float]) -> ObjectiveTerms:
    efficiency = 1.0 - m.relative_latency
    burden = 1.0 - m.cloud_calls / m.num_steps
    w1, w2, w3 = weights
    return ObjectiveTerms(m.ssim, efficiency, burden, w1 * m.ssim + w2 * efficiency + w3 * burden)
