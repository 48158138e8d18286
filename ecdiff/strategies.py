"""Strategies: which model serves each denoising step.

A strategy's `plan(num_steps)` is known before anything runs, so the search, the services and
the benchmarks can predict cost (`PlanCounts`) without calling a model.

EC-Diff (Algorithm 1, as the authors' released code runs it), with T steps i = 0..T-1 in
denoising order, p = pre_steps, k, s = switch_step:
    i <  s : cloud phase. The cloud model is called when i < p or (i - p) mod (k + 1) == k;
             every other cloud-phase step is approximated from the noise gradient.
    i >= s : edge phase; the edge model is called at every step.
k = 0 means no approximation (every cloud-phase step is a real call).

`step_rules(num_steps)` adds to each step of the plan the rule for the noise gradient that the
approximated steps extrapolate with, so the sampling loop runs any strategy without knowing it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence


class StepKind(str, enum.Enum):
    CLOUD = "cloud"
    APPROX = "approx"
    EDGE = "edge"

    def __str__(self) -> str:
        return self.value


Plan = tuple[StepKind, ...]


@dataclass(frozen=True)
class StepRule:
    """One step of a plan and what its real model call does to the noise gradient.

    gradient: None keeps the current gradient; a number a sets delta = a * (eps_i - eps_(i-1)),
    eps_(i-1) being the noise used at the previous step (real or approximated).
    """

    kind: StepKind
    gradient: Optional[float] = None


StepRules = tuple[StepRule, ...]


class _NeverApproximates:
    """Step rules of a strategy whose plan has no approximated step: no gradient is ever formed."""

    def step_rules(self, num_steps: int) -> StepRules:
        return tuple(StepRule(kind) for kind in self.plan(num_steps))


@dataclass(frozen=True)
class PlanCounts:
    cloud: int
    approx: int
    edge: int

    @classmethod
    def of(cls, plan: Sequence[StepKind]) -> "PlanCounts":
        return cls(
            cloud=sum(kind == StepKind.CLOUD for kind in plan),
            approx=sum(kind == StepKind.APPROX for kind in plan),
            edge=sum(kind == StepKind.EDGE for kind in plan),
        )


class Strategy(Protocol):
    def plan(self, num_steps: int) -> Plan: ...

    def handoff_step(self, num_steps: int) -> int:
        """First step that runs on the edge (num_steps when the edge never runs)."""
        ...

    def step_rules(self, num_steps: int) -> StepRules: ...


def _check_num_steps(num_steps: int) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _always_cloud(i: int) -> StepKind:
    return StepKind.CLOUD


def _split_plan(num_steps: int, switch: int, cloud_kind: Callable[[int], StepKind]) -> Plan:
    return tuple(cloud_kind(i) if i < switch else StepKind.EDGE for i in range(num_steps))


@dataclass(frozen=True)
class CloudOnly(_NeverApproximates):
    """Every step on the cloud model (the quality reference)."""

    name = "cloud"

    def handoff_step(self, num_steps: int) -> int:
        _check_num_steps(num_steps)
        return num_steps

    def plan(self, num_steps: int) -> Plan:
        return _split_plan(num_steps, self.handoff_step(num_steps), _always_cloud)


@dataclass(frozen=True)
class EdgeOnly(_NeverApproximates):
    """Every step on the edge model (the latency floor)."""

    name = "edge"

    def handoff_step(self, num_steps: int) -> int:
        _check_num_steps(num_steps)
        return 0

    def plan(self, num_steps: int) -> Plan:
        return _split_plan(num_steps, self.handoff_step(num_steps), _always_cloud)


@dataclass(frozen=True)
class HybridSD(_NeverApproximates):
    """HybridSD: the first `cloud_steps` steps on the cloud, the rest on the edge."""

    cloud_steps: int
    name = "hybrid"

    def __post_init__(self) -> None:
        _check_int("cloud_steps", self.cloud_steps, 0)

    def handoff_step(self, num_steps: int) -> int:
        _check_num_steps(num_steps)
        if self.cloud_steps > num_steps:
            raise ValueError(f"cloud_steps ({self.cloud_steps}) must be <= num_steps ({num_steps})")
        return self.cloud_steps

    def plan(self, num_steps: int) -> Plan:
        return _split_plan(num_steps, self.handoff_step(num_steps), _always_cloud)


@dataclass(frozen=True)
class ECDiff:
    """EC-Diff: k-step noise approximation in the cloud phase, edge from `switch_step` on.

    pre_steps (p): real cloud calls before approximation starts (p >= 2: the first gradient
    is eps_{p-1} - eps_{p-2}). k: approximated steps per real correction (0 = none).
    alpha: smoothing of the gradient after each correction, 0 < alpha <= 1.
    switch_step (s): first edge step, p <= s <= num_steps.
    corrections: real calls after each run of k approximated steps; 1 is the paper's method,
    2 is its "correcting twice" ablation.
    """

    pre_steps: int
    k: int
    alpha: float
    switch_step: int
    corrections: int = 1
    name = "ecdiff"

    def __post_init__(self) -> None:
        _check_int("pre_steps (p)", self.pre_steps, 2)
        _check_int("k", self.k, 0)
        _check_int("switch_step (s)", self.switch_step, 0)
        _check_int("corrections", self.corrections, 1)
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
            raise ValueError(f"alpha must be a finite number in (0, 1], got {alpha!r}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        if self.switch_step < self.pre_steps:
            raise ValueError(f"switch_step (s={self.switch_step}) must be >= pre_steps (p={self.pre_steps})")
        object.__setattr__(self, "alpha", float(alpha))

    def handoff_step(self, num_steps: int) -> int:
        _check_num_steps(num_steps)
        if self.switch_step > num_steps:
            raise ValueError(f"switch_step (s={self.switch_step}) must be <= num_steps ({num_steps})")
        return self.switch_step

    def is_real_call(self, i: int) -> bool:
        p, k = self.pre_steps, self.k
        return i < p or (i - p) % (k + self.corrections) >= k

    def plan(self, num_steps: int) -> Plan:
        return _split_plan(
            num_steps,
            self.handoff_step(num_steps),
            lambda i: StepKind.CLOUD if self.is_real_call(i) else StepKind.APPROX,
        )

    def step_rules(self, num_steps: int) -> StepRules:
        """The gradient starts at the real call p - 1 (eps_(p-1) - eps_(p-2)) and is smoothed with
        alpha after every later real call; it is not formed once no approximated step is ahead."""
        plan = self.plan(num_steps)
        last_approx = max((i for i, kind in enumerate(plan) if kind == StepKind.APPROX), default=-1)
        start = self.pre_steps - 1

        def gradient(i: int, kind: StepKind) -> Optional[float]:
            if kind != StepKind.CLOUD or i >= last_approx or i < start:
                return None
            return 1.0 if i == start else self.alpha

        return tuple(StepRule(kind, gradient(i, kind)) for i, kind in enumerate(plan))


STRATEGY_NAMES = ("cloud", "edge", "hybrid", "ecdiff")


def strategy_from_name(name: str, *, pre_steps: int, k: int, alpha: float, switch_step: int,
                       cloud_steps: int) -> Strategy:
    """Build a strategy from its wire/CLI name and every parameter (the defaults live in one place,
    `configs/strategy.toml`, read by `ecdiff.strategy_config`); parameters that the strategy does not
    use are ignored."""
    if name == "cloud":
        return CloudOnly()
    if name == "edge":
        return EdgeOnly()
    if name == "hybrid":
        return HybridSD(cloud_steps)
    if name == "ecdiff":
        return ECDiff(pre_steps, k, alpha, switch_step)
    raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGY_NAMES)}")
