"""The edge's distillation loss: MSE between student and teacher epsilon on the same noisy input."""

import pytest
import torch

from ecdiff.models.training.architectures import build_scheduler
from ecdiff.models.training.distill_edge import DistillConfig, distill_loss
from ecdiff.models.training.loop import step_generator


class _Linear(torch.nn.Module):
    """eps = scale * x: both nets see the same noisy latent, so the loss is ((a - b) x_t)^2."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.seen_t = None

    def forward(self, x, t, states):
        self.seen_t = t
        return type("Out", (), {"sample": self.scale * x})()


def test_distill_loss_matches_formula_and_stays_below_max_timestep():
    scheduler = build_scheduler()
    x0 = torch.randn(5, 4, 8, 8)
    student, teacher = _Linear(0.5), _Linear(2.0)
    loss = distill_loss(student, teacher, scheduler, x0, torch.zeros(5, 32, 384), 400, step_generator(0, 1))
    gen = step_generator(0, 1)  # replay: t first, then the noise
    t = torch.randint(0, 400, (5,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    alpha_bar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
    torch.testing.assert_close(loss, ((0.5 - 2.0) * x_t).square().mean(), rtol=1e-5, atol=0)
    assert torch.equal(student.seen_t, t) and torch.equal(teacher.seen_t, t) and int(t.max()) < 400


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"lr": 0.0}, {"max_timestep": 1001}, {"ema_decay": 1.5}])
def test_distill_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        DistillConfig(**kwargs)
