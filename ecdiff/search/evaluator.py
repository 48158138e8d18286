"""Evaluators measure step costs once and then each parameter point. The search only knows the
protocol, so tests drive it with a synthetic evaluator and real runs with `PipelineEvaluator`."""

from __future__ import annotations

import json
import statistics
from typing import Optional, Protocol, Sequence

import torch
from tqdm import tqdm

from ..loading import ModelPair, module_digest
from ..metrics import Scorer, ssim, stack_images
from ..strategies import CloudOnly, ECDiff, PlanCounts, Strategy
from .cache import point_key
from .costs import StepCosts, fit_step_costs
from .generate import Generated, generate
from .objective import Measurement
from .params import ECDiffParams
from .prompts import PromptItem

# Changed whenever what a measurement means changes, so older cached measurements are not mixed in.
TIMING_METHOD = "step costs from calibration pictures"


class Evaluator(Protocol):
    def fingerprint(self) -> str:
        """Everything a measurement depends on besides the point (keys the disk cache)."""
        ...

    def calibrate(self, num_steps: int) -> StepCosts:
        """Per-step costs on this machine, measured once per search (they set Efficiency)."""
        ...

    def measure(self, params: ECDiffParams) -> Measurement: ...


def scorer_key(scorer: Scorer) -> str:
    """The scorer's class and, for a trained one (a `network` module), a digest of its weights: a
    retrained scorer starts a fresh cache."""
    network = getattr(scorer, "network", None)
    if not isinstance(network, torch.nn.Module):
        return type(scorer).__name__
    return f"{type(scorer).__name__}#{module_digest(network)[:16]}"


def calibration_strategy(num_steps: int) -> ECDiff:
    """A plan with all three kinds of step in sizeable numbers, for measuring their costs."""
    return ECDiff(pre_steps=max(2, num_steps // 10), k=1, alpha=0.5, switch_step=num_steps // 2)


class PipelineEvaluator:
    """Generates every prompt of the set with a strategy and compares with cloud-only images.

    Calibration: the cloud-only reference pictures and one collaborative picture per prompt
    (`calibration_strategy`) give the step costs (ecdiff.search.costs). Each point's pictures are
    still timed, for the record. With a `scorer` (`ecdiff.metrics.Scorer`), each measurement also
    holds the pictures' mean prompt fidelity."""

    def __init__(self, pair: ModelPair, items: Sequence[PromptItem], num_steps: int, progress: bool = True,
                 scorer: Optional[Scorer] = None) -> None:
        if not items:
            raise ValueError("the search needs at least one prompt")
        self.pair, self.items, self.num_steps, self.progress = pair, list(items), num_steps, progress
        self.scorer = scorer
        self._reference: list[Generated] | None = None

    def fingerprint(self) -> str:
        # Only with a scorer does a measurement hold fidelity: those without keep their cache.
        scored = {} if self.scorer is None else {"fidelity": scorer_key(self.scorer)}
        return json.dumps({
            "pair": self.pair.cache_key,
            "num_steps": self.num_steps,
            "timing": TIMING_METHOD,
            "items": [[item.prompt, item.seed] for item in self.items],
            **scored,
        }, sort_keys=True)

    def reference_fidelity(self) -> Optional[float]:
        """Mean prompt fidelity of the cloud-only pictures (the ceiling of a point's), None without a scorer."""
        return self._fidelity(self._cloud())

    def _fidelity(self, runs: list[Generated]) -> Optional[float]:
        if self.scorer is None:
            return None
        scores = self.scorer.fidelity(stack_images([r.image for r in runs]), [item.prompt for item in self.items])
        return statistics.fmean(scores)

    def _run(self, strategy: Strategy, label: str) -> list[Generated]:
        return [generate(self.pair, strategy, item.prompt, item.seed, self.num_steps)
                for item in tqdm(self.items, desc=label, unit="image", leave=False, disable=not self.progress)]

    def _cloud(self) -> list[Generated]:
        if self._reference is None:
            self._reference = self._run(CloudOnly(), "cloud-only")
        return self._reference

    def calibrate(self, num_steps: int) -> StepCosts:
        if num_steps != self.num_steps:
            raise ValueError(f"evaluator runs {self.num_steps} steps, calibration asks for {num_steps}")
        collaborative = self._run(calibration_strategy(num_steps), "calibrate step costs")
        return fit_step_costs([r.timed() for r in self._cloud()], [r.timed() for r in collaborative])

    def measure(self, params: ECDiffParams) -> Measurement:
        if params.num_steps != self.num_steps:
            raise ValueError(f"evaluator runs {self.num_steps} steps, point asks for {params.num_steps}")
        reference = stack_images([r.image for r in self._cloud()])
        strategy = params.strategy()
        runs = self._run(strategy, point_key(params))
        counts = PlanCounts.of(strategy.plan(self.num_steps))
        return Measurement(float(ssim(stack_images([r.image for r in runs]), reference).mean()),
                           statistics.median(r.latency_s for r in runs), counts.cloud, counts.approx, counts.edge,
                           self.num_steps, self._fidelity(runs))
