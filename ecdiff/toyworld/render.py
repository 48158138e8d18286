"""Procedural, seeded renderer: one flat-coloured object on a plain background, anti-aliased.

Edges are anti-aliased by 4x4 supersampling (coverage-weighted blend of object and background
colour), so the same scene always gives the same pixels and a VAE is not asked to reproduce
aliasing noise. Jitter (training renders only) moves the centre by up to +-2 px and scales the
object by up to +-10 %, as the world's definition allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecdiff.toyworld.palette import BACKGROUNDS, COLORS, IMAGE_SIZE, POSITIONS, SIZES
from ecdiff.toyworld.scene import Scene

_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Jitter:
    """Bounds of the random placement noise used for training renders."""

    max_shift_px: float = 2.0
    max_scale: float = 0.10

    def __post_init__(self) -> None:
        if not 0 <= self.max_shift_px <= 4:
            raise ValueError(f"max_shift_px must be in [0, 4], got {self.max_shift_px}")
        if not 0 <= self.max_scale < 0.5:
            raise ValueError(f"max_scale must be in [0, 0.5), got {self.max_scale}")


def inside(shape: str, coords: np.ndarray, cx: float, cy: float, half: float) -> np.ndarray:
    """Which points of the square grid `coords` x `coords` (pixel units) lie inside the shape
    whose box is centred on (cx, cy) with half side `half`; rows are y, columns x."""
    x = coords[None, :] - cx
    y = coords[:, None] - cy
    if shape == "circle":
        return x * x + y * y <= half * half
    if shape == "square":
        return (np.abs(x) <= half) & (np.abs(y) <= half)
    if shape == "triangle":  # apex up at (cx, cy - half), base on y = cy + half
        return (y <= half) & (np.abs(x) <= (y + half) / 2)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) <= half
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(shape: str, cx: float, cy: float, half: float) -> np.ndarray:
    """Fraction of each pixel covered by the shape, from a supersampled inside test."""
    coords = (np.arange(IMAGE_SIZE * _SUPERSAMPLE, dtype=np.float64) + 0.5) / _SUPERSAMPLE
    covered = inside(shape, coords, cx, cy, half).astype(np.float32)
    return covered.reshape(IMAGE_SIZE, _SUPERSAMPLE, IMAGE_SIZE, _SUPERSAMPLE).mean(axis=(1, 3))


def render(scene: Scene, rng: np.random.Generator | None = None, jitter: Jitter | None = None) -> np.ndarray:
    """Render `scene` to a (64, 64, 3) uint8 array. Jitter needs both `rng` and `jitter`."""
    if (rng is None) != (jitter is None):
        raise ValueError("pass both rng and jitter for a jittered render, or neither for the exact one")
    cx, cy = POSITIONS[scene.position]
    half = SIZES[scene.size] / 2
    if jitter is not None:
        dx, dy = rng.uniform(-jitter.max_shift_px, jitter.max_shift_px, size=2)
        cx, cy = cx + dx, cy + dy
        half *= 1 + rng.uniform(-jitter.max_scale, jitter.max_scale)
    alpha = _coverage(scene.shape, cx, cy, half)[..., None]
    background = np.asarray(BACKGROUNDS[scene.background], dtype=np.float32)
    color = np.asarray(COLORS[scene.color], dtype=np.float32)
    image = background * (1 - alpha) + color * alpha
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_batch(scenes: list[Scene], seed: int, jitter: Jitter | None = None) -> np.ndarray:
    """Render many scenes to (N, 64, 64, 3) uint8; jittered renders are reproducible from `seed`."""
    rng = np.random.default_rng(seed) if jitter is not None else None
    out = np.empty((len(scenes), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, scene in enumerate(scenes):
        out[i] = render(scene, rng, jitter)
    return out
