"""The denoiser: a UNet plus classifier-free guidance over a batch of samples.

`UNetDenoiser(unet)(latents, timesteps, conditioning)` takes a batch of latents, a per-sample
timestep tensor (diffusers' UNet2DConditionModel takes a 1-D timestep of batch size) and per-sample
conditioning and guidance (`ecdiff.conditioning`), and returns each sample's guided noise. Guidance
is computed as diffusers' StableDiffusionPipeline does it: one UNet call on the unconditional rows
of the guided samples followed by every sample's conditional row, then
eps = uncond + w * (cond - uncond) for each guided sample; a batch of one is exactly the pipeline's
call. `bind` fixes the conditioning and gives the `eps = f(latents, t)` callable `sample` drives.

`TransformerDenoiser` is its sibling for CogVideoX's `CogVideoXTransformer3DModel` (latents
[batch, frames, channels, height, width]): the same guidance, the transformer's own call, and the
3-D rotary position embeddings CogVideoXPipeline computes for the latent size when the transformer
uses them. `denoiser_for(model)` picks the class by the model's type, so the cloud engine batches
video requests like image requests (only calls of one latent shape share a batch).

A UNet in another precision than the latents (float16 on a GPU) gets its input cast to its dtype and
gives its output back in the latents' dtype before guidance is combined, so the loop's state stays
float32 (`ecdiff.placement`); with equal dtypes both casts are no-ops.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import torch
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

from .conditioning import Conditioning, denoising_model, encode_conditioning, is_video_model
from .conventions import NEGATIVE_PROMPT


class UNetDenoiser:
    def __init__(self, unet) -> None:
        self.unet = unet

    @functools.cached_property
    def unet_dtype(self) -> Optional[torch.dtype]:
        """None: a stand-in model that takes any dtype. Read at the first call: diffusers' `dtype` walks
        every module (about 1 ms), and the denoiser of a request the cloud engine serves is never
        called (the engine batches with its own)."""
        return getattr(self.unet, "dtype", None)

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor, timesteps: torch.Tensor, conditioning: Conditioning) -> torch.Tensor:
        batch = latents.shape[0]
        if conditioning.batch_size != batch:
            raise ValueError(f"conditioning for {conditioning.batch_size} samples, latents for {batch}")
        timesteps = torch.as_tensor(timesteps, device=latents.device).reshape(-1).expand(batch)
        guided = conditioning.guided(self.unet)
        if not any(guided):
            return self._model(latents, timesteps, conditioning.prompt_embeds, conditioning.added)
        rows = [i for i, g in enumerate(guided) if g]
        if len(rows) == batch:
            uncond_latents, uncond_t = latents, timesteps
            negatives, negative_added = conditioning.negative_embeds, conditioning.negative_added
        else:
            uncond_latents, uncond_t = latents[rows], timesteps[rows]
            negatives = conditioning.negative_embeds[rows]
            negative_added = {k: v[rows] for k, v in conditioning.negative_added.items()}
        out = self._model(
            torch.cat([uncond_latents, latents]), torch.cat([uncond_t, timesteps]),
            torch.cat([negatives, conditioning.prompt_embeds]),
            {k: torch.cat([negative_added[k], v]) for k, v in conditioning.added.items()})
        uncond, cond = out[: len(rows)], out[len(rows):]
        scales = [conditioning.guidance[i] for i in rows]
        if len(rows) == batch and len(set(scales)) == 1:
            return uncond + scales[0] * (cond - uncond)
        eps = cond.clone()
        w = torch.tensor(scales, dtype=cond.dtype, device=cond.device).view(-1, *([1] * (cond.dim() - 1)))
        eps[rows] = uncond + w * (cond[rows] - uncond)
        return eps

    def _model(self, latents, timesteps, states, added) -> torch.Tensor:
        kwargs = {"added_cond_kwargs": dict(added)} if added else {}
        model_input = latents if self.unet_dtype is None else latents.to(self.unet_dtype)
        out = self.unet(model_input, timesteps, encoder_hidden_states=states, return_dict=False, **kwargs)[0]
        return out.to(latents.dtype)


class TransformerDenoiser(UNetDenoiser):
    """CogVideoX's transformer with classifier-free guidance as CogVideoXPipeline computes it (its default,
    static guidance: `use_dynamic_cfg=False`)."""

    def __init__(self, transformer) -> None:
        if transformer.config.patch_size_t is not None:
            raise ValueError("CogVideoX 1.5 transformers (patch_size_t) are not supported")
        super().__init__(transformer)
        self._rotary: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _model(self, latents, timesteps, states, added) -> torch.Tensor:
        model_input = latents if self.unet_dtype is None else latents.to(self.unet_dtype)
        out = self.unet(hidden_states=model_input, encoder_hidden_states=states, timestep=timesteps,
                        image_rotary_emb=self.rotary_embeddings(latents), return_dict=False)[0]
        return out.to(latents.dtype)

    def rotary_embeddings(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """CogVideoXPipeline's `_prepare_rotary_positional_embeddings` for this latent size (computed once
        per size), or None when the transformer has none (CogVideoX-2B: sin-cos position embeddings)."""
        config = self.unet.config
        if not config.use_rotary_positional_embeddings:
            return None
        _, frames, _, height, width = latents.shape
        key = (frames, height, width, latents.device)
        if key not in self._rotary:
            p = config.patch_size
            grid = (height // p, width // p)
            crops = get_resize_crop_region_for_grid(grid, config.sample_width // p, config.sample_height // p)
            self._rotary[key] = get_3d_rotary_pos_embed(embed_dim=config.attention_head_dim, crops_coords=crops,
                                                        grid_size=grid, temporal_size=frames, device=latents.device)
        return self._rotary[key]


def denoiser_for(model) -> UNetDenoiser:
    """The denoiser class of a denoising network: `TransformerDenoiser` for CogVideoX, else `UNetDenoiser`."""
    return TransformerDenoiser(model) if is_video_model(model) else UNetDenoiser(model)


@dataclass(frozen=True)
class BoundDenoiser:
    """A denoiser with its conditioning fixed: `eps = f(latents, t)` for one request's samples."""

    denoiser: UNetDenoiser
    conditioning: Conditioning

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        return self.denoiser(latents, timestep, self.conditioning)


def pipeline_denoiser(pipe, prompt: str | list[str], guidance_scale: float,
                      negative_prompt: str = NEGATIVE_PROMPT) -> BoundDenoiser:
    """`eps = f(latents, t)` for prompt(s) on a diffusers pipeline of any family."""
    return BoundDenoiser(denoiser_for(denoising_model(pipe)),
                         encode_conditioning(pipe, prompt, guidance_scale, negative_prompt))


def latent_shape(pipe, batch: int = 1, height: int | None = None, width: int | None = None) -> tuple[int, ...]:
    """[batch, C, H/f, W/f] for a pipeline, default size from the UNet's sample size; for CogVideoX
    [batch, F, C, H, W] at its transformer's default size and frame count, as CogVideoXPipeline draws them."""
    model = denoising_model(pipe)
    if is_video_model(model):
        config, spatial = model.config, pipe.vae_scale_factor_spatial
        frames = (config.sample_frames - 1) // pipe.vae_scale_factor_temporal + 1
        height = (height or config.sample_height * spatial) // spatial
        width = (width or config.sample_width * spatial) // spatial
        return (batch, frames, config.in_channels, height, width)
    factor = pipe.vae_scale_factor
    height = height or pipe.unet.config.sample_size * factor
    width = width or pipe.unet.config.sample_size * factor
    return (batch, pipe.unet.config.in_channels, height // factor, width // factor)
