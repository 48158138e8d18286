"""SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) with the paper's standard constants.

Implementation: this module (float64 torch): the paper's formula under a Gaussian window, the
configuration of the authors' original MATLAB `ssim_index.m` (no automatic downsampling), of
scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)` and of pytorch-msssim (not compared with those here;
they are not installed):

    window  w: 11 x 11, separable Gaussian, sigma = 1.5, normalised to sum 1
    mu_x    = w * x,  sigma_x^2 = w * x^2 - mu_x^2,  sigma_xy = w * (x y) - mu_x mu_y
    C1 = (K1 L)^2, C2 = (K2 L)^2 with K1 = 0.01, K2 = 0.03, L = 1 (images in [0, 1])
    SSIM map = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))

The map is taken over 'valid' window positions only (no padding, as in the paper's code), averaged
over positions, then over channels (RGB per channel, no colour conversion). Videos: per frame,
averaged over frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .convert import paired_frames, per_item

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 1.0


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """1-D Gaussian taps, float64, summing to 1."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    taps = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return taps / taps.sum()


def _filter(t: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of every channel of [N, C, H, W]."""
    channels = t.shape[1]
    row = taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    col = taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    return F.conv2d(F.conv2d(t, row, groups=channels), col, groups=channels)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM, float64 [N] (videos: per-frame SSIM averaged over frames)."""
    x, y, frames = paired_frames(x, y)
    if min(x.shape[-2:]) < WINDOW:
        raise ValueError(f"SSIM needs images of at least {WINDOW}x{WINDOW}, got {tuple(x.shape[-2:])}")
    taps = gaussian_window().to(x.device)
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mu_x, mu_y = _filter(x, taps), _filter(y, taps)
    var_x = _filter(x * x, taps) - mu_x**2
    var_y = _filter(y * y, taps) - mu_y**2
    cov = _filter(x * y, taps) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return per_item(ssim_map.mean(dim=(-2, -1)).mean(dim=1), frames)
