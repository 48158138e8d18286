"""Pictures to metric inputs: videos stack to [N, F, 3, H, W], which every metric reads per frame and averages."""

import numpy as np
import pytest
import torch
from PIL import Image

from ecdiff.images import Video
from ecdiff.metrics import psnr, ssim, stack_images


def frames(count, seed):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(count)]


def test_videos_stack_per_frame_and_metrics_average_the_frames():
    x_frames, y_frames = frames(6, 1), frames(6, 2)
    x = stack_images([Video(x_frames[:3]), Video(x_frames[3:])])
    y = stack_images([Video(y_frames[:3]), Video(y_frames[3:])])
    assert x.shape == (2, 3, 3, 16, 16)
    for metric in (ssim, psnr):
        per_frame = metric(stack_images(x_frames), stack_images(y_frames))
        torch.testing.assert_close(metric(x, y), per_frame.reshape(2, 3).mean(dim=1))


def test_images_and_videos_of_other_lengths_do_not_mix():
    with pytest.raises(ValueError, match="frame counts \\[0, 2\\]"):
        stack_images([frames(1, 0)[0], Video(frames(2, 0))])
    with pytest.raises(ValueError, match="frame counts \\[2, 3\\]"):
        stack_images([Video(frames(2, 0)), Video(frames(3, 0))])
