import math

import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from ecdiff.metrics import psnr, stack_images


def test_known_mse():
    # MSE 0.01 with data range 1 -> 10 * log10(100) = 20 dB; MSE 0.0001 -> 40 dB.
    x = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    y = torch.stack([torch.full((3, 4, 4), 0.1, dtype=torch.float64), torch.full((3, 4, 4), 0.01, dtype=torch.float64)])
    assert_close(psnr(x, y), torch.tensor([20.0, 40.0], dtype=torch.float64), rtol=0, atol=1e-9)


def test_identical_is_infinite():
    x = torch.rand(1, 3, 4, 4)
    assert math.isinf(float(psnr(x, x)[0]))


def test_video_is_per_frame_average():
    x = torch.zeros(1, 2, 3, 4, 4, dtype=torch.float64)
    y = torch.stack([torch.full((3, 4, 4), 0.1, dtype=torch.float64), torch.full((3, 4, 4), 0.01, dtype=torch.float64)]).unsqueeze(0)
    assert_close(psnr(x, y), torch.tensor([30.0], dtype=torch.float64), rtol=0, atol=1e-9)


def test_pil_conversion_scale():
    image = Image.new("RGB", (4, 2), (255, 0, 51))
    t = stack_images([image])
    assert t.shape == (1, 3, 2, 4)
    assert_close(t[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.2]))
    with pytest.raises(ValueError, match="one size"):
        stack_images([image, Image.new("RGB", (2, 2))])
