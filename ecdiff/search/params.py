"""A point of the search: EC-Diff's parameters at one step count, validated by `ECDiff` itself.

Points are read from and written to the one strategy-parameter file format,
`ecdiff.strategy_config` (configs/strategy.toml): `from_defaults` takes EC-Diff's values from a
config (scaled to a step count, as the services do), `to_defaults` turns a search result back
into a config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from ..strategies import ECDiff
from ..strategy_config import StrategyDefaults, StrategyParams


@dataclass(frozen=True)
class ECDiffParams:
    num_steps: int
    pre_steps: int
    k: int
    alpha: float
    switch_step: int
    rule: str = "paper"  # the paper's algorithm unless a point says otherwise
    beta: Optional[float] = None  # the damping of every rule but "paper" (None under "paper")

    def __post_init__(self) -> None:
        self.strategy().handoff_step(self.num_steps)  # ECDiff validates p, k, alpha, s, T, the rule and beta
        object.__setattr__(self, "alpha", float(self.alpha))
        # the paper's rule reads no beta: points that differ only there are one point
        object.__setattr__(self, "beta", None if self.rule == "paper" or self.beta is None else float(self.beta))

    @classmethod
    def from_defaults(cls, defaults: StrategyDefaults, num_steps: Optional[int] = None, **overrides) -> "ECDiffParams":
        """EC-Diff's values of `defaults` scaled to `num_steps`, with `overrides` applied before validation."""
        num_steps = num_steps or defaults.num_steps
        p = defaults.scaled(num_steps)
        values = {"pre_steps": p.pre_steps, "k": p.k, "alpha": p.alpha, "switch_step": p.switch_step,
                  "rule": p.rule, "beta": p.beta}
        return cls(num_steps=num_steps, **{**values, **overrides})

    def to_defaults(self, base: StrategyDefaults) -> StrategyDefaults:
        """A config with these EC-Diff values; the other strategies' values (and beta, when this point
        does not set it) come from `base`."""
        scaled = base.scaled(self.num_steps)
        beta = scaled.beta if self.beta is None else self.beta
        return StrategyDefaults(self.num_steps, StrategyParams(self.pre_steps, self.k, self.alpha, self.switch_step,
                                                               scaled.cloud_steps, self.rule, beta))

    def strategy(self, corrections: int = 1) -> ECDiff:
        return ECDiff(self.pre_steps, self.k, self.alpha, self.switch_step, corrections=corrections, rule=self.rule,
                      beta=self.beta)

    def replace(self, **changes) -> "ECDiffParams":
        return ECDiffParams(**{**asdict(self), **changes})

    def as_dict(self) -> dict:
        return asdict(self)
