"""Conditioning as data: what a denoiser needs for a batch of samples besides latents and timesteps.

A `Conditioning` holds, per sample, the prompt embeddings, the negative (unconditional) embeddings
and the classifier-free guidance scale. It is carried to the denoiser with each call, so one UNet
call can serve samples of different requests (`Conditioning.concat`). `added` / `negative_added`
hold extra per-sample UNet inputs, `added_cond_kwargs`: an SDXL-class UNet (`addition_embed_type
"text_time"`) gets the second encoder's pooled embedding as `text_embeds` and the size/crop time ids
`(original height, width, crop top, left, target height, width)` as `time_ids`, both computed as
`StableDiffusionXLPipeline` does for its default size.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import torch
from diffusers import CogVideoXTransformer3DModel

from .conventions import NEGATIVE_PROMPT


@dataclass(frozen=True)
class Conditioning:
    prompt_embeds: torch.Tensor  # [batch, tokens, dim]
    negative_embeds: Optional[torch.Tensor]  # [batch, tokens, dim]; None when no sample is guided
    guidance: tuple[float, ...]  # classifier-free guidance scale of each sample
    added: Mapping[str, torch.Tensor] = field(default_factory=dict)  # [batch, ...] each
    negative_added: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        batch = self.prompt_embeds.shape[0]
        if self.negative_embeds is not None and set(self.negative_added) != set(self.added):
            raise ValueError(f"negative extra UNet inputs {sorted(self.negative_added)} do not match {sorted(self.added)}")
        if len(self.guidance) != batch:
            raise ValueError(f"{len(self.guidance)} guidance scales for {batch} samples")
        for scale in self.guidance:
            if not scale >= 0:
                raise ValueError(f"guidance_scale must be >= 0, got {scale!r}")
        if self.negative_embeds is not None and self.negative_embeds.shape != self.prompt_embeds.shape:
            raise ValueError(f"negative embeddings {tuple(self.negative_embeds.shape)} do not match the prompt "
                             f"embeddings {tuple(self.prompt_embeds.shape)}")

    @property
    def batch_size(self) -> int:
        return self.prompt_embeds.shape[0]

    def guided(self, unet) -> list[bool]:
        """Which samples get classifier-free guidance: scale > 1, as diffusers decides, and never for a
        UNet that takes the guidance as an embedding (time_cond_proj_dim)."""
        embeds_guidance = getattr(unet.config, "time_cond_proj_dim", None) is not None
        flags = [scale > 1.0 and not embeds_guidance for scale in self.guidance]
        if any(flags) and self.negative_embeds is None:
            raise ValueError("guidance_scale > 1 needs negative (unconditional) prompt embeddings")
        return flags

    @staticmethod
    def concat(parts: Sequence["Conditioning"]) -> "Conditioning":
        """One conditioning for the samples of several, in order (their embeddings must have one shape)."""
        if len(parts) == 1:
            return parts[0]
        negatives = None
        if any(p.negative_embeds is not None for p in parts):
            # An unguided sample's negative row is never used: zeros keep the tensor rectangular.
            negatives = torch.cat([p.negative_embeds if p.negative_embeds is not None
                                   else torch.zeros_like(p.prompt_embeds) for p in parts])
        keys = set(parts[0].added)
        if any(set(p.added) != keys for p in parts):
            raise ValueError("conditionings with different extra UNet inputs cannot share a batch")
        negative_added = {}
        if negatives is not None:  # zeros for the unguided samples here too
            negative_added = {k: torch.cat([p.negative_added[k] if p.negative_embeds is not None
                                            else torch.zeros_like(p.added[k]) for p in parts]) for k in keys}
        return Conditioning(
            prompt_embeds=torch.cat([p.prompt_embeds for p in parts]),
            negative_embeds=negatives,
            guidance=tuple(g for p in parts for g in p.guidance),
            added={k: torch.cat([p.added[k] for p in parts]) for k in keys},
            negative_added=negative_added,
        )


# A fast (Rust) tokenizer keeps its padding and truncation settings as shared state that every call
# sets: two threads encoding at once can get unpadded, ragged embeddings (seen under load: 14
# tokens instead of 32). Encoding takes milliseconds, so one lock for all pipelines costs nothing.
_ENCODING = threading.Lock()

# The negative prompt is the same for nearly every request (the services always send ""), so its
# embeddings are kept per pipeline and handed back to `encode_prompt` (`negative_prompt_embeds`),
# which then uses them exactly as if it had encoded them: half the text encoder's work per request.
# Keyed by the negative prompts as given (a batch of N is its own entry: batched encoding rounds
# differently) and the text encoder's placement; a few entries per pipeline, the first ones seen.
_NEGATIVE_EMBEDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_NEGATIVE_EMBEDS_PER_PIPE = 4


# As the pipelines' calls: no autograd graph (a diffusers folder's text encoders have trainable
# parameters, and a graph would keep their activations alive with the embeddings), and bit-identical
# embeddings.
@torch.no_grad()
def encode_conditioning(pipe, prompts: str | Sequence[str], guidance_scale: float,
                        negative_prompt: str = NEGATIVE_PROMPT) -> Conditioning:
    """Conditioning of one or more prompts through the pipeline's own `encode_prompt` (same tokenizer
    settings as diffusers), all with one guidance scale."""
    if not guidance_scale >= 0:
        raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale!r}")
    guided = guidance_scale > 1.0
    if isinstance(prompts, str):
        negatives: str | list[str] = negative_prompt
        batch = 1
    else:  # diffusers wants the negative prompts as a list of the same length
        prompts = list(prompts)
        negatives, batch = [negative_prompt] * len(prompts), len(prompts)
    model = denoising_model(pipe)
    if is_video_model(model):
        return _video_conditioning(pipe, prompts, guidance_scale, negatives, batch)
    if takes_time_ids(model):
        return _text_time_conditioning(pipe, prompts, guidance_scale, negatives, batch)
    # A pipeline moved to another device or precision encodes anew.
    device = pipeline_device(pipe)
    key = (negatives if isinstance(negatives, str) else tuple(negatives), str(device), pipe.text_encoder.dtype)
    with _ENCODING:
        known = _NEGATIVE_EMBEDS.setdefault(pipe, {})
        cached = known.get(key) if guided else None
        positive, negative = pipe.encode_prompt(prompts, device, 1, guided,
                                                negative_prompt=negatives if guided else None,
                                                negative_prompt_embeds=cached)
        if guided and cached is None and len(known) < _NEGATIVE_EMBEDS_PER_PIPE:
            known[key] = negative.clone()  # the caller's copy may be changed; the kept one never is
    return Conditioning(positive, negative if guided else None, (float(guidance_scale),) * batch)


def denoising_model(pipe):
    """A pipeline's denoising network: the UNet of the image families, the transformer of CogVideoX."""
    unet = getattr(pipe, "unet", None)
    return unet if unet is not None else pipe.transformer


def pipeline_device(pipe) -> torch.device:
    """Where a pipeline's latents and embeddings belong: its denoising network's device. Diffusers'
    `pipe.device` walks every module of every component (its group-offloading check): about 1.4 ms a
    call with the toy-world pair, three calls per request on the serving path."""
    return next(denoising_model(pipe).parameters()).device


def is_video_model(model) -> bool:
    """A CogVideoX-class transformer: 5-D latents [batch, frames, channels, height, width]."""
    return isinstance(model, CogVideoXTransformer3DModel)


def takes_time_ids(unet) -> bool:
    """An SDXL-class UNet: it needs `text_embeds` and `time_ids` besides the token states."""
    return getattr(unet.config, "addition_embed_type", None) == "text_time"


def default_image_size(pipe) -> tuple[int, int]:
    """(height, width) in pixels a pipeline generates by default: the UNet's sample size times the VAE's factor."""
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    return side, side


def _text_time_conditioning(pipe, prompts, guidance_scale: float, negatives, batch: int) -> Conditioning:
    """StableDiffusionXLPipeline's conditioning at its default size, no crop. An empty negative prompt is
    what the pipeline does without one: zero embeddings when the folder says force_zeros_for_empty_prompt."""
    guided = guidance_scale > 1.0
    empty = negatives == NEGATIVE_PROMPT or (isinstance(negatives, list) and not any(negatives))
    device = pipeline_device(pipe)
    with _ENCODING:
        positive, negative, pooled, negative_pooled = pipe.encode_prompt(
            prompts, device=device, num_images_per_prompt=1, do_classifier_free_guidance=guided,
            negative_prompt=None if empty or not guided else negatives)
    size = default_image_size(pipe)
    time_ids = pipe._get_add_time_ids(size, (0, 0), size, dtype=positive.dtype,
                                      text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim)
    time_ids = time_ids.to(device).repeat(batch, 1)
    added = {"text_embeds": pooled, "time_ids": time_ids}
    negative_added = {"text_embeds": negative_pooled, "time_ids": time_ids} if guided else {}
    return Conditioning(positive, negative if guided else None, (float(guidance_scale),) * batch, added, negative_added)


def _video_conditioning(pipe, prompts, guidance_scale: float, negatives, batch: int) -> Conditioning:
    """CogVideoXPipeline's conditioning: T5 token states padded to the transformer's text length (which
    a transformer with sin-cos position embeddings requires)."""
    guided = guidance_scale > 1.0
    with _ENCODING:
        positive, negative = pipe.encode_prompt(
            prompts, negative_prompt=negatives if guided else None, do_classifier_free_guidance=guided,
            max_sequence_length=pipe.transformer.config.max_text_seq_length, device=pipeline_device(pipe))
    return Conditioning(positive, negative if guided else None, (float(guidance_scale),) * batch)


def added_conditioning_id(pipe) -> str:
    """What the extra UNet inputs encode, for comparing two models' conditioning: "none" for SD-1.x and
    CogVideoX."""
    if is_video_model(denoising_model(pipe)) or not takes_time_ids(pipe.unet):
        return "none"
    height, width = default_image_size(pipe)
    return (f"text_time: text_embeds {pipe.text_encoder_2.config.projection_dim}, time_ids original {height}x{width} "
            f"crop 0,0 target {height}x{width}")
