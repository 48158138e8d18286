import pytest
import torch
from diffusers import CogVideoXDDIMScheduler, EulerDiscreteScheduler

from ecdiff.models.tiny_families import COGVIDEOX_DDIM_CONFIG
from ecdiff.sampling import Sampler
from ecdiff.schedules import (SD_DDIM_CONFIG, coefficient_form_unsupported_reason, ddim_coefficients,
                              sd_ddim_scheduler)
from ecdiff.strategies import CloudOnly

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


# CogVideoXDDIMScheduler: x' = a x + b x0_hat, the same DDIM update written differently, on alphas_cumprod with
# an SNR shift and (the folders' default) a zero terminal SNR.
COGVIDEOX_CASES = [
    dict(timestep_spacing=spacing, snr_shift_scale=shift, rescale_betas_zero_snr=zero, set_alpha_to_one=one,
         prediction_type=pred)
    for spacing in ("leading", "trailing", "linspace")
    for shift in (1.0, 3.0)
    for zero in (False, True)
    for one in (False, True)
    for pred in ("epsilon", "v_prediction")
]


def cogvideox_scheduler(**overrides) -> CogVideoXDDIMScheduler:
    return CogVideoXDDIMScheduler.from_config({**COGVIDEOX_DDIM_CONFIG, **overrides})


@pytest.mark.parametrize("overrides", COGVIDEOX_CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
@pytest.mark.parametrize("num_steps", [1, 7, 50])
def test_cogvideox_coefficient_form_matches_its_step_where_the_snr_is_not_zero(overrides, num_steps):
    scheduler = cogvideox_scheduler(**overrides)
    scheduler.set_timesteps(num_steps)
    visits_zero_snr = overrides["rescale_betas_zero_snr"] and 999 in scheduler.timesteps.tolist()
    reason = coefficient_form_unsupported_reason(scheduler)
    assert (reason is not None) == visits_zero_snr
    if visits_zero_snr:  # f = sqrt(a_prev / 0): such runs go through scheduler.step
        assert "zero terminal SNR" in reason
        with pytest.raises(ValueError, match="scheduler.step"):
            ddim_coefficients(scheduler)
        return
    coefficients = ddim_coefficients(scheduler)
    generator = torch.Generator().manual_seed(num_steps)
    for i, t in enumerate(scheduler.timesteps):
        x = torch.randn(1, 3, 4, 4, 4, generator=generator)
        out = torch.randn(1, 3, 4, 4, 4, generator=generator)
        expected = scheduler.step(out, t, x).prev_sample
        got = coefficients.step(i, x, coefficients.to_eps(i, out, x))
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)  # fp32 rounding


def test_a_ddim_scheduler_visiting_zero_snr_takes_scheduler_step():
    scheduler = sd_ddim_scheduler(rescale_betas_zero_snr=True, timestep_spacing="trailing",
                                  prediction_type="v_prediction")
    scheduler.set_timesteps(10)
    assert "alphas_cumprod is 0 at timestep 999" in coefficient_form_unsupported_reason(scheduler)
    scheduler.set_timesteps(10)
    sampler = Sampler(CloudOnly(), scheduler, lambda x, t: torch.zeros_like(x), None, num_steps=10)
    assert type(sampler.updater).__name__ == "_SchedulerStepUpdater"
    assert torch.isfinite(sampler.run(sampler.initial_state(torch.randn(1, 4, 8, 8))).latents).all()
