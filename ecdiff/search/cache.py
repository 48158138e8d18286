"""Measurements (and the step costs) cached on disk, keyed by the evaluator's fingerprint and the point.

Layout: <root>/<sha256(fingerprint)[:16]>/{fingerprint.txt, <key>.json}. A changed model pair,
prompt set, seed list or step count changes the fingerprint and so starts a fresh cache; the same
ones reuse every measurement (times included: they are the ones measured when first evaluated).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, TypeVar

from .params import ECDiffParams

Cached = TypeVar("Cached")  # a Measurement or the StepCosts


def point_key(params: ECDiffParams) -> str:
    """The paper's rule keeps the key it had before there were rules (its cached points stay valid);
    the other rules are keyed by their damping beta, alpha being unused by them."""
    head = f"T{params.num_steps}-p{params.pre_steps}-k{params.k}"
    if params.rule == "paper":
        return f"{head}-a{params.alpha!r}-s{params.switch_step}"
    return f"{head}-{params.rule}-b{params.beta!r}-s{params.switch_step}"


class MeasurementCache:
    def __init__(self, root: str | Path, fingerprint: str) -> None:
        self.folder = Path(root) / hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "fingerprint.txt").write_text(fingerprint + "\n")

    def get_or_measure(self, key: str, measure: Callable[[], Cached], decode: Callable[[dict], Cached]) -> tuple[Cached, bool]:
        """(the value, True when it came from the cache); values have as_dict(), `decode` reads it back."""
        path = self.folder / f"{key}.json"
        if path.is_file():
            try:
                return decode(json.loads(path.read_text())), True
            except (ValueError, KeyError, TypeError):
                pass  # a damaged entry is measured again and overwritten
        value = measure()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value.as_dict()))
        os.replace(tmp, path)  # atomic: an interrupted run leaves no half-written entry
        return value, False
