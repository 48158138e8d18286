"""Strategies: which model serves each denoising step.

A strategy's `plan(num_steps)` is known before anything runs, so the search, the services and
the benchmarks can predict cost (`PlanCounts`) without calling a model.

EC-Diff (Algorithm 1, as the authors' released code runs it), with T steps i = 0..T-1 in
denoising order, p = pre_steps, k, s = switch_step:
    i <  s : cloud phase. The cloud model is called when i < p or (i - p) mod (k + 1) == k;
             every other cloud-phase step is approximated from the noise gradient.
    i >= s : edge phase; the edge model is called at every step.
k = 0 means no approximation (every cloud-phase step is a real call).

`step_rules(num_steps)` adds to each step of the plan what its real call does to the
extrapolation that the approximated steps use (EC-Diff's `rule`: the paper's smoothed gradient or
an extrapolation from the last real noises, see `extrapolation_fit`), so the sampling loop runs any
strategy without knowing it.
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
class Fit:
    """An extrapolation from the last real noises eps_(r_0), eps_(r_1), ... (r_0 = i, the real call
    that forms it, then the earlier real calls, most recent first):

        delta = sum_m slope[m] * eps_(r_m),   curvature = sum_m curvature[m] * eps_(r_m)

    and every approximated step after it does delta += curvature (when there is one), then
    eps = eps + delta. Without curvature the increment is constant, like the paper's rule."""

    slope: tuple[float, ...]
    curvature: Optional[tuple[float, ...]] = None

    def __post_init__(self) -> None:
        if self.curvature is not None and len(self.curvature) != len(self.slope):
            raise ValueError(f"curvature has {len(self.curvature)} weights but slope has {len(self.slope)}")

    @property
    def depth(self) -> int:
        """How many real noises (the current one included) the fit reads."""
        return len(self.slope)


@dataclass(frozen=True)
class StepRule:
    """One step of a plan and what its real model call does to the extrapolation.

    gradient: None keeps the current one; a number a is the paper's rule, delta = a * (eps_i -
    eps_(i-1)), eps_(i-1) being the noise used at the previous step (real or approximated); a `Fit`
    forms delta (and a curvature) from the last real noises only.
    """

    kind: StepKind
    gradient: Optional[float | Fit] = None


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


RULES = ("paper", "slope", "lsq", "quadratic")
"""EC-Diff's extrapolation rules (`ECDiff.rule`); docs/search.md compares them."""


def extrapolation_fit(rule: str, steps: Sequence[int], beta: float) -> Fit:
    """The `Fit` of `rule` at the real call steps[0], from the real calls `steps` (most recent first,
    at least two; the rules read two or three). beta in [0, 1] damps the whole extrapolated
    increment (beta = 0: the last real noise is reused). With t_m = steps[m], e_m = eps_(t_m):

    slope:     delta = beta * (e_0 - e_1) / (t_0 - t_1), the per-step slope of the last two real calls.
    lsq:       delta = beta * b, b the slope of the least-squares line through the last three
               (t_m, e_m): b = sum_m (t_m - t_bar) e_m / sum_m (t_m - t_bar)^2, anchored at e_0.
               (For equally spaced t_m this is (e_0 - e_2) / (t_0 - t_2): a slope over a longer base.)
    quadratic: the parabola P through the last three (t_m, e_m), in Newton form with the divided
               differences D_1 = (e_0 - e_1) / (t_0 - t_1), D_12 = (e_1 - e_2) / (t_1 - t_2),
               D_2 = (D_1 - D_12) / (t_0 - t_2):
                   P(t_0 + j) = e_0 + j * d_1 + j^2 * d_2,  d_1 = D_1 + (t_0 - t_1) D_2,  d_2 = D_2,
               damped: the j-th approximated step uses e_0 + beta * (j d_1 + j^2 d_2). As increments:
               delta = beta * (d_1 - d_2) and curvature = 2 beta d_2, then delta += curvature and
               eps += delta per step. With only two real calls it is the slope rule.
    """
    if rule not in RULES[1:]:
        raise ValueError(f"no fit for rule {rule!r}; expected one of {', '.join(RULES[1:])}")
    if len(steps) < 2:
        raise ValueError(f"rule {rule!r} needs at least two real calls, got steps {list(steps)}")
    t = [float(step) for step in steps[:2 if rule == "slope" else 3]]
    if rule == "slope" or len(t) == 2:
        w = beta / (t[0] - t[1])
        return Fit(slope=(w, -w))
    if rule == "lsq":
        t_bar = sum(t) / len(t)
        spread = sum((t_m - t_bar) ** 2 for t_m in t)
        return Fit(slope=tuple(beta * (t_m - t_bar) / spread for t_m in t))
    # Weights over (e_0, e_1, e_2) of each divided difference.
    d_01 = (1.0 / (t[0] - t[1]), -1.0 / (t[0] - t[1]), 0.0)
    d_12 = (0.0, 1.0 / (t[1] - t[2]), -1.0 / (t[1] - t[2]))
    d_2 = tuple((a - b) / (t[0] - t[2]) for a, b in zip(d_01, d_12))
    d_1 = tuple(a + (t[0] - t[1]) * b for a, b in zip(d_01, d_2))
    return Fit(slope=tuple(beta * (a - b) for a, b in zip(d_1, d_2)), curvature=tuple(2.0 * beta * b for b in d_2))


def _check_unit_interval(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


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
    alpha: the paper's smoothing of the gradient after each correction, 0 <= alpha <= 1
    (0: after the first correction the last real noise is reused).
    switch_step (s): first edge step, p <= s <= num_steps.
    corrections: real calls after each run of k approximated steps; 1 is the paper's method,
    2 is its "correcting twice" ablation.
    rule: how the approximated steps extrapolate, one of RULES: "paper" (the paper's smoothed
    gradient, with alpha; this class's default because it is the paper's algorithm) or an
    extrapolation from the last real noises only (`extrapolation_fit`), damped by beta in [0, 1].
    """

    pre_steps: int
    k: int
    alpha: float
    switch_step: int
    corrections: int = 1
    rule: str = "paper"
    beta: Optional[float] = None  # required by every rule but "paper", which ignores it
    name = "ecdiff"

    def __post_init__(self) -> None:
        _check_int("pre_steps (p)", self.pre_steps, 2)
        _check_int("k", self.k, 0)
        _check_int("switch_step (s)", self.switch_step, 0)
        _check_int("corrections", self.corrections, 1)
        object.__setattr__(self, "alpha", _check_unit_interval("alpha", self.alpha))
        if self.rule not in RULES:
            raise ValueError(f"unknown extrapolation rule {self.rule!r}; expected one of {', '.join(RULES)}")
        if self.beta is not None:
            object.__setattr__(self, "beta", _check_unit_interval("beta", self.beta))
        elif self.rule != "paper":
            raise ValueError(f"rule {self.rule!r} needs beta (its damping, in [0, 1])")
        if self.switch_step < self.pre_steps:
            raise ValueError(f"switch_step (s={self.switch_step}) must be >= pre_steps (p={self.pre_steps})")

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
        """The extrapolation is formed at the real call p - 1 and at every later real call while an
        approximated step is ahead. Paper's rule: delta = eps_(p-1) - eps_(p-2) at p - 1, smoothed
        with alpha after every later real call. Other rules: the rule's `extrapolation_fit` over the
        real calls up to that one."""
        plan = self.plan(num_steps)
        last_approx = max((i for i, kind in enumerate(plan) if kind == StepKind.APPROX), default=-1)
        start = self.pre_steps - 1
        real_calls = [i for i, kind in enumerate(plan) if kind == StepKind.CLOUD]

        def gradient(i: int, kind: StepKind) -> Optional[float | Fit]:
            if kind != StepKind.CLOUD or i >= last_approx or i < start:
                return None
            if self.rule == "paper":
                return 1.0 if i == start else self.alpha
            n = real_calls.index(i)
            return extrapolation_fit(self.rule, real_calls[n::-1], self.beta)

        return tuple(StepRule(kind, gradient(i, kind)) for i, kind in enumerate(plan))


STRATEGY_NAMES = ("cloud", "edge", "hybrid", "ecdiff")


def strategy_from_name(name: str, *, pre_steps: int, k: int, alpha: float, switch_step: int,
                       cloud_steps: int, rule: str, beta: float) -> Strategy:
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
        return ECDiff(pre_steps, k, alpha, switch_step, rule=rule, beta=beta)
    raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGY_NAMES)}")
