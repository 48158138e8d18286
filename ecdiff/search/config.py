"""The search's one validated configuration: grids, start points, patience, weights.

Defaults are the paper's: k in 1..5 (stop after 3 non-improving k), s on 30..40 of 50 from 35,
stage-1 switch s' = 30, weights (SSIM, Efficiency, Burden) = (0.3, 0.3, 0.4); beyond the paper,
every extrapolation rule is searched, alpha on 0..1 (the paper's 0.1..0.9 plus both ends) and
beta on 0..1, both from 0.5, and each rule's k scan is repeated at the damping found (up to 3 rounds). `SearchConfig.from_toml` reads the same fields from a [search] table.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from ..strategies import RULES


def _grid(name: str, values, kind: type) -> tuple:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else int):
            raise ValueError(f"{name} must hold {kind.__name__}s, got {v!r}")
        if kind is float and not math.isfinite(v):
            raise ValueError(f"{name} must hold finite numbers, got {v!r}")
    if list(values) != sorted(set(values)):
        raise ValueError(f"{name} must be strictly increasing, got {list(values)}")
    return tuple(kind(v) for v in values)


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class SearchConfig:
    num_steps: int = 50
    pre_steps: int = 7  # p, fixed before the search: the paper's 7 (`ecdiff noise-curve` proposes one; docs/search.md)
    k_grid: tuple[int, ...] = (1, 2, 3, 4, 5)
    k_patience: int = 3  # stop after this many consecutive non-improving k
    rules: tuple[str, ...] = RULES  # the extrapolation rules stage 1 compares
    alpha_grid: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    alpha_start: float = 0.5
    alpha_patience: int = 3  # stop after this many consecutive non-improving alpha values
    beta_grid: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    beta_start: float = 0.5
    beta_patience: int = 3
    stage1_switch: int = 30  # s': the switch step stage 1 measures with (docs/search.md)
    stage1_rounds: int = 3  # k scan + damping walk rounds per rule (1: the paper's Algorithm 2)
    s_grid: tuple[int, ...] = tuple(range(30, 41))
    s_start: int = 35
    s_patience: int = 3
    weights: tuple[float, float, float] = (0.3, 0.3, 0.4)  # (SSIM, Efficiency, Burden)
    min_improvement: float = 0.0  # a value must beat the best by more than this to count as better

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        for name in ("num_steps", "pre_steps", "k_patience", "alpha_patience", "beta_patience", "s_patience",
                     "stage1_rounds"):
            _positive_int(name, getattr(self, name))
        if self.pre_steps < 2:
            raise ValueError(f"pre_steps must be >= 2 (the first gradient is eps_(p-1) - eps_(p-2)), got {self.pre_steps}")
        set_("k_grid", _grid("k_grid", self.k_grid, int))
        if self.k_grid[0] < 1:
            raise ValueError(f"k_grid values must be >= 1, got {list(self.k_grid)}")
        rules = tuple(self.rules) if isinstance(self.rules, (list, tuple)) else ()
        if not rules or len(set(rules)) != len(rules) or not set(rules) <= set(RULES):
            raise ValueError(f"rules must be distinct names from {list(RULES)}, got {self.rules!r}")
        set_("rules", rules)
        for name in ("alpha", "beta"):
            grid = _grid(f"{name}_grid", getattr(self, f"{name}_grid"), float)
            if not (0.0 <= grid[0] and grid[-1] <= 1.0):
                raise ValueError(f"{name}_grid values must lie in [0, 1], got {list(grid)}")
            set_(f"{name}_grid", grid)
            start = getattr(self, f"{name}_start")
            if start not in grid:
                raise ValueError(f"{name}_start {start!r} is not on {name}_grid {list(grid)}")
            set_(f"{name}_start", float(start))
        set_("s_grid", _grid("s_grid", self.s_grid, int))
        for name, s in [("stage1_switch", self.stage1_switch)] + [("s_grid value", s) for s in self.s_grid]:
            if isinstance(s, bool) or not isinstance(s, int) or not self.pre_steps <= s <= self.num_steps:
                raise ValueError(f"{name} {s!r} must be an integer in [pre_steps={self.pre_steps}, num_steps={self.num_steps}]")
        if self.s_start not in self.s_grid:
            raise ValueError(f"s_start {self.s_start!r} is not on s_grid {list(self.s_grid)}")
        weights = tuple(self.weights)
        if len(weights) != 3 or any(isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0 for w in weights):
            raise ValueError(f"weights must be three finite numbers >= 0 (SSIM, Efficiency, Burden), got {self.weights!r}")
        if sum(weights) == 0:
            raise ValueError("weights must not all be zero")
        set_("weights", tuple(float(w) for w in weights))
        if not (isinstance(self.min_improvement, (int, float)) and math.isfinite(self.min_improvement) and self.min_improvement >= 0):
            raise ValueError(f"min_improvement must be a finite number >= 0, got {self.min_improvement!r}")

    @classmethod
    def from_toml(cls, path: str | Path, **overrides) -> "SearchConfig":
        """Fields from the file's [search] table (unknown keys are an error), then `overrides`."""
        try:
            table = tomllib.loads(Path(path).read_text()).get("search", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read search config {path}: {exc}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"{path} [search]: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**{**table, **overrides})

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}
