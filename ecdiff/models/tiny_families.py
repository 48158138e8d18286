"""Tiny RANDOM cloud/edge pairs of the real model families, written as ordinary diffusers folders.

Each family's pair is built from the real diffusers and transformers classes at toy widths
(64x64 images, 8x8x4 latents), with the structure of the paper's pairs, and saved with
`save_pretrained` (model_index.json and one folder per component), so it loads, serves and
benchmarks exactly as a downloaded checkout would:

- `sd1`: SD-1.x. CLIPTextModel + CLIPTokenizer (`ecdiff.models.tiny_clip`), a VAE with SD's
  scaling factor 0.18215, SD-1.x's DDIM configuration, and a UNet with SD-1.x's block structure
  (three cross-attention stages and a plain one, two layers per block, a mid block). The edge is
  BK-SDM-Tiny-style: the same text encoder, VAE and scheduler, and a UNet with fewer blocks (one
  layer per block, no mid block, the innermost stage removed).
- `sdxl`: SDXL-base. `StableDiffusionXLPipeline` with CLIPTextModel and CLIPTextModelWithProjection
  (pooled embeddings), a VAE with SDXL's scaling factor 0.13025, SDXL's Euler scheduler
  configuration, and a UNet with SDXL's structure (a plain stage then two cross-attention stages
  with more transformer layers, linear projections, `text_time` added conditioning). The edge is
  SSD-1B-style: the same encoders, VAE and scheduler, and fewer layers and transformer blocks.

The weights are random: the pictures are noise. They exercise every code path a real folder
takes (tokenizers, both encoders, added conditioning, schedulers), not picture quality.

    python -m ecdiff.models.tiny_families --out out/tiny-families   # writes {sd1,sdxl}-{cloud,edge}/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel

from .sd_pipeline_class import StableDiffusionPipeline, StableDiffusionXLPipeline
from .tiny_clip import tiny_clip_text_model, tiny_clip_text_model_with_projection, tiny_clip_tokenizer
from ..schedules import sd_ddim_scheduler

FAMILIES = ("sd1", "sdxl")
ROLES = ("cloud", "edge")
DEFAULT_OUT = Path("out/tiny-families")
MAX_TOKENS = 16
TEXT_DIM = 32
SD_SCALING_FACTOR = 0.18215
SDXL_SCALING_FACTOR = 0.13025
# SDXL-base's scheduler_config.json (EulerDiscreteScheduler), without its bookkeeping keys.
SDXL_EULER_CONFIG = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         prediction_type="epsilon", interpolation_type="linear", use_karras_sigmas=False,
                         steps_offset=1, timestep_spacing="leading")
_TIME_EMBED_DIM = 8  # SDXL: 256


def folder_name(family: str, role: str) -> str:
    return f"{family}-{role}"


def _vae(scaling_factor: float) -> AutoencoderKL:
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 16, 16, 16),
                         layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=64,
                         scaling_factor=scaling_factor, force_upcast=False).eval()


def _sd1_unet(channels: tuple[int, ...], layers: int, mid_block: bool) -> UNet2DConditionModel:
    depth = len(channels)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=layers, block_out_channels=channels,
        down_block_types=("CrossAttnDownBlock2D",) * (depth - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (depth - 1),
        mid_block_type="UNetMidBlock2DCrossAttn" if mid_block else None,
        cross_attention_dim=TEXT_DIM, attention_head_dim=8, norm_num_groups=8).eval()


def _sdxl_unet(layers: int, transformer_layers: tuple[int, ...]) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=layers, block_out_channels=(16, 32, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=transformer_layers, attention_head_dim=(2, 4, 4), use_linear_projection=True,
        cross_attention_dim=2 * TEXT_DIM,  # both encoders' token states, concatenated
        addition_embed_type="text_time", addition_time_embed_dim=_TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=6 * _TIME_EMBED_DIM + TEXT_DIM,  # 6 time ids + pooled text
        norm_num_groups=8).eval()


def tiny_family(family: str, seed: int = 0) -> dict[str, object]:
    """{role: pipeline} of one family, sharing text encoder(s), tokenizer(s), VAE and scheduler config;
    deterministic in `seed`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    torch.manual_seed(seed)
    tokenizer = tiny_clip_tokenizer(MAX_TOKENS)
    text_encoder = tiny_clip_text_model(tokenizer, TEXT_DIM)
    if family == "sd1":
        vae = _vae(SD_SCALING_FACTOR)
        unets = {"cloud": _sd1_unet((16, 16, 32, 32), layers=2, mid_block=True),
                 "edge": _sd1_unet((16, 16, 32), layers=1, mid_block=False)}
        return {role: StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                              scheduler=sd_ddim_scheduler(), safety_checker=None,
                                              feature_extractor=None, requires_safety_checker=False)
                for role, unet in unets.items()}
    text_encoder_2 = tiny_clip_text_model_with_projection(tokenizer, TEXT_DIM, TEXT_DIM)
    vae = _vae(SDXL_SCALING_FACTOR)
    unets = {"cloud": _sdxl_unet(layers=2, transformer_layers=(1, 2, 2)),
             "edge": _sdxl_unet(layers=1, transformer_layers=(1, 1, 1))}
    return {role: StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                            tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet,
                                            scheduler=EulerDiscreteScheduler(**SDXL_EULER_CONFIG))
            for role, unet in unets.items()}


def write_family(family: str, out: Path, seed: int = 0) -> dict[str, Path]:
    """Save one family's pair under `out` as {family}-cloud/ and {family}-edge/; {role: folder}."""
    folders = {}
    for role, pipe in tiny_family(family, seed).items():
        folders[role] = Path(out) / folder_name(family, role)
        pipe.save_pretrained(folders[role])
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecdiff.models.tiny_families", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"parent folder (default: {DEFAULT_OUT})")
    parser.add_argument("--family", choices=FAMILIES, action="append", help="only this family (repeatable; default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for family in args.family or FAMILIES:
        for role, folder in write_family(family, args.out, args.seed).items():
            print(f"{family} {role}: {folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
