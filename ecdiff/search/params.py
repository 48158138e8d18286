"""EC-Diff parameters as a TOML file: what the search writes and the services and bench read.

    [ecdiff]
    num_steps = 50
    pre_steps = 7      # p
    k = 2
    alpha = 0.5
    switch_step = 37   # s

Other tables (e.g. [search], describing how the values were found) are kept for people and ignored
by `load_params`.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from ..strategies import ECDiff

# The searched parameters of the embedded default pair, once shipped.
SHIPPED_PARAMS = Path(__file__).resolve().parents[2] / "models" / "ecdiff-params.toml"


@dataclass(frozen=True)
class ECDiffParams:
    num_steps: int
    pre_steps: int
    k: int
    alpha: float
    switch_step: int

    def __post_init__(self) -> None:
        self.strategy().handoff_step(self.num_steps)  # ECDiff validates p, k, alpha, s and T
        object.__setattr__(self, "alpha", float(self.alpha))

    def strategy(self, corrections: int = 1) -> ECDiff:
        return ECDiff(self.pre_steps, self.k, self.alpha, self.switch_step, corrections=corrections)

    def replace(self, **changes) -> "ECDiffParams":
        return ECDiffParams(**{**asdict(self), **changes})

    def as_dict(self) -> dict:
        return asdict(self)


def load_params(path: str | Path) -> ECDiffParams:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no EC-Diff parameter file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    table = data.get("ecdiff")
    if not isinstance(table, dict):
        raise ValueError(f"{path} has no [ecdiff] table")
    fields = ("num_steps", "pre_steps", "k", "alpha", "switch_step")
    missing = [f for f in fields if f not in table]
    if missing:
        raise ValueError(f"{path} [ecdiff] lacks {', '.join(missing)}")
    try:
        return ECDiffParams(**{f: table[f] for f in fields})
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {type(value).__name__} to TOML")


def write_params(path: str | Path, params: ECDiffParams, notes: dict | None = None, header: str = "") -> None:
    """Write [ecdiff] (and an optional flat [search] table of notes) as TOML."""
    lines = [f"# {line}" for line in header.splitlines()] + ["[ecdiff]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in params.as_dict().items()]
    if notes:
        lines += ["", "[search]"] + [f"{key} = {_toml_value(value)}" for key, value in notes.items()]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
