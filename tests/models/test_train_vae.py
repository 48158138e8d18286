"""The VAE loss's shape term: it must train the encoder (that is its point), and only when weighted."""

import pytest
import torch

from ecdiff.models.training.architectures import build_vae
from ecdiff.models.training.train_vae import SHAPE_LABEL, VAETrainConfig, shape_probe, vae_loss
from ecdiff.toyworld import ATTRIBUTES


def _encoder_grads(shape_weight: float):
    torch.manual_seed(0)
    vae, probe = build_vae(), shape_probe()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    labels = torch.tensor([[0, 1, 2, 0, 4], [1, 3, 0, 1, 8]])
    loss, parts = vae_loss(vae, probe, x, labels, VAETrainConfig(shape_weight=shape_weight), torch.Generator().manual_seed(1))
    loss.backward()
    return [p.grad.clone() for p in vae.encoder.parameters()], [p.grad for p in probe.parameters()], parts


def test_shape_term_trains_the_encoder_and_the_probe():
    without, probe_without, _ = _encoder_grads(0.0)
    with_shape, probe_with, parts = _encoder_grads(0.5)
    assert parts["shape"] > 0
    assert any(not torch.allclose(a, b) for a, b in zip(without, with_shape))
    assert all(g is not None and g.abs().sum() > 0 for g in probe_with)
    assert all(g is None or g.abs().sum() == 0 for g in probe_without)


def test_shape_label_is_the_shape_column():
    assert list(ATTRIBUTES)[SHAPE_LABEL] == "shape"


def test_negative_shape_weight_is_rejected():
    with pytest.raises(ValueError, match="shape_weight"):
        VAETrainConfig(shape_weight=-0.1)

