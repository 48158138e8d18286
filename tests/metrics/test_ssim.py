import math

import pytest
import torch
from torch.testing import assert_close

from ecdiff.metrics import ssim


def direct_ssim(x, y):
    """Wang et al. 2004, written out: every valid 11x11 window, Gaussian weights (sigma 1.5),
    weighted moments per window, mean over windows, then over channels. float64, loops."""
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2
    half = 5
    g = [math.exp(-((i - half) ** 2) / (2 * 1.5**2)) for i in range(11)]
    w = torch.tensor([[a * b for b in g] for a in g], dtype=torch.float64)
    w = w / w.sum()
    per_channel = []
    for c in range(x.shape[0]):
        values = []
        for r in range(x.shape[1] - 10):
            for q in range(x.shape[2] - 10):
                px, py = x[c, r:r + 11, q:q + 11].double(), y[c, r:r + 11, q:q + 11].double()
                mx, my = (w * px).sum(), (w * py).sum()
                vx = (w * (px - mx) ** 2).sum()
                vy = (w * (py - my) ** 2).sum()
                cxy = (w * (px - mx) * (py - my)).sum()
                values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
        per_channel.append(torch.stack(values).mean())
    return torch.stack(per_channel).mean()


def rand(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_identical_images_give_one():
    x = rand((2, 3, 16, 16), 0)
    assert_close(ssim(x, x), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("a,b", [(0.2, 0.7), (0.0, 1.0), (0.5, 0.5), (0.9, 0.3)])
def test_constant_images_analytic(a, b):
    # Constant images: every window has zero variance and covariance, so the structure factor is
    # C2 / C2 = 1 and SSIM = (2ab + C1) / (a^2 + b^2 + C1) exactly.
    c1 = 0.01**2
    x = torch.full((1, 3, 12, 12), a, dtype=torch.float64)
    y = torch.full((1, 3, 12, 12), b, dtype=torch.float64)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert_close(ssim(x, y), torch.tensor([expected], dtype=torch.float64), rtol=0, atol=1e-10)


def test_matches_direct_windowed_reference():
    x = rand((2, 3, 14, 15), 1)
    y = (x + 0.2 * rand((2, 3, 14, 15), 2)).clamp(0, 1)
    got = ssim(x, y)
    want = torch.stack([direct_ssim(x[i], y[i]) for i in range(2)])
    # float64 both ways; the separable filter and E[x^2] - mu^2 differ from the direct sum only in round-off.
    assert_close(got, want, rtol=0, atol=1e-10)
    assert float(got.max()) < 0.99  # a real difference scores below 1


def test_video_is_per_frame_average():
    x = rand((2, 3, 3, 12, 12), 3)
    y = rand((2, 3, 3, 12, 12), 4)
    frames = torch.stack([ssim(x[:, f], y[:, f]) for f in range(3)], dim=1)
    assert_close(ssim(x, y), frames.mean(dim=1), rtol=0, atol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(torch.zeros(1, 3, 12, 12), torch.zeros(1, 3, 12, 13))
    with pytest.raises(ValueError, match="NaN"):
        ssim(torch.full((1, 3, 12, 12), float("nan")), torch.zeros(1, 3, 12, 12))
