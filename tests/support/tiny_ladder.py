"""A ladder of cheaper EC-Diff points for the tiny pair at 10 steps, for the load-adaptive quality tests
of a plain cloud and of a Ray Serve cloud (the figures are made up: the tests check the serving)."""

from __future__ import annotations

from pathlib import Path

from ecdiff.strategy_config import Frontier, FrontierPoint

STEPS = 10
# 5 cloud calls (0-3, 6); the ladder's points make 4 (0, 1, 4, 7) and 2 (0, 1).
ASKED = dict(pre_steps=4, k=2, alpha=0.5, switch_step=9, rule="lsq", beta=0.3)
SERVED = dict(pre_steps=2, k=2, alpha=0.5, switch_step=8, rule="lsq", beta=0.3)


def write_tiny_ladder(path: Path) -> Path:
    Frontier(STEPS, "tiny-cloud", "tiny-edge", (
        FrontierPoint(**SERVED, cloud_calls=4, ssim=0.99, fidelity=80.0),
        FrontierPoint(**{**SERVED, "switch_step": 2}, cloud_calls=2, ssim=0.9, fidelity=60.0),
    )).write(path, "a ladder for the tiny pair at 10 steps (figures made up: the tests check the serving)")
    return path
