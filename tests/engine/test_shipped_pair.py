"""The engine on the shipped cloud model: batched results equal unbatched ones up to batched rounding,
stated as image SSIM >= 0.999 on the decoded pictures (the exactness the engine promises)."""

import torch

from ecdiff.engine.work import EngineResult
from ecdiff.images import decode_images
from ecdiff.loading import load_pair
from ecdiff.metrics.convert import stack_images
from ecdiff.metrics.ssim import ssim
from ecdiff.preparation import prepare_run
from ecdiff.strategies import CloudOnly, ECDiff
from support.batched import run_batched

PROMPTS = ["a small red circle at the top left on a white background",
           "a large blue square in the middle on a black background",
           "a small green triangle at the bottom right on a gray background"]
STEPS = 25


def test_batched_pictures_match_unbatched_on_the_shipped_pair():
    pair = load_pair()
    runs = [prepare_run(ECDiff(4, 2, 0.4, STEPS) if i % 2 else CloudOnly(), prompts=prompt, num_steps=STEPS,
                        guidance=pair.guidance, cloud=pair.cloud, seeds=100 + i) for i, prompt in enumerate(PROMPTS)]
    alone = [run.sample().latents for run in runs]
    stats, batched = run_batched(pair.cloud.unet, runs, STEPS, timeout=300)
    assert all(isinstance(end, EngineResult) for end in batched.values())
    assert max(stats.batch_sizes) == 3
    for i, expected in enumerate(alone):
        got = batched[i].state.latents
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)
        pictures = [decode_images(pair.cloud, x)[0] for x in (got, expected)]
        assert float(ssim(stack_images(pictures[:1]), stack_images(pictures[1:]))) >= 0.999
