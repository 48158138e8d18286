import pytest
import torch
from diffusers import EulerDiscreteScheduler

from ecdiff.schedules import SD_DDIM_CONFIG, ddim_coefficients, sd_ddim_scheduler

CASES = [
    dict(timestep_spacing=spacing, steps_offset=offset, set_alpha_to_one=one, prediction_type=pred)
    for spacing in ("leading", "trailing", "linspace")
    for offset in (0, 1)
    for one in (False, True)
    for pred in ("epsilon", "v_prediction")
]


@pytest.mark.parametrize("overrides", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
@pytest.mark.parametrize("num_steps", [1, 7, 50])
def test_coefficient_form_matches_scheduler_step(overrides, num_steps):
    scheduler = sd_ddim_scheduler(**overrides)
    scheduler.set_timesteps(num_steps)
    coefficients = ddim_coefficients(scheduler)
    generator = torch.Generator().manual_seed(num_steps)
    for i, t in enumerate(scheduler.timesteps):
        x = torch.randn(2, 4, 8, 8, generator=generator)
        out = torch.randn(2, 4, 8, 8, generator=generator)
        expected = scheduler.step(out, t, x).prev_sample
        got = coefficients.step(i, x, coefficients.to_eps(i, out, x))
        # fp32 rounding of a handful of multiply-adds on O(1)..O(10) values.
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_previous_timestep_is_diffusers_choice():
    # trailing spacing with 7 steps does not divide 1000: the previous timestep is still t - 1000 // 7.
    scheduler = sd_ddim_scheduler(timestep_spacing="trailing")
    scheduler.set_timesteps(7)
    coefficients = ddim_coefficients(scheduler)
    assert torch.equal(coefficients.prev_timesteps, scheduler.timesteps.long() - 1000 // 7)


def test_unsupported_schedulers_are_refused():
    for overrides in (dict(clip_sample=True), dict(thresholding=True), dict(prediction_type="sample")):
        scheduler = sd_ddim_scheduler(**overrides)
        scheduler.set_timesteps(10)
        with pytest.raises(ValueError, match="scheduler.step"):
            ddim_coefficients(scheduler)
    euler = EulerDiscreteScheduler(**{k: v for k, v in SD_DDIM_CONFIG.items() if k not in ("clip_sample", "set_alpha_to_one")})
    euler.set_timesteps(10)
    with pytest.raises(ValueError, match="not a DDIMScheduler"):
        ddim_coefficients(euler)


def test_needs_set_timesteps():
    with pytest.raises(ValueError, match="set_timesteps"):
        ddim_coefficients(sd_ddim_scheduler())
