"""Training data: jittered renders with their attribute labels, cached on disk once per (count, seed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ecdiff.models.training.paths import cache_dir
from ecdiff.toyworld import Jitter, all_scenes, render


def training_renders(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 3, 64, 64), labels int64 (N, 5) in ATTRIBUTES order), balanced over scenes.

    Scenes cycle through the whole world in a seeded shuffled order, so every scene appears
    count // 1728 or one more times; each render has its own jitter.
    """
    if count <= 0:
        raise ValueError(f"count must be > 0, got {count}")
    path = cache_dir() / f"renders-{count}-{seed}.npz"
    if not path.is_file():
        _write_renders(path, count, seed)
    with np.load(path) as data:
        return torch.from_numpy(data["images"]).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(data["labels"])


def _write_renders(path: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scenes = all_scenes()
    order = np.concatenate([rng.permutation(len(scenes)) for _ in range(-(-count // len(scenes)))])[:count]
    images = np.empty((count, 64, 64, 3), dtype=np.uint8)
    labels = np.empty((count, 5), dtype=np.int64)
    jitter = Jitter()
    for i, scene_index in enumerate(tqdm(order, desc=f"render {count} training images", unit="img")):
        scene = scenes[scene_index]
        images[i] = render(scene, rng, jitter)
        labels[i] = scene.indices()
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=images, labels=labels)
    tmp.replace(path)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range diffusers' VAEs work in."""
    return images.float() / 127.5 - 1.0
