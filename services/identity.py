"""What makes a cloud's handoff usable on an edge: scheduler, latent shape, text encoder(s), added
conditioning, VAE.

The edge's UNet may differ from the cloud's (that is the point), but it continues the cloud's latent
in the same latent space (VAE), on the same schedule, from the same prompt conditioning, which it
recomputes with its own encoders. Both sides compute a `ModelIdentity` once at start-up; the edge
compares the handoff's fields with its own and refuses a mismatch, naming every field that differs
(FAILED_PRECONDITION at the transport layer).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Optional

import torch

from ecdiff.conditioning import added_conditioning_id
from ecdiff.denoiser import latent_shape
from ecdiff.loading import LoadedModel
from ecdiff.schedules import fresh_scheduler, handoff_unsupported_reason


@dataclass(frozen=True)
class ModelIdentity:
    model_name: str
    description: str
    latent_shape: tuple[int, ...]
    scheduler_class: str
    scheduler_config_json: str
    scheduler_sha256: str
    text_encoder_name: str
    text_encoder_sha256: str
    added_conditioning: str
    vae_sha256: str
    # Why this model's scheduler cannot hand a run over between processes, or None: part of the
    # identity so that a front end without the model (Ray Serve) can refuse such plans too.
    handoff_unsupported: Optional[str]
    guidance: float
    random_weights: bool


@dataclass(frozen=True)
class HandoffCompat:
    """The handoff fields that must match the local model."""

    scheduler_class: str
    scheduler_sha256: str
    latent_shape: tuple[int, ...]
    text_encoder_sha256: str
    added_conditioning: str
    vae_sha256: str
    timesteps: tuple[int, ...]
    num_steps: int


def scheduler_config_json(scheduler) -> str:
    # Keys starting with "_" are bookkeeping (diffusers version, which values were defaults).
    config = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    return json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# (encoder, tokenizer) attribute pairs of the families' pipelines; SDXL has both.
_TEXT_ENCODERS = (("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2"))


def _text_encoders(pipe) -> list[tuple[object, object]]:
    return [(getattr(pipe, e), getattr(pipe, t)) for e, t in _TEXT_ENCODERS if getattr(pipe, e, None) is not None]


def _update_with_weights(digest, module) -> None:
    """Floating-point weights are hashed as their float16 values, so a cloud running in float16 on a GPU
    and an edge in float32 on a CPU agree: loading the same stored weights in either precision rounds
    them to the same float16 values. bfloat16 rounds differently and so pairs only with bfloat16."""
    for name, tensor in sorted(module.state_dict().items()):
        canonical = tensor.detach().to("cpu", torch.float16 if tensor.is_floating_point() else tensor.dtype)
        digest.update(f"{name}:{canonical.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(canonical.contiguous().view(torch.uint8).numpy().tobytes())


def text_encoder_sha256(pipe) -> str:
    """Hash of every text encoder's weights and its tokenizer's vocabulary and length."""
    digest = hashlib.sha256()
    for encoder, tokenizer in _text_encoders(pipe):
        _update_with_weights(digest, encoder)
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
        digest.update(str(tokenizer.model_max_length).encode())
    return digest.hexdigest()


# The VAE configuration that maps its latents to the denoiser's latent space: with the same weights,
# another scaling factor (CogVideoX-5B's 0.7 against the 2B's 1.15) is another latent space.
_LATENT_SPACE_KEYS = ("scaling_factor", "shift_factor", "latents_mean", "latents_std")


def vae_sha256(pipe) -> str:
    """Hash of the VAE's weights and of the configuration that scales its latents."""
    digest = hashlib.sha256()
    _update_with_weights(digest, pipe.vae)
    space = {key: pipe.vae.config.get(key) for key in _LATENT_SPACE_KEYS if pipe.vae.config.get(key) is not None}
    digest.update(json.dumps(space, sort_keys=True).encode())
    return digest.hexdigest()


def identity_of(model: LoadedModel) -> ModelIdentity:
    pipe = model.pipe
    config_json = scheduler_config_json(pipe.scheduler)
    return ModelIdentity(
        model_name=model.name,
        description=model.description,
        latent_shape=latent_shape(pipe),
        scheduler_class=type(pipe.scheduler).__name__,
        scheduler_config_json=config_json,
        scheduler_sha256=_sha256(config_json),
        text_encoder_name="+".join(f"{type(encoder).__name__}:{encoder.config.name_or_path or 'unnamed'}"
                                   for encoder, _ in _text_encoders(pipe)),
        text_encoder_sha256=text_encoder_sha256(pipe),
        added_conditioning=added_conditioning_id(pipe),
        vae_sha256=vae_sha256(pipe),
        handoff_unsupported=handoff_unsupported_reason(pipe.scheduler),
        guidance=model.guidance,
        random_weights=model.random_weights,
    )


def timesteps_for(model: LoadedModel, num_steps: int) -> tuple[int, ...]:
    scheduler = fresh_scheduler(model.pipe)
    scheduler.set_timesteps(num_steps)
    return tuple(int(t) for t in scheduler.timesteps)


def incompatibility(handoff: HandoffCompat, local: ModelIdentity, local_timesteps: tuple[int, ...]) -> str | None:
    """Why the handoff cannot be continued here (every difference, "; "-joined), or None."""
    reasons = []
    if handoff.scheduler_class != local.scheduler_class or handoff.scheduler_sha256 != local.scheduler_sha256:
        reasons.append(f"scheduler mismatch: handoff {handoff.scheduler_class} {handoff.scheduler_sha256[:12]}, "
                       f"edge {local.scheduler_class} {local.scheduler_sha256[:12]}")
    if handoff.latent_shape != local.latent_shape:
        reasons.append(f"latent shape mismatch: handoff {list(handoff.latent_shape)}, edge {list(local.latent_shape)}")
    if handoff.text_encoder_sha256 != local.text_encoder_sha256:
        reasons.append(f"text encoder mismatch: handoff {handoff.text_encoder_sha256[:12]}, "
                       f"edge {local.text_encoder_sha256[:12]} ({local.text_encoder_name}); other weights, or a "
                       "bfloat16 side paired with a float16/float32 one (bfloat16 pairs only with bfloat16)")
    if handoff.added_conditioning != local.added_conditioning:
        reasons.append(f"added conditioning mismatch: handoff {handoff.added_conditioning!r}, "
                       f"edge {local.added_conditioning!r}")
    if handoff.vae_sha256 != local.vae_sha256:
        reasons.append(f"VAE mismatch: handoff {handoff.vae_sha256[:12]}, edge {local.vae_sha256[:12]} (other "
                       "weights or latent scaling, or bfloat16 on one side only)")
    if not reasons and handoff.timesteps != local_timesteps:  # a different scheduler explains different timesteps
        reasons.append(f"timesteps mismatch for {handoff.num_steps} steps: the handoff's schedule differs from the edge's")
    return "; ".join(reasons) or None


def handoff_refusal(identity: ModelIdentity, strategy_name: str, switch_step: int, num_steps: int) -> str | None:
    """Why this model cannot run a plan that hands over between processes at `switch_step`, or None.
    Cloud-only (handoff after the last step) and edge-only (no cloud phase) never need it."""
    if not 0 < switch_step < num_steps:
        return None
    reason = identity.handoff_unsupported
    if reason is None:
        return None
    return (f"strategy {strategy_name!r} hands over at step {switch_step} of {num_steps}, but {reason}; "
            "this model serves cloud-only and edge-only runs, or serve its folder with a DDIM or Euler scheduler")
