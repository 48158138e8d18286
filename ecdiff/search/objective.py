"""The search objective, J = w1 * SSIM + w2 * Efficiency + w3 * Burden (higher is better).

Terms for a candidate theta, each measured on the search's prompt set (docs/search.md):
    SSIM(theta)       mean SSIM of the decoded images against the cloud-only images of the same
                      prompts and seeds (ecdiff.metrics.ssim)
    Efficiency(theta) 1 - t(theta) / t(cloud): the share of cloud-only latency saved, with t the
                      seconds per picture of a plan's work from per-step costs measured in the
                      same search (ecdiff.search.costs: why not each point's own stopwatch)
    Burden(theta)     1 - c(theta) / T: the share of the T denoising steps that need no cloud
                      UNet call (approximated or on the edge), i.e. the relief of the cloud's load
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

from ..strategies import PlanCounts
from .costs import StepCosts


@dataclass(frozen=True)
class Measurement:
    ssim: float  # mean over the prompt set, vs cloud-only
    latency_s: float  # median measured seconds per image (for the record and the bench's frontier plot)
    cloud_calls: int  # real cloud UNet calls per image
    approx_steps: int
    edge_steps: int
    num_steps: int
    fidelity: Optional[float] = None  # mean scorer prompt fidelity (points), when the evaluator has a scorer

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ssim) and math.isfinite(self.latency_s) and self.latency_s > 0):
            raise ValueError(f"a measurement needs a finite SSIM and a latency > 0, got {self}")
        if self.fidelity is not None and not (math.isfinite(self.fidelity) and 0 <= self.fidelity <= 100):
            raise ValueError(f"fidelity must be in [0, 100] points, got {self.fidelity}")
        steps = (self.cloud_calls, self.approx_steps, self.edge_steps)
        if min(steps) < 0 or sum(steps) != self.num_steps:
            raise ValueError(f"cloud, approximated and edge steps must be >= 0 and add up to num_steps, got {self}")

    @property
    def counts(self) -> PlanCounts:
        return PlanCounts(self.cloud_calls, self.approx_steps, self.edge_steps)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Measurement":
        fidelity = data.get("fidelity")  # absent from measurements made without a scorer
        return cls(float(data["ssim"]), float(data["latency_s"]), int(data["cloud_calls"]), int(data["approx_steps"]),
                   int(data["edge_steps"]), int(data["num_steps"]), None if fidelity is None else float(fidelity))


@dataclass(frozen=True)
class ObjectiveTerms:
    ssim: float
    efficiency: float
    burden: float
    value: float

    def as_dict(self) -> dict:
        return asdict(self)


def objective_terms(m: Measurement, costs: StepCosts, weights: tuple[float, float, float]) -> ObjectiveTerms:
    cloud_only = costs.seconds(PlanCounts(m.num_steps, 0, 0))
    efficiency = 1.0 - costs.seconds(m.counts) / cloud_only
    burden = 1.0 - m.cloud_calls / m.num_steps
    w1, w2, w3 = weights
    return ObjectiveTerms(m.ssim, efficiency, burden, w1 * m.ssim + w2 * efficiency + w3 * burden)
