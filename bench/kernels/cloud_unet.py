"""The cloud UNet of the default pair, or a stand-in of its size, for the cost of one call.

Random weights: the cost of a forward pass does not depend on the weight values.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel

from .timing import Timing, time_call

DEFAULT_CONFIG = Path("models/toyworld-cloud/unet/config.json")
TEXT_TOKENS = 32
# ~18 M parameters on 8x8x4 latents with 384-dim cross-attention: the default pair's size
STAND_IN = dict(sample_size=8, in_channels=4, out_channels=4,
                down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                block_out_channels=[96, 192, 256], layers_per_block=1, cross_attention_dim=384,
                attention_head_dim=8, norm_num_groups=32)


def load_unet(config_path: Path) -> tuple[UNet2DConditionModel, str]:
    """(model, description): the shipped cloud UNet's architecture if its config exists, else the stand-in."""
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        return UNet2DConditionModel.from_config(config), f"cloud UNet from {config_path} (random weights)"
    return UNet2DConditionModel(**STAND_IN), f"stand-in UNet ({config_path} not found)"


def time_unet_call(unet: UNet2DConditionModel, device: str, repeats: int, clock: str) -> tuple[Timing, tuple[int, ...]]:
    """Time of one forward pass at batch 1 (no guidance batch); returns it and the latent shape."""
    unet = unet.to(device).eval()
    c = unet.config
    size = c.sample_size if isinstance(c.sample_size, int) else c.sample_size[0]
    latents = torch.randn(1, c.in_channels, size, size, device=device)
    text = torch.randn(1, TEXT_TOKENS, c.cross_attention_dim, device=device)
    timestep = torch.tensor([500], device=device)
    with torch.inference_mode():
        timing = time_call(lambda: unet(latents, timestep, encoder_hidden_states=text), repeats, warmup=2,
                           cuda=device == "cuda", clock=clock)
    return timing, tuple(latents.shape[1:])
