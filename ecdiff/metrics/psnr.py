"""PSNR on images in [0, 1] (data range 1): 10 * log10(1 / MSE), MSE over all pixels and channels."""

from __future__ import annotations

import torch

from .convert import paired_frames, per_item


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB, float64 [N]; videos: per-frame PSNR averaged over frames.

    Identical images give +inf (MSE = 0); callers that write JSON report those as null.
    """
    x, y, frames = paired_frames(x, y)
    mse = ((x - y) ** 2).flatten(1).mean(dim=1)
    return per_item(10.0 * torch.log10(1.0 / mse), frames)
