"""The two-stage greedy search (EC-Diff Algorithms 2 and 3), independent of how points are scored.

Stage 1 (Algorithm 2), switch fixed at s' (`stage1_switch`), once per extrapolation rule of
`rules` (the paper's rule is damped by alpha, the others by beta):
  k:       k_grid in order with the damping at its start (alpha_start / beta_start); the best k so
           far is kept; the scan stops after `k_patience` consecutive k that do not beat it (or at
           the grid's end).
  damping: with that k, a directional walk on alpha_grid / beta_grid from its start (see `walk`).
  again:   beyond the paper, the k scan is repeated at the damping found, and when it moves k the
           damping walk is repeated from there, up to `stage1_rounds` rounds in all (1 = the
           paper's Algorithm 2): a damping that suits long runs (beta or alpha near 0) is only
           found after the first scan, which judged every k at the start damping.
  rule:    the rule whose (k, damping) scores best (earlier rules win ties).
Stage 2 (Algorithm 3): with (rule, k, damping) fixed, the same walk on s_grid from s_start.

`walk`: step to the next grid value in the current direction (upwards first). A value better than
the best (by more than `min_improvement`) becomes the best and the walk goes on. A value that is not
better counts as worse; if it is the first move away from the start, the walk reverses once and
goes the other way from the start (the improving direction is the other one); otherwise it goes on
in the same direction. The walk stops after `patience` consecutive worse values, or at the end of
the grid (where a walk that has not reversed yet and has not improved reverses instead).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from .config import SearchConfig
from .params import ECDiffParams

Score = Callable[[ECDiffParams], float]
"""The objective of one parameter point (higher is better)."""


@dataclass(frozen=True)
class PathStep:
    stage: str  # "k", "alpha", "beta", "rule" or "s"
    params: dict
    objective: float | None
    decision: str  # start, better, worse, reverse, stop: <why>

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchOutcome:
    best: ECDiffParams
    objective: float
    path: list[PathStep]


def _improves(value: float, best: float, tol: float) -> bool:
    return value > best + tol


def search_k(config: SearchConfig, score: Score, path: list[PathStep], rule: str = "paper",
             damping: float | None = None) -> tuple[int, float]:
    """The k scan at `damping` (default: the rule's start damping)."""
    damping = _damping(config, rule)[1] if damping is None else damping
    best_k, best_j, misses = None, float("-inf"), 0
    for k in config.k_grid:
        point = _point(config, k=k, rule=rule, damping=damping, switch_step=config.stage1_switch)
        j = score(point)
        if best_k is None or _improves(j, best_j, config.min_improvement):
            decision = "start" if best_k is None else "better"
            best_k, best_j, misses = k, j, 0
        else:
            misses += 1
            decision = "worse"
        path.append(PathStep("k", point.as_dict(), j, decision))
        if misses >= config.k_patience:
            path.append(PathStep("k", point.as_dict(), None, f"stop: {misses} non-improving k"))
            break
    return best_k, best_j


def walk(stage: str, grid: Sequence, start, patience: int, tol: float,
         score: Callable[[object], tuple[ECDiffParams, float]], path: list[PathStep]):
    """Directional greedy walk on `grid` from `start`; returns (best value, its objective)."""
    i_start = i_best = list(grid).index(start)
    point, j_best = score(grid[i_best])
    path.append(PathStep(stage, point.as_dict(), j_best, "start"))
    position, direction, reversed_, misses = i_best, +1, False, 0
    while True:
        nxt = position + direction
        if not 0 <= nxt < len(grid):
            if reversed_ or i_best != i_start:
                path.append(PathStep(stage, point.as_dict(), None, "stop: end of grid"))
                break
            reversed_, direction, position = True, -direction, i_best
            path.append(PathStep(stage, point.as_dict(), None, "reverse: end of grid"))
            continue
        point, j = score(grid[nxt])
        if _improves(j, j_best, tol):
            i_best, j_best, position, misses = nxt, j, nxt, 0
            path.append(PathStep(stage, point.as_dict(), j, "better"))
            continue
        misses += 1
        path.append(PathStep(stage, point.as_dict(), j, "worse"))
        if misses >= patience:
            path.append(PathStep(stage, point.as_dict(), None, f"stop: {misses} worse values"))
            break
        if not reversed_ and i_best == i_start:
            reversed_, direction, position = True, -direction, i_best
            path.append(PathStep(stage, point.as_dict(), None, "reverse"))
        else:
            position = nxt
    return grid[i_best], j_best


def search_rule(config: SearchConfig, rule: str, score: Score, path: list[PathStep]) -> tuple[int, float, float]:
    """Stage 1 for one rule: (k, damping, objective)."""
    stage, damping, grid, patience = _damping(config, rule)
    k, _ = search_k(config, score, path, rule, damping)
    for round_ in range(config.stage1_rounds):
        if round_ > 0:
            k_again, _ = search_k(config, score, path, rule, damping)
            if k_again == k:
                break
            k = k_again

        def damping_point(value):
            p = _point(config, k=k, rule=rule, damping=value, switch_step=config.stage1_switch)
            return p, score(p)

        damping, j = walk(stage, grid, damping, patience, config.min_improvement, damping_point, path)
    return k, damping, j


def two_stage_search(config: SearchConfig, score: Score) -> SearchOutcome:
    path: list[PathStep] = []
    best, best_j = None, float("-inf")
    for rule in config.rules:
        k, damping, j = search_rule(config, rule, score, path)
        point = _point(config, k=k, rule=rule, damping=damping, switch_step=config.stage1_switch)
        if best is None or _improves(j, best_j, config.min_improvement):
            path.append(PathStep("rule", point.as_dict(), j, "start" if best is None else "better"))
            best, best_j = (rule, k, damping), j
        else:
            path.append(PathStep("rule", point.as_dict(), j, "worse"))
    rule, k, damping = best

    def s_point(s):
        p = _point(config, k=k, rule=rule, damping=damping, switch_step=s)
        return p, score(p)

    s, j = walk("s", config.s_grid, config.s_start, config.s_patience, config.min_improvement, s_point, path)
    return SearchOutcome(_point(config, k=k, rule=rule, damping=damping, switch_step=s), j, path)


def _damping(config: SearchConfig, rule: str) -> tuple[str, float, tuple[float, ...], int]:
    """(stage name, start, grid, patience) of the rule's damping: alpha for the paper's rule, else beta."""
    if rule == "paper":
        return "alpha", config.alpha_start, config.alpha_grid, config.alpha_patience
    return "beta", config.beta_start, config.beta_grid, config.beta_patience


def _point(config: SearchConfig, *, k: int, rule: str, damping: float, switch_step: int) -> ECDiffParams:
    """The paper's rule has no beta; the others leave alpha, which they ignore, at alpha_start."""
    alpha, beta = (damping, None) if rule == "paper" else (config.alpha_start, damping)
    return ECDiffParams(num_steps=config.num_steps, pre_steps=config.pre_steps, k=k, alpha=alpha,
                        switch_step=switch_step, rule=rule, beta=beta)
