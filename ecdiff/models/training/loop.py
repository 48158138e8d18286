"""Pieces every training stage shares: resumable checkpoints, the LR schedule, per-step batches.

Batches are drawn from a generator seeded by (seed, step), so a run resumed from a checkpoint
sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch


def lr_at(step: int, total_steps: int, peak_lr: float, warmup_steps: int, final_fraction: float = 0.05) -> float:
    """Linear warm-up to `peak_lr`, then cosine decay to `final_fraction * peak_lr`."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return peak_lr * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def save_checkpoint(path: Path, step: int, **state: object) -> None:
    """Atomically write {step, name: obj.state_dict() or obj} so a kill never leaves a torn file."""
    payload = {"step": step}
    payload.update({k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in state.items()})
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, **state: object) -> int:
    """Restore the objects' state from `path` if it exists; returns the step to resume at (0 if none)."""
    if not path.is_file():
        return 0
    payload = torch.load(path, map_location="cpu", weights_only=False)
    for name, obj in state.items():
        obj.load_state_dict(payload[name])
    return int(payload["step"])


class WallClock:
    """Wall time of a stage, carried through its checkpoint so a resumed run reports the total."""

    def __init__(self) -> None:
        self.before = 0.0
        self.started = time.time()

    def elapsed(self) -> float:
        return self.before + time.time() - self.started

    def state_dict(self) -> dict:
        return {"s": self.elapsed()}

    def load_state_dict(self, state: dict) -> None:
        self.before, self.started = float(state["s"]), time.time()
