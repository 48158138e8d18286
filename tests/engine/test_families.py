"""The engine batches SDXL-class and CogVideoX-class requests too: SDXL's added conditioning (pooled
text embeddings, time ids) is concatenated with the token states, video runs ([1, 3, 4, 4, 4]
latents, T5 states, rotary embeddings) batch on the transformer; guided and unguided requests in one
call."""

import pytest
import torch

from ecdiff.conditioning import denoising_model
from ecdiff.engine.work import EngineResult
from ecdiff.models import load_pipeline
from ecdiff.preparation import prepare_run
from ecdiff.strategies import CloudOnly, ECDiff
from support.batched import run_batched
from support.one_thread import one_torch_thread  # noqa: F401  (autouse fixture)

STEPS = 6


@pytest.mark.parametrize("family, added", [("sdxl", {"text_embeds", "time_ids"}), ("cogvideox", set())])
def test_requests_share_model_calls_and_match_their_own_runs(family, added, family_folders):
    cloud = load_pipeline(family_folders[family]["cloud"])
    runs = [prepare_run(ECDiff(2, 1, 0.5, STEPS), prompts="a red circle", num_steps=STEPS, guidance=7.0, cloud=cloud,
                        seeds=1),
            prepare_run(CloudOnly(), prompts="the blue", num_steps=STEPS, guidance=1.0, cloud=cloud, seeds=2),
            prepare_run(CloudOnly(), prompts="a circle on the blue", num_steps=STEPS, guidance=4.0, cloud=cloud,
                        seeds=3)]
    assert set(runs[0].cloud.conditioning.added) == added
    alone = [run.sample().latents for run in runs]
    stats, batched = run_batched(denoising_model(cloud), runs, STEPS)
    assert all(isinstance(end, EngineResult) for end in batched.values())
    assert max(stats.batch_sizes) >= 2
    for i, expected in enumerate(alone):
        torch.testing.assert_close(batched[i].state.latents, expected, rtol=1e-4, atol=1e-5)
