"""Denoiser adapters: a UNet plus classifier-free guidance as `eps = f(latents, t)`.

Guidance is computed exactly as diffusers' StableDiffusionPipeline does: one batched UNet call
on [negative, positive] embeddings, then eps = uncond + w * (cond - uncond), guidance only when
w > 1 (and the UNet has no guidance-embedding input).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .conventions import NEGATIVE_PROMPT


@dataclass(frozen=True)
class PromptEmbeddings:
    positive: torch.Tensor  # [batch, tokens, dim]
    negative: torch.Tensor | None  # None when guidance is off


class GuidedUNetDenoiser:
    """Callable `eps = denoiser(latents, t)` over a diffusers UNet2DConditionModel."""

    def __init__(self, unet, embeddings: PromptEmbeddings, guidance_scale: float) -> None:
        if not guidance_scale >= 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale!r}")
        self.unet = unet
        self.guidance_scale = float(guidance_scale)
        self.do_guidance = guidance_scale > 1.0 and unet.config.time_cond_proj_dim is None
        if self.do_guidance and embeddings.negative is None:
            raise ValueError("guidance_scale > 1 needs negative (unconditional) prompt embeddings")
        self.embeddings = embeddings
        self._batched = (
            torch.cat([embeddings.negative, embeddings.positive]) if self.do_guidance else embeddings.positive
        )

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        model_in = torch.cat([latents] * 2) if self.do_guidance else latents
        out = self.unet(model_in, timestep, encoder_hidden_states=self._batched, return_dict=False)[0]
        if not self.do_guidance:
            return out
        uncond, cond = out.chunk(2)
        return uncond + self.guidance_scale * (cond - uncond)


def encode_prompt(pipe, prompt: str | list[str], guidance_scale: float,
                  negative_prompt: str = NEGATIVE_PROMPT) -> PromptEmbeddings:
    """Prompt embeddings through the pipeline's own `encode_prompt` (same tokenizer settings)."""
    do_guidance = guidance_scale > 1.0
    positive, negative = pipe.encode_prompt(
        prompt, pipe.device, 1, do_guidance, negative_prompt=negative_prompt if do_guidance else None
    )
    return PromptEmbeddings(positive=positive, negative=negative if do_guidance else None)


def pipeline_denoiser(pipe, prompt: str | list[str], guidance_scale: float,
                      negative_prompt: str = NEGATIVE_PROMPT) -> GuidedUNetDenoiser:
    return GuidedUNetDenoiser(pipe.unet, encode_prompt(pipe, prompt, guidance_scale, negative_prompt), guidance_scale)


def latent_shape(pipe, batch: int = 1, height: int | None = None, width: int | None = None) -> tuple[int, int, int, int]:
    """[batch, C, H/f, W/f] for a pipeline, default size from the UNet's sample size."""
    factor = pipe.vae_scale_factor
    height = height or pipe.unet.config.sample_size * factor
    width = width or pipe.unet.config.sample_size * factor
    return (batch, pipe.unet.config.in_channels, height // factor, width // factor)
