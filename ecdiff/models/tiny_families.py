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
- `cogvideox`: CogVideoX-class video (32x32 pixels, 9 frames, [1, 3, 4, 4, 4] latents
  [batch, frames, channels, height, width]). `CogVideoXPipeline` with T5EncoderModel + T5Tokenizer
  (`ecdiff.models.tiny_t5`), the 3-D VAE (AutoencoderKLCogVideoX, 4x temporal and 8x spatial
  compression, CogVideoX-5B's scaling factor 0.7), CogVideoX-5B's CogVideoXDDIMScheduler
  configuration (v-prediction, SNR shift, zero terminal SNR, trailing spacing), and a
  CogVideoX-5B-style CogVideoXTransformer3DModel (more layers and heads, 3-D rotary position
  embeddings). The edge is CogVideoX-2B-style: fewer layers and heads, sin-cos position embeddings;
  the same encoder, VAE and scheduler.

The weights are random: the pictures are noise. They exercise every code path a real folder
takes (tokenizers, both encoders, added conditioning, schedulers), not picture quality.

    python -m ecdiff.models.tiny_families --out out/tiny-families   # writes {sd1,sdxl,cogvideox}-{cloud,edge}/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from diffusers import (AutoencoderKL, AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXTransformer3DModel,
                       EulerDiscreteScheduler, UNet2DConditionModel)

from .sd_pipeline_class import CogVideoXPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from .tiny_clip import tiny_clip_text_model, tiny_clip_text_model_with_projection, tiny_clip_tokenizer
from .tiny_t5 import tiny_t5_encoder, tiny_t5_tokenizer
from ..schedules import sd_ddim_scheduler

FAMILIES = ("sd1", "sdxl", "cogvideox")
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
# CogVideoX-5B's scheduler_config.json (2B's differs only in snr_shift_scale=3.0), without bookkeeping keys.
COGVIDEOX_DDIM_CONFIG = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                             beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=True, steps_offset=0,
                             prediction_type="v_prediction", rescale_betas_zero_snr=True, snr_shift_scale=1.0,
                             timestep_spacing="trailing")
COGVIDEOX_SCALING_FACTOR = 0.7  # CogVideoX-5B's VAE (2B's: 1.15258426)
VIDEO_FRAMES = 9  # pixels frames: (9 - 1) / 4 + 1 = 3 latent frames
VIDEO_LATENT_SIDE = 4  # 32x32 pixels


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


def _video_vae() -> AutoencoderKLCogVideoX:
    return AutoencoderKLCogVideoX(block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1,
                                  norm_num_groups=4, temporal_compression_ratio=4, sample_height=32, sample_width=32,
                                  scaling_factor=COGVIDEOX_SCALING_FACTOR, force_upcast=False).eval()


def _video_transformer(layers: int, heads: int, rotary: bool) -> CogVideoXTransformer3DModel:
    return CogVideoXTransformer3DModel(
        num_attention_heads=heads, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=16,
        text_embed_dim=TEXT_DIM, num_layers=layers, sample_width=VIDEO_LATENT_SIDE, sample_height=VIDEO_LATENT_SIDE,
        sample_frames=VIDEO_FRAMES, patch_size=2, temporal_compression_ratio=4, max_text_seq_length=MAX_TOKENS,
        use_rotary_positional_embeddings=rotary).eval()


def _video_family() -> dict[str, object]:
    tokenizer = tiny_t5_tokenizer(MAX_TOKENS)
    text_encoder, vae = tiny_t5_encoder(tokenizer, TEXT_DIM), _video_vae()
    transformers = {"cloud": _video_transformer(layers=3, heads=4, rotary=True),  # CogVideoX-5B: 42 layers, 48 heads
                    "edge": _video_transformer(layers=2, heads=2, rotary=False)}  # CogVideoX-2B: 30 layers, 30 heads
    return {role: CogVideoXPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                                    scheduler=CogVideoXDDIMScheduler(**COGVIDEOX_DDIM_CONFIG))
            for role, transformer in transformers.items()}


def tiny_family(family: str, seed: int = 0) -> dict[str, object]:
    """{role: pipeline} of one family, sharing text encoder(s), tokenizer(s), VAE and scheduler config;
    deterministic in `seed`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    torch.manual_seed(seed)
    if family == "cogvideox":
        return _video_family()
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
