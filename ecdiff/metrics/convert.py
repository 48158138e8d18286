"""Pictures to metric inputs, and the one shape check every metric shares."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB picture as a float32 [3, H, W] tensor in [0, 1] (uint8 / 255)."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32) / 255.0


def stack_images(images: Sequence[Image.Image]) -> torch.Tensor:
    """Pictures of one size as a float32 [N, 3, H, W] batch in [0, 1]; videos (`ecdiff.images.Video`,
    anything with `frames`) of one length as [N, F, 3, H, W], which every metric reads per frame."""
    if not images:
        raise ValueError("need at least one image")
    sizes = {image.size for image in images}
    if len(sizes) != 1:
        raise ValueError(f"images must share one size, got {sorted(sizes)}")
    lengths = {len(getattr(image, "frames", ())) for image in images}
    if len(lengths) != 1:
        raise ValueError(f"pictures must all be images or all videos of one length, got frame counts {sorted(lengths)}")
    if lengths != {0}:
        return torch.stack([torch.stack([pil_to_tensor(frame) for frame in video.frames]) for video in images])
    return torch.stack([pil_to_tensor(image) for image in images])


def paired_frames(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Validate a (test, reference) pair and flatten videos to frames.

    Returns float64 [N*F, C, H, W] tensors and F (1 for images), so a metric computes one value
    per frame and `per_item` averages the frames of each video.
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor")
        if t.dim() not in (4, 5):
            raise ValueError(f"{name} must be [N, C, H, W] or [N, F, C, H, W], got shape {tuple(t.shape)}")
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all())):
        raise ValueError("images contain NaN or infinite values")
    frames = x.shape[1] if x.dim() == 5 else 1
    flat = (-1,) + tuple(x.shape[-3:])
    return x.reshape(flat).double(), y.reshape(flat).double(), frames


def per_item(values: torch.Tensor, frames: int) -> torch.Tensor:
    """Per-frame values [N*F] -> per-image / per-video means [N]."""
    return values.reshape(-1, frames).mean(dim=1)
