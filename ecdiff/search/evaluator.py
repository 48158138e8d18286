"""Evaluators turn a parameter point into a Measurement. The search only knows the protocol, so
tests drive it with a synthetic evaluator and real runs with `PipelineEvaluator`."""

from __future__ import annotations

import json
import statistics
from typing import Protocol, Sequence

from tqdm import tqdm

from ..loading import ModelPair
from ..metrics import ssim, stack_images
from ..strategies import CloudOnly, PlanCounts, Strategy
from .generate import generate
from .objective import Measurement, Timing
from .params import ECDiffParams
from .prompts import PromptItem


class Evaluator(Protocol):
    def fingerprint(self) -> str:
        """Everything a measurement depends on besides the point (keys the disk cache)."""
        ...

    def cloud_reference(self, num_steps: int) -> Measurement:
        """Cloud-only on the same prompts (SSIM 1 and relative latency 1 by definition), for the record."""
        ...

    def measure(self, params: ECDiffParams, timing: Timing | None) -> Measurement:
        """SSIM and cloud calls of the point; its timing is `timing` when given (measured before on a
        point with the same work), else measured now."""
        ...


# Changed whenever what a Measurement's timing means changes, so older cached measurements are not mixed in.
TIMING_METHOD = "relative-to-interleaved-cloud, once per plan counts"


class PipelineEvaluator:
    """Generates every prompt of the set with a strategy and compares with cloud-only images.

    Timing: before each of a point's pictures, the cloud-only picture of the same prompt is generated
    again and timed, and the point's relative latency is the median of the per-prompt ratios. The
    speed of this 2-core VM drifts by 10-30 % over minutes, idle or not (docs/search.md), which made
    absolute medians of points minutes apart decide the walk; a cloud run seconds before each
    picture sees the same conditions, so the ratio keeps what the point itself costs. A point whose
    work (plan counts) was timed before reuses that timing (the runner passes it) and only generates
    its pictures for SSIM.
    """

    def __init__(self, pair: ModelPair, items: Sequence[PromptItem], num_steps: int, progress: bool = True) -> None:
        if not items:
            raise ValueError("the search needs at least one prompt")
        self.pair, self.items, self.num_steps, self.progress = pair, list(items), num_steps, progress
        self._reference = None

    def fingerprint(self) -> str:
        return json.dumps({
            "pair": self.pair.cache_key,
            "num_steps": self.num_steps,
            "timing": TIMING_METHOD,
            "items": [[item.prompt, item.seed] for item in self.items],
        }, sort_keys=True)

    def _run(self, strategy: Strategy, label: str):
        runs = [generate(self.pair, strategy, item.prompt, item.seed, self.num_steps)
                for item in tqdm(self.items, desc=label, unit="image", leave=False, disable=not self.progress)]
        return stack_images([r.image for r in runs]), statistics.median(r.latency_s for r in runs)

    def _cloud(self):
        if self._reference is None:
            self._reference = self._run(CloudOnly(), "cloud-only")
        return self._reference

    def cloud_reference(self, num_steps: int) -> Measurement:
        _, latency = self._cloud()
        return Measurement(1.0, latency, PlanCounts.of(CloudOnly().plan(num_steps)).cloud, num_steps, 1.0)

    def measure(self, params: ECDiffParams, timing: Timing | None) -> Measurement:
        if params.num_steps != self.num_steps:
            raise ValueError(f"evaluator runs {self.num_steps} steps, point asks for {params.num_steps}")
        reference, _ = self._cloud()
        strategy = params.strategy()
        time_it = timing is None
        runs, ratios = [], []
        label = f"k={params.k} a={params.alpha} s={params.switch_step}" + (" (+ cloud timing)" if time_it else "")
        for item in tqdm(self.items, desc=label, unit="image", leave=False, disable=not self.progress):
            if time_it:
                cloud_s = generate(self.pair, CloudOnly(), item.prompt, item.seed, self.num_steps).latency_s
            runs.append(generate(self.pair, strategy, item.prompt, item.seed, self.num_steps))
            if time_it:
                ratios.append(runs[-1].latency_s / cloud_s)
        if time_it:
            timing = Timing(statistics.median(r.latency_s for r in runs), statistics.median(ratios))
        images = stack_images([r.image for r in runs])
        cloud_calls = PlanCounts.of(strategy.plan(self.num_steps)).cloud
        return Measurement(float(ssim(images, reference).mean()), timing.latency_s, cloud_calls, self.num_steps,
                           timing.relative_latency)
