"""Architectures of the shipped toy-world models, as diffusers configs (one place, one role).

VAE: AutoencoderKL, factor 8 like SD (64x64x3 <-> 8x8x4), narrow at full resolution because
those layers dominate both training time and the per-image decode cost shared by both pipelines.
Cloud UNet: SD-1.x layout scaled down (3 levels, 2 resnets per level, cross-attention on MiniLM
token states). Edge UNet: BK-SDM style cut of it (fewer levels and blocks, no mid block, narrower),
so it is cheaper in operations, not just in parameters.
"""

from __future__ import annotations

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

from ecdiff.models.text_encoder import HIDDEN_SIZE

LATENT_CHANNELS = 4
LATENT_SIZE = 8

# One GroupNorm group: GroupNorm rescales each group to zero mean and unit variance per image, so
# with 1-2 channels per group (SD's 32 groups on a 16-32-channel decoder top) the absolute level of
# a flat object's colour is normalised away and colours collapse towards their average (measured:
# yellow/red/pink decoded as orange, 39 % colour accuracy after 800 steps with 8 groups of 2).
VAE_CONFIG: dict = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [16, 32, 64, 128],
    "layers_per_block": 1,
    "latent_channels": LATENT_CHANNELS,
    "norm_num_groups": 1,
    "sample_size": 64,
    "mid_block_add_attention": False,
}

CLOUD_UNET_CONFIG: dict = {
    "sample_size": LATENT_SIZE,
    "in_channels": LATENT_CHANNELS,
    "out_channels": LATENT_CHANNELS,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [64, 128, 256],
    "layers_per_block": 2,
    "cross_attention_dim": HIDDEN_SIZE,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}

EDGE_UNET_CONFIG: dict = {
    "sample_size": LATENT_SIZE,
    "in_channels": LATENT_CHANNELS,
    "out_channels": LATENT_CHANNELS,
    # Cross-attention only at 4x4 (the costly 64-token transformer at 8x8 is cut), still enough
    # to place an object on the 3x3 grid.
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [64, 128],
    "layers_per_block": 1,
    "cross_attention_dim": HIDDEN_SIZE,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "mid_block_type": None,
}

# SD-1.x's DDIM configuration.
SCHEDULER_CONFIG: dict = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}


def build_vae() -> AutoencoderKL:
    return AutoencoderKL(**VAE_CONFIG)


def build_unet(config: dict) -> UNet2DConditionModel:
    return UNet2DConditionModel(**config)


def build_scheduler() -> DDIMScheduler:
    return DDIMScheduler(**SCHEDULER_CONFIG)
