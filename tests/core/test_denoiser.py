import pytest
import torch

from ecdiff.conventions import initial_latents
from ecdiff.denoiser import GuidedUNetDenoiser, PromptEmbeddings, latent_shape, pipeline_denoiser
from ecdiff.sampling import sample
from ecdiff.strategies import CloudOnly
from ecdiff.tiny_models import tiny_pipelines


@pytest.fixture(scope="module")
def pipes():
    return tiny_pipelines(seed=0)


@pytest.mark.parametrize("guidance", [1.0, 4.5])
def test_cloud_only_sample_equals_the_diffusers_pipeline(pipes, guidance):
    cloud, _ = pipes
    prompt, seed, steps = "a small red circle at the top left on a white background", 1234, 6
    expected = cloud(prompt, num_inference_steps=steps, guidance_scale=guidance, output_type="latent",
                     generator=torch.Generator("cpu").manual_seed(seed)).images
    latents = initial_latents(seed, latent_shape(cloud), cloud.scheduler, num_steps=steps)
    denoiser = pipeline_denoiser(cloud, prompt, guidance)
    result = sample(CloudOnly(), cloud.scheduler, denoiser, None, latents, num_steps=steps)
    # Same ops in the same order except the DDIM update, which is the coefficient form here.
    torch.testing.assert_close(result.latents, expected, rtol=1e-5, atol=1e-5)


def test_initial_latents_convention(pipes):
    cloud, _ = pipes
    a = initial_latents(7, (1, 4, 8, 8), cloud.scheduler)
    b = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(7)) * cloud.scheduler.init_noise_sigma
    assert torch.equal(a, b)
    for bad in (-1, 2**64, 1.5, True):
        with pytest.raises(ValueError, match="seed"):
            initial_latents(bad, (1, 4, 8, 8), cloud.scheduler)


def test_guidance_needs_negative_embeddings(pipes):
    cloud, _ = pipes
    with pytest.raises(ValueError, match="negative"):
        GuidedUNetDenoiser(cloud.unet, PromptEmbeddings(torch.zeros(1, 16, 32), None), 3.0)
    with pytest.raises(ValueError, match="guidance_scale"):
        GuidedUNetDenoiser(cloud.unet, PromptEmbeddings(torch.zeros(1, 16, 32), None), -1.0)
