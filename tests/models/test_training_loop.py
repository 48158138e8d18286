import math

import torch

from ecdiff.models.training.architectures import build_scheduler
from ecdiff.models.training.loop import WallClock, load_checkpoint, lr_at, save_checkpoint, step_generator
import pytest

from ecdiff.models.training.train_unet import UNetTrainConfig, diffusion_loss


def test_lr_schedule_warmup_then_cosine():
    peak, total, warm = 1e-3, 1000, 100
    assert math.isclose(lr_at(0, total, peak, warm), peak / 100)
    assert math.isclose(lr_at(99, total, peak, warm), peak)
    mid = 100 + 450  # halfway through the cosine: cos(pi/2) = 0
    assert math.isclose(lr_at(mid, total, peak, warm), peak * (0.05 + 0.95 * 0.5))
    assert math.isclose(lr_at(total, total, peak, warm), peak * 0.05)


def test_step_generator_reproducible_per_step():
    a = torch.rand(4, generator=step_generator(7, 12))
    torch.testing.assert_close(a, torch.rand(4, generator=step_generator(7, 12)), rtol=0, atol=0)
    assert not torch.equal(a, torch.rand(4, generator=step_generator(7, 13)))


def test_checkpoint_round_trip_resumes(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    clock = WallClock()
    path = tmp_path / "x.ckpt"
    assert load_checkpoint(path, model=model) == 0  # nothing to resume
    save_checkpoint(path, 5, model=model, optimizer=opt, clock=clock)
    fresh, fresh_opt, fresh_clock = torch.nn.Linear(3, 2), None, WallClock()
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    assert load_checkpoint(path, model=fresh, optimizer=fresh_opt, clock=fresh_clock) == 5
    torch.testing.assert_close(fresh.weight, model.weight, rtol=0, atol=0)
    assert fresh_opt.state_dict()["state"][0]["step"] == 1
    assert fresh_clock.elapsed() >= clock.before


class _ConstantEps(torch.nn.Module):
    """A 'UNet' that always predicts zero noise, so the loss is the weighted noise energy."""

    def forward(self, x, t, states):
        return type("Out", (), {"sample": torch.zeros_like(x)})()


@pytest.mark.parametrize("max_timestep", [1000, 400])
def test_min_snr_loss_matches_formula(max_timestep):
    scheduler = build_scheduler()
    x0 = torch.randn(6, 4, 8, 8)
    gamma = 5.0
    loss = diffusion_loss(_ConstantEps(), scheduler, x0, torch.zeros(6, 32, 384), gamma, step_generator(0, 0),
                          max_timestep)
    # Replay the same draws: t first, then noise, from the same seeded generator.
    gen = step_generator(0, 0)
    t = torch.randint(0, max_timestep, (6,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alpha_bar = torch.cumprod(1 - betas, 0)[t]
    snr = alpha_bar / (1 - alpha_bar)
    weight = torch.minimum(snr, torch.full_like(snr, gamma)) / snr
    expected = (weight * noise.double().square().mean((1, 2, 3))).mean()
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=0)  # fp32 vs fp64 schedule


def test_late_phase_restricts_timesteps_from_its_step_on():
    config = UNetTrainConfig(name="x", architecture="edge", steps=30, late_from_step=10, late_max_timestep=400)
    assert [config.max_timestep(step, 1000) for step in (0, 9, 10, 29)] == [1000, 1000, 400, 400]
    assert UNetTrainConfig(name="x", architecture="edge", steps=30).max_timestep(29, 1000) == 1000


@pytest.mark.parametrize("kwargs", [{"late_from_step": 30}, {"late_from_step": -1}, {"late_max_timestep": 0}])
def test_late_phase_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="late_"):
        UNetTrainConfig(name="x", architecture="edge", steps=30, **kwargs)
