import pytest
import torch
from diffusers import CogVideoXDDIMScheduler, DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from ecdiff.models.tiny_families import COGVIDEOX_DDIM_CONFIG
from ecdiff.sampling import Sampler
from ecdiff.schedules import (SD_DDIM_CONFIG, coefficient_form_unsupported_reason, ddim_coefficients, new_scheduler,
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


def _scheduler_equal(a, b) -> bool:
    if type(a) is not type(b) or dict(a.config) != dict(b.config) or vars(a).keys() != vars(b).keys():
        return False
    for name, value in vars(a).items():
        other = vars(b)[name]
        if isinstance(value, torch.Tensor):
            if not (isinstance(other, torch.Tensor) and value.dtype == other.dtype and torch.equal(value, other)):
                return False
        elif name != "_internal_dict" and value != other:
            return False
    return True


@pytest.mark.parametrize("cls, overrides", [(DDIMScheduler, {}), (EulerDiscreteScheduler, {}),
                                             (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
                                             (CogVideoXDDIMScheduler, {})])
def test_a_new_scheduler_equals_from_config_and_is_its_own(cls, overrides):
    config = COGVIDEOX_DDIM_CONFIG if cls is CogVideoXDDIMScheduler else SD_DDIM_CONFIG
    made = new_scheduler(cls, config, **overrides)
    assert _scheduler_equal(made, cls.from_config(config, **overrides))
    made.set_timesteps(7)  # a stepped scheduler must not leak into the next new one
    again = new_scheduler(cls, config, **overrides)
    assert again is not made and again.num_inference_steps is None
    assert _scheduler_equal(again, cls.from_config(config, **overrides))
    again.set_timesteps(7)
    assert _scheduler_equal(again, made)


def test_new_schedulers_keep_their_config_and_overrides_apart():
    ddim = new_scheduler(DDIMScheduler, SD_DDIM_CONFIG)
    clipped = new_scheduler(DDIMScheduler, SD_DDIM_CONFIG, clip_sample=True)
    other_config = new_scheduler(DDIMScheduler, {**SD_DDIM_CONFIG, "beta_end": 0.02})
    assert clipped.config.clip_sample and not ddim.config.clip_sample
    assert other_config.config.beta_end == 0.02 and ddim.config.beta_end == SD_DDIM_CONFIG["beta_end"]
    assert not torch.equal(other_config.betas, ddim.betas)


def test_a_sampler_makes_no_scheduler_from_config_once_one_was_made(monkeypatch):
    """from_config inspects signatures with the GIL held: the serving path makes copies instead."""
    scheduler = new_scheduler(DDIMScheduler, SD_DDIM_CONFIG)
    Sampler(CloudOnly(), scheduler, cloud=None, edge=None, num_steps=10)  # its config has the defaults filled in
    calls = []
    real = DDIMScheduler.from_config.__func__
    monkeypatch.setattr(DDIMScheduler, "from_config", classmethod(lambda cls, *a, **k: calls.append(1) or real(cls, *a, **k)))
    for _ in range(3):
        Sampler(CloudOnly(), scheduler, cloud=None, edge=None, num_steps=10)
        new_scheduler(DDIMScheduler, SD_DDIM_CONFIG)
    assert calls == []
