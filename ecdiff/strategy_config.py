"""Default strategy parameters from a config file, and resolving a request's parameters.

The defaults live in `configs/strategy.toml` (overridable with $ECDIFF_STRATEGY_CONFIG or an
explicit path), read and written through one validated dataclass: the services, the CLI, the demo
and the benchmarks read it, and `ecdiff search` writes its result in this format (and, with
`--install`, into configs/strategy.toml). They are given for a reference step
count; for another count the step-indexed parameters scale proportionally (p stays >= 2,
p <= s <= T, n <= T), because "switch at step 37" only means something for T = 50.
Parameters a request sets explicitly are used as given and validated by the strategy itself.

The ladder of cheaper EC-Diff points that the cloud may serve under load (load-adaptive quality,
docs/services.md) lives in `configs/frontier.toml`, read and written through `Frontier`: `ecdiff
ladder` measures it and writes it in this format (with `--install`, into configs/frontier.toml).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Optional

from .strategies import PlanCounts, Strategy, strategy_from_name

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "configs" / "strategy.toml"
DEFAULT_FRONTIER_PATH = DEFAULT_CONFIG_PATH.with_name("frontier.toml")
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
        raw = _read_toml(path, "strategy config", f"set ${CONFIG_ENV} or pass a path")
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
        return _write_read_back(self, path, header, "strategy config")

    def scaled(self, num_steps: int) -> StrategyParams:
        """The defaults for `num_steps` steps."""
        return scale_params(self.params, self.num_steps, num_steps)

    def resolve(self, name: str, num_steps: int, overrides: dict) -> tuple[Strategy, StrategyParams]:
        """The strategy for a request and its full parameters; raises ValueError on bad input."""
        unknown = set(overrides) - set(PARAM_NAMES)
        if unknown:
            raise ValueError(f"unknown strategy parameters {sorted(unknown)}")
        params = StrategyParams(**{**self.scaled(num_steps).as_dict(), **overrides})
        strategy = strategy_from_name(name, **params.as_dict())
        strategy.handoff_step(num_steps)  # validates the step-indexed parameters against num_steps
        return strategy, params


@dataclass(frozen=True)
class FrontierPoint:
    """One measured EC-Diff point of the ladder, at the frontier's reference step count."""

    pre_steps: int
    k: int
    alpha: float
    switch_step: int
    rule: str
    beta: float
    cloud_calls: int  # real cloud UNet calls per image (the plan's count; checked against it)
    ssim: float  # mean SSIM against cloud-only pictures of the same prompts and seeds
    fidelity: Optional[float] = None  # mean scorer prompt fidelity, points 0..100; None: no scorer was installed

    def params(self, cloud_steps: int) -> StrategyParams:
        """As strategy parameters (`cloud_steps`, HybridSD's, is not EC-Diff's and comes from elsewhere)."""
        return StrategyParams(self.pre_steps, self.k, self.alpha, self.switch_step, cloud_steps, self.rule, self.beta)

    def dominates(self, other: "FrontierPoint") -> bool:
        """No more cloud calls and at least as good on every measured figure, better on one."""
        pairs = [(self.ssim, other.ssim)]
        if self.fidelity is not None and other.fidelity is not None:
            pairs.append((self.fidelity, other.fidelity))
        at_least = self.cloud_calls <= other.cloud_calls and all(a >= b for a, b in pairs)
        return at_least and (self.cloud_calls < other.cloud_calls or any(a > b for a, b in pairs))


FRONTIER_KEYS = {f.name for f in fields(FrontierPoint)}


@dataclass(frozen=True)
class Frontier:
    """The ladder of cheaper EC-Diff points the cloud may serve under load (load-adaptive quality),
    measured by `ecdiff ladder` on a model pair: most accurate (and most expensive) first, each with
    strictly fewer cloud calls than the one before, none dominated by another."""

    num_steps: int
    cloud_model: str  # the pair it was measured on: its figures hold for that pair only
    edge_model: str
    points: tuple[FrontierPoint, ...]

    def __post_init__(self) -> None:
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, int) or self.num_steps < 1:
            raise ValueError(f"frontier: num_steps must be an integer >= 1, got {self.num_steps!r}")
        if not self.points:
            raise ValueError("frontier: no points (a ladder serves nothing cheaper without one)")
        for n, point in enumerate(self.points, start=1):
            where = f"frontier point {n}"
            strategy = strategy_from_name("ecdiff", **point.params(0).as_dict())
            try:
                calls = PlanCounts.of(strategy.plan(self.num_steps)).cloud
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if calls != point.cloud_calls:
                raise ValueError(f"{where}: cloud_calls {point.cloud_calls} but its plan makes {calls} at "
                                 f"{self.num_steps} steps")
            if isinstance(point.cloud_calls, bool) or not isinstance(point.cloud_calls, int):
                raise ValueError(f"{where}: cloud_calls must be an integer, got {point.cloud_calls!r}")
            if not (_is_number(point.ssim) and math.isfinite(point.ssim) and point.ssim <= 1):
                raise ValueError(f"{where}: ssim must be a finite number <= 1, got {point.ssim!r}")
            if point.fidelity is not None and not (_is_number(point.fidelity) and 0 <= point.fidelity <= 100):
                raise ValueError(f"{where}: fidelity must be in [0, 100] points, got {point.fidelity!r}")
        calls = [point.cloud_calls for point in self.points]
        if any(a <= b for a, b in zip(calls, calls[1:])):
            raise ValueError(f"frontier: cloud_calls must fall strictly from one point to the next, got {calls}")
        for point in self.points:
            better = next((other for other in self.points if other.dominates(point)), None)
            if better is not None:
                raise ValueError(f"frontier: the point with {point.cloud_calls} cloud calls is dominated by the one "
                                 f"with {better.cloud_calls} (no costlier, at least as good): drop it")

    @classmethod
    def load(cls, path: Optional[Path | str] = None) -> "Frontier":
        path = Path(path or DEFAULT_FRONTIER_PATH)
        raw = _read_toml(path, "frontier", "write one with `ecdiff ladder --install`")
        unknown = set(raw) - {"num_steps", "cloud_model", "edge_model", "point"}
        for n, point in enumerate(raw.get("point", []), start=1):
            unknown |= {f"point {n}: {key}" for key in set(point) - FRONTIER_KEYS}
        if unknown:
            raise ValueError(f"frontier {path}: unknown keys {sorted(unknown)}")
        try:
            return cls(raw["num_steps"], raw["cloud_model"], raw["edge_model"],
                       tuple(FrontierPoint(**point) for point in raw.get("point", [])))
        except KeyError as exc:
            raise ValueError(f"frontier {path}: missing key {exc}") from None
        except TypeError as exc:  # a point without one of its keys
            raise ValueError(f"frontier {path}: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"frontier {path}: {exc}") from None

    def to_toml(self, header: str) -> str:
        lines = [f"# {line}".rstrip() for line in header.splitlines()]
        lines += ["", f"num_steps = {self.num_steps}", f'cloud_model = "{self.cloud_model}"',
                  f'edge_model = "{self.edge_model}"']
        for p in self.points:
            lines += ["", "[[point]]", f"pre_steps = {p.pre_steps}", f"k = {p.k}", f"alpha = {float(p.alpha)!r}",
                      f"switch_step = {p.switch_step}", f'rule = "{p.rule}"', f"beta = {float(p.beta)!r}",
                      f"cloud_calls = {p.cloud_calls}", f"ssim = {p.ssim!r}"]
            if p.fidelity is not None:
                lines.append(f"fidelity = {p.fidelity!r}")
        return "\n".join(lines) + "\n"

    def write(self, path: Path | str, header: str) -> Path:
        """Write atomically, then read back: a file that would not load is never left in place."""
        return _write_read_back(self, path, header, "frontier")

    def cheaper_than(self, requested: StrategyParams, num_steps: int) -> list[tuple[Strategy, StrategyParams]]:
        """The ladder for a request of EC-Diff `requested` at `num_steps` steps: the points, scaled to
        the steps like the defaults, that make fewer cloud calls than the request and than every point
        kept before them (a point that scaling made no cheaper can never be chosen), most accurate first."""
        limit = PlanCounts.of(strategy_from_name("ecdiff", **requested.as_dict()).plan(num_steps)).cloud
        ladder = []
        for point in self.points:
            params = replace(scale_params(point.params(requested.cloud_steps), self.num_steps, num_steps),
                             cloud_steps=requested.cloud_steps)
            strategy = strategy_from_name("ecdiff", **params.as_dict())
            calls = PlanCounts.of(strategy.plan(num_steps)).cloud
            if calls < limit:
                ladder.append((strategy, params))
                limit = calls
        return ladder


def _read_toml(path: Path, what: str, hint: str) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} not found ({hint})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{what} {path}: {exc}") from None


def _write_read_back(config: StrategyDefaults | Frontier, path: Path | str, header: str, what: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(config.to_toml(header))
    if type(config).load(tmp) != config:
        raise ValueError(f"{what} {tmp} does not read back as written")
    os.replace(tmp, path)
    return path


def scale_params(params: StrategyParams, reference_steps: int, num_steps: int) -> StrategyParams:
    """`params`, given for `reference_steps` steps, for `num_steps` steps: the step-indexed ones scale
    proportionally (p stays >= 2, p <= s <= T, n <= T)."""
    if num_steps == reference_steps:
        return params
    ratio = num_steps / reference_steps
    pre = max(2, _round(params.pre_steps * ratio))
    return replace(params, pre_steps=pre, switch_step=min(num_steps, max(pre, _round(params.switch_step * ratio))),
                   cloud_steps=min(num_steps, _round(params.cloud_steps * ratio)))


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))
