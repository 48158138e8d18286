import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline

from ecdiff.img2img import img2img, img2img_start_step
from ecdiff.schedules import sd_ddim_scheduler
from ecdiff.strategies import ECDiff, EdgeOnly
from ecdiff.tiny_models import tiny_pipelines

from support.analytic import SmoothDenoiser, random_latents, rel_err


@pytest.mark.parametrize("strength", [0.3, 0.45, 0.55, 0.8, 1.0])
@pytest.mark.parametrize("num_steps", [10, 25, 50])
def test_start_step_agrees_with_diffusers(strength, num_steps):
    cloud, _ = tiny_pipelines(seed=0)
    pipe = StableDiffusionImg2ImgPipeline(**cloud.components)
    pipe.scheduler.set_timesteps(num_steps)
    timesteps, steps_run = pipe.get_timesteps(num_steps, strength, "cpu")
    start = img2img_start_step(num_steps, strength)
    assert num_steps - start == steps_run
    assert torch.equal(pipe.scheduler.timesteps[start:], timesteps)


def test_low_strength_still_runs_one_step():
    # diffusers' int(num_steps * strength) is 0 here; we run the last step instead of nothing.
    assert img2img_start_step(50, 0.01) == 49
    assert img2img_start_step(1, 0.5) == 0


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan"), True, "0.5"])
def test_strength_validation(bad):
    with pytest.raises(ValueError, match="strength"):
        img2img_start_step(50, bad)


def test_img2img_matches_the_formula():
    # Reference from the definition: noise x0 to the start step's timestep, then DDIM from there.
    num_steps, strength = 20, 0.6
    edge = SmoothDenoiser(3)
    x0, noise = random_latents(1), random_latents(2)
    result = img2img(EdgeOnly(), sd_ddim_scheduler(), None, edge, x0, noise, num_steps=num_steps, strength=strength)
    scheduler = sd_ddim_scheduler()
    scheduler.set_timesteps(num_steps)
    start = num_steps - int(num_steps * strength)
    a = scheduler.alphas_cumprod[scheduler.timesteps[start]].double()
    x = a.sqrt() * x0.double() + (1 - a).sqrt() * noise.double()
    for t in scheduler.timesteps[start:]:
        x = scheduler.step(edge(x, t), t, x).prev_sample
    assert rel_err(result.latents, x) < 1e-5
    assert result.edge_calls == num_steps - start and [r.index for r in result.steps] == list(range(start, num_steps))


def test_refinement_with_k_step_approximation():
    # EC-Diff in the cloud's refinement: p counts from the start step, approximation as usual.
    num_steps, strength = 50, 0.5
    start = img2img_start_step(num_steps, strength)
    cloud = SmoothDenoiser(4)
    strategy = ECDiff(pre_steps=start + 3, k=2, alpha=0.5, switch_step=num_steps)
    result = img2img(strategy, sd_ddim_scheduler(), cloud, None, random_latents(1), random_latents(2),
                     num_steps=num_steps, strength=strength)
    real_after_p = (num_steps - start - 3) // 3
    assert result.cloud_calls == 3 + real_after_p and result.approx_steps == num_steps - start - 3 - real_after_p


def test_noise_shape_must_match():
    with pytest.raises(ValueError, match="shape"):
        img2img(EdgeOnly(), sd_ddim_scheduler(), None, SmoothDenoiser(1), random_latents(1), random_latents(2)[:1],
                num_steps=10, strength=0.5)
