"""The edge's distillation loss: MSE between student and teacher epsilon on the same noisy input."""

import pytest
import torch

from ecdiff.models.training.architectures import build_scheduler
from ecdiff.models.training.distill_edge import DistillConfig, WordingStates, distill_loss, focused_timesteps
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


def test_wording_phase_config():
    assert DistillConfig().wordings and DistillConfig().total_steps == DistillConfig().steps + DistillConfig().wording_steps
    assert DistillConfig(wordings=False).total_steps == DistillConfig().steps
    for kwargs in ({"wording_prob": 1.5}, {"focus_timestep": 600}, {"wording_steps": -1}, {"focus_prob": -0.1}):
        with pytest.raises(ValueError):
            DistillConfig(**kwargs)


def test_focused_timesteps_stay_in_range_and_concentrate_below_the_focus():
    t = focused_timesteps(20000, 500, 300, 0.75, step_generator(0, 0))
    assert int(t.min()) >= 0 and int(t.max()) < 500
    # P(t < 300) = 0.75 + 0.25 * 300 / 500 = 0.9
    assert abs(float((t < 300).float().mean()) - 0.9) < 0.02


def test_wording_states_use_the_pipeline_encoding_and_keep_caption_dropout():
    from ecdiff.models.text_encoder import encode
    from ecdiff.toyworld import all_scenes, parse_caption

    config = DistillConfig(wording_prob=1.0)
    states_of = WordingStates(config)
    ids = torch.arange(0, 1728, 27)
    table = torch.randn(1728, 6, 32, 384).to(torch.float16)
    empty = torch.randn(32, 384).to(torch.float16)
    states, texts = states_of(ids, table, empty, step=5, gen=step_generator(0, 5))
    dropped = (states == empty.float()).flatten(1).all(1)
    assert 0 < int(dropped.sum()) < len(ids) and len(texts) == int((~dropped).sum())
    kept = ids[~dropped]
    assert [parse_caption(t) for t in texts] == [all_scenes()[int(i)] for i in kept]
    expected = encode(texts, states_of.tokenizer, states_of.text_encoder).to(torch.float16).float()
    torch.testing.assert_close(states[~dropped], expected, rtol=0, atol=0)
    again, texts2 = WordingStates(config)(ids, table, empty, step=5, gen=step_generator(0, 5))
    assert texts2 == texts and torch.equal(again, states)
