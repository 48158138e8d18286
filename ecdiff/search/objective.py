"""The search objective, J = w1 * SSIM + w2 * Efficiency + w3 * Burden (higher is better).

Terms for a candidate theta, each measured on the search's prompt set (docs/search.md):
    SSIM(theta)       mean SSIM of the decoded images against the cloud-only images of the same
                      prompts and seeds (ecdiff.metrics.ssim)
    Efficiency(theta) 1 - t(theta) / t(cloud): the share of cloud-only latency saved, from
                      measured median seconds per image, both measured by the same evaluator
    Burden(theta)     1 - c(theta) / T: the share of the T denoising steps that need no cloud
                      UNet call (approximated or on the edge), i.e. the relief of the cloud's load
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Measurement:
    ssim: float  # mean over the prompt set, vs cloud-only
    latency_s: float  # median seconds per image
    cloud_calls: int  # real cloud UNet calls per image
    num_steps: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ssim) and math.isfinite(self.latency_s) and self.latency_s > 0):
            raise ValueError(f"a measurement needs a finite SSIM and a latency > 0, got {self}")
        if not 0 <= self.cloud_calls <= self.num_steps:
            raise ValueError(f"cloud_calls must be in [0, num_steps], got {self.cloud_calls} of {self.num_steps}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Measurement":
        return cls(float(data["ssim"]), float(data["latency_s"]), int(data["cloud_calls"]), int(data["num_steps"]))


@dataclass(frozen=True)
class ObjectiveTerms:
    ssim: float
    efficiency: float
    burden: float
    value: float

    def as_dict(self) -> dict:
        return asdict(self)


def objective_terms(m: Measurement, cloud: Measurement, weights: tuple[float, float, float]) -> ObjectiveTerms:
    efficiency = 1.0 - m.latency_s / cloud.latency_s
    burden = 1.0 - m.cloud_calls / m.num_steps
    w1, w2, w3 = weights
    return ObjectiveTerms(m.ssim, efficiency, burden, w1 * m.ssim + w2 * efficiency + w3 * burden)
