"""Tiny random toy-world models in a temporary models/ folder (no training, built in milliseconds)."""

import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

from ecdiff.models.text_encoder import HIDDEN_SIZE
from ecdiff.models.training.architectures import SCHEDULER_CONFIG


@pytest.fixture
def tiny_models_dir(tmp_path, monkeypatch):
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=[8, 8, 8, 8], down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=1, latent_channels=4,
                        norm_num_groups=4, sample_size=64)
    vae.save_pretrained(tmp_path / "toyworld-vae")
    for name in ("toyworld-cloud", "toyworld-edge"):
        unet = UNet2DConditionModel(sample_size=8, block_out_channels=[16, 32], layers_per_block=1,
                                    down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                                    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
                                    cross_attention_dim=HIDDEN_SIZE, attention_head_dim=4, norm_num_groups=8)
        unet.to(torch.float16).save_pretrained(tmp_path / name / "unet")
        DDIMScheduler(**SCHEDULER_CONFIG).save_pretrained(tmp_path / name / "scheduler")
    monkeypatch.setenv("ECDIFF_MODELS_DIR", str(tmp_path))
    return tmp_path
