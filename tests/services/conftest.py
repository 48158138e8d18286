import pytest
import torch

from diffusers import DDIMScheduler

from ecdiff.denoiser import pipeline_denoiser
from ecdiff.loading import load_model
from ecdiff.sampling import sample


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    # The CI machine has 2 shared cores: oversubscribed intra-op threads make tiny models ~100x slower.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_pair():
    """(cloud, edge) LoadedModels: the tiny random pair (deterministic weights)."""
    return load_model("cloud", "tiny"), load_model("edge", "tiny")


@pytest.fixture(scope="session")
def reference(tiny_pair):
    """The in-process core's result for (strategy, prompt, seed, num_steps): `sample` on the pair, with
    its scheduler and seeded latents written out here (plain diffusers and the documented convention),
    not taken from the servers' own helpers."""

    def run(strategy, prompt, seed, num_steps):
        cloud, edge = tiny_pair
        scheduler = DDIMScheduler.from_config(cloud.pipe.scheduler.config)
        scheduler.set_timesteps(num_steps)
        latents = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(seed)) * scheduler.init_noise_sigma
        return sample(strategy, scheduler, pipeline_denoiser(cloud.pipe, prompt, cloud.guidance),
                      pipeline_denoiser(edge.pipe, prompt, edge.guidance), latents, num_steps=num_steps)

    return run
