"""Default strategy parameters from a config file, and resolving a request's parameters.

The defaults live in `configs/strategy.toml` (overridable with $ECDIFF_STRATEGY_CONFIG or an
explicit path), read and written through one validated dataclass: the services, the CLI, the demo
and the benchmarks read it, and `ecdiff search` writes its result in this format (and, with
`--install`, into configs/strategy.toml). They are given for a reference step
count; for another count the step-indexed parameters scale proportionally (p stays >= 2,
p <= s <= T, n <= T), because "switch at step 37" only means something for T = 50.
Parameters a request sets explicitly are used as given and validated by the strategy itself.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional

from .strategies import Strategy, strategy_from_name

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "configs" / "strategy.toml"
CONFIG_ENV = "ECDIFF_STRATEGY_CONFIG"


@dataclass(frozen=True)
class StrategyParams:
    """Every parameter of every strategy; a strategy ignores the ones it does not use."""

    pre_steps: int
    k: int
    alpha: float
    switch_step: int
    cloud_steps: int
    rule: str  # EC-Diff's extrapolation rule (ecdiff.strategies.RULES)
    beta: float  # its damping, for every rule but "paper" (which smooths with alpha)

    def as_dict(self) -> dict:
        return asdict(self)


PARAM_NAMES = tuple(f.name for f in fields(StrategyParams))


@dataclass(frozen=True)
class StrategyDefaults:
    num_steps: int
    params: StrategyParams

    def __post_init__(self) -> None:
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, int) or self.num_steps < 1:
            raise ValueError(f"strategy config: num_steps must be an integer >= 1, got {self.num_steps!r}")
        p = self.params
        # Validate the reference values with the strategies' own checks.
        strategy_from_name("ecdiff", **p.as_dict()).handoff_step(self.num_steps)
        strategy_from_name("hybrid", **p.as_dict()).handoff_step(self.num_steps)

    @classmethod
    def load(cls, path: Optional[Path | str] = None) -> "StrategyDefaults":
        path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"strategy config {path} not found (set ${CONFIG_ENV} or pass a path)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"strategy config {path}: {exc}") from None
        known = {"num_steps": None, "ecdiff": {"pre_steps", "k", "alpha", "switch_step", "rule", "beta"},
                 "hybrid": {"cloud_steps"}}
        unknown = set(raw) - set(known)
        for section in ("ecdiff", "hybrid"):
            unknown |= {f"{section}.{key}" for key in set(raw.get(section, {})) - known[section]}
        if unknown:
            raise ValueError(f"strategy config {path}: unknown keys {sorted(unknown)}")
        try:
            e, h = raw["ecdiff"], raw["hybrid"]
            params = StrategyParams(e["pre_steps"], e["k"], e["alpha"], e["switch_step"], h["cloud_steps"], e["rule"],
                                    e["beta"])
            return cls(num_steps=raw["num_steps"], params=params)
        except KeyError as exc:
            raise ValueError(f"strategy config {path}: missing key {exc}") from None
        except ValueError as exc:
            raise ValueError(f"strategy config {path}: {exc}") from None

    def to_toml(self, header: str) -> str:
        """This config in the format `load` reads; `header` becomes the leading comment."""
        p = self.params
        lines = [f"# {line}".rstrip() for line in header.splitlines()]
        lines += ["", f"num_steps = {self.num_steps}", "", "[ecdiff]", f"pre_steps = {p.pre_steps}", f"k = {p.k}",
                  f"alpha = {float(p.alpha)!r}", f"switch_step = {p.switch_step}", f'rule = "{p.rule}"',
                  f"beta = {float(p.beta)!r}", "", "[hybrid]",
                  f"cloud_steps = {p.cloud_steps}"]
        return "\n".join(lines) + "\n"

    def write(self, path: Path | str, header: str) -> Path:
        """Write atomically, then read back: a file that would not load is never left in place."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_toml(header))
        if StrategyDefaults.load(tmp) != self:
            raise ValueError(f"strategy config {tmp} does not read back as written")
        os.replace(tmp, path)
        return path

    def scaled(self, num_steps: int) -> StrategyParams:
        """The defaults for `num_steps` steps."""
        if num_steps == self.num_steps:
            return self.params
        ratio = num_steps / self.num_steps
        p = self.params
        pre = max(2, _round(p.pre_steps * ratio))
        return StrategyParams(
            pre_steps=pre,
            k=p.k,
            alpha=p.alpha,
            switch_step=min(num_steps, max(pre, _round(p.switch_step * ratio))),
            cloud_steps=min(num_steps, _round(p.cloud_steps * ratio)),
            rule=p.rule,
            beta=p.beta,
        )

    def resolve(self, name: str, num_steps: int, overrides: dict) -> tuple[Strategy, StrategyParams]:
        """The strategy for a request and its full parameters; raises ValueError on bad input."""
        unknown = set(overrides) - set(PARAM_NAMES)
        if unknown:
            raise ValueError(f"unknown strategy parameters {sorted(unknown)}")
        params = StrategyParams(**{**self.scaled(num_steps).as_dict(), **overrides})
        strategy = strategy_from_name(name, **params.as_dict())
        strategy.handoff_step(num_steps)  # validates the step-indexed parameters against num_steps
        return strategy, params


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))
