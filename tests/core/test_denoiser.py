import types

import pytest
import torch

from ecdiff.conventions import initial_latents
from ecdiff.conditioning import Conditioning, encode_conditioning
from ecdiff.denoiser import TransformerDenoiser, UNetDenoiser, denoiser_for, latent_shape, pipeline_denoiser
from ecdiff.models import load_pipeline
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
    latents, t = torch.zeros(1, 4, 8, 8), torch.tensor(500)
    with pytest.raises(ValueError, match="negative"):
        UNetDenoiser(cloud.unet)(latents, t, Conditioning(torch.zeros(1, 16, 32), None, (3.0,)))
    with pytest.raises(ValueError, match="guidance_scale"):
        Conditioning(torch.zeros(1, 16, 32), None, (-1.0,))
    with pytest.raises(ValueError, match="conditioning for 1 samples"):
        UNetDenoiser(cloud.unet)(torch.zeros(2, 4, 8, 8), t, Conditioning(torch.zeros(1, 16, 32), None, (1.0,)))


PROMPTS = ["a small red circle at the top left on a white background",
           "a large blue square in the middle on a black background",
           "a small green triangle at the bottom right on a grey background"]


def test_a_batch_of_requests_equals_each_request_alone(pipes):
    """Per-sample timesteps, prompts and guidance scales (guided and unguided mixed) in one UNet call
    give each sample its own guided noise, as separate calls would, up to batched rounding."""
    cloud, _ = pipes
    denoiser = UNetDenoiser(cloud.unet)
    parts = [encode_conditioning(cloud, PROMPTS[0], 7.0), encode_conditioning(cloud, PROMPTS[1], 1.0),
             encode_conditioning(cloud, PROMPTS[2], 3.5)]
    latents = torch.randn((3, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    timesteps = torch.tensor([981, 501, 41])
    batched = denoiser(latents, timesteps, Conditioning.concat(parts))
    for i, part in enumerate(parts):
        alone = denoiser(latents[i:i + 1], timesteps[i], part)
        torch.testing.assert_close(batched[i:i + 1], alone, rtol=1e-4, atol=1e-5)



def test_a_batch_of_one_is_the_pipelines_call(pipes):
    """Bit for bit what diffusers' pipeline computes for one prompt: [uncond, cond] rows, then guidance."""
    cloud, _ = pipes
    conditioning = encode_conditioning(cloud, PROMPTS[0], 7.0)
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(1))
    t = torch.tensor(601)
    out = cloud.unet(torch.cat([latents] * 2), t, encoder_hidden_states=torch.cat(
        [conditioning.negative_embeds, conditioning.prompt_embeds]), return_dict=False)[0]
    uncond, cond = out.chunk(2)
    assert torch.equal(UNetDenoiser(cloud.unet)(latents, t, conditioning), uncond + 7.0 * (cond - uncond))


def test_the_denoiser_class_follows_the_model_and_computes_the_pipelines_rotary_embeddings(family_folders):
    video = load_pipeline(family_folders["cogvideox"]["cloud"])
    assert type(denoiser_for(video.transformer)) is TransformerDenoiser
    assert type(denoiser_for(load_pipeline(family_folders["sd1"]["cloud"]).unet)) is UNetDenoiser
    latents = torch.zeros(latent_shape(video))
    ours = denoiser_for(video.transformer).rotary_embeddings(latents)
    theirs = video._prepare_rotary_positional_embeddings(32, 32, latents.shape[1], latents.device)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    edge = load_pipeline(family_folders["cogvideox"]["edge"])  # sin-cos position embeddings: no rotary ones
    assert denoiser_for(edge.transformer).rotary_embeddings(latents) is None


class _DtypeCountingUNet(torch.nn.Module):
    """A stand-in model whose `dtype` reads are counted (diffusers' walks every module)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.config = types.SimpleNamespace(time_cond_proj_dim=None)

    @property
    def dtype(self) -> torch.dtype:
        self.reads += 1
        return torch.float32

    def forward(self, latents, timesteps, encoder_hidden_states, return_dict=False):
        return (latents * 0.5,)


def test_a_denoiser_reads_its_models_dtype_at_its_first_call_only():
    unet = _DtypeCountingUNet()
    denoisers = [UNetDenoiser(unet) for _ in range(3)]  # the cloud engine's requests each build one, never called
    assert unet.reads == 0
    conditioning = Conditioning(prompt_embeds=torch.zeros(1, 2, 3), negative_embeds=torch.zeros(1, 2, 3),
                                guidance=(1.0,))
    for _ in range(2):
        denoisers[0](torch.ones(1, 4, 2, 2), torch.tensor([5]), conditioning)
    assert unet.reads == 1
