"""What makes a cloud's handoff usable on an edge: scheduler, latent shape, text encoder.

Both sides compute a `ModelIdentity` once at start-up; the edge compares the handoff's fields
with its own and refuses a mismatch (FAILED_PRECONDITION at the transport layer).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch

from ecdiff.denoiser import latent_shape
from ecdiff.loading import LoadedModel
from ecdiff.schedules import fresh_scheduler


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
    guidance: float
    random_weights: bool


@dataclass(frozen=True)
class HandoffCompat:
    """The handoff fields that must match the local model."""

    scheduler_class: str
    scheduler_sha256: str
    latent_shape: tuple[int, ...]
    text_encoder_sha256: str
    timesteps: tuple[int, ...]
    num_steps: int


def scheduler_config_json(scheduler) -> str:
    # Keys starting with "_" are bookkeeping (diffusers version, which values were defaults).
    config = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    return json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def text_encoder_sha256(pipe) -> str:
    """Hash of the text encoder's weights and the tokenizer's vocabulary and length.

    Floating-point weights are hashed as their float16 values, so a cloud running in float16 on a GPU
    and an edge in float32 on a CPU agree: loading the same stored weights in either precision rounds
    them to the same float16 values. bfloat16 rounds differently and so pairs only with bfloat16."""
    digest = hashlib.sha256()
    for name, tensor in sorted(pipe.text_encoder.state_dict().items()):
        canonical = tensor.detach().to("cpu", torch.float16 if tensor.is_floating_point() else tensor.dtype)
        digest.update(f"{name}:{canonical.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(canonical.contiguous().view(torch.uint8).numpy().tobytes())
    tokenizer = pipe.tokenizer
    digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(str(tokenizer.model_max_length).encode())
    return digest.hexdigest()


def identity_of(model: LoadedModel) -> ModelIdentity:
    pipe = model.pipe
    config_json = scheduler_config_json(pipe.scheduler)
    encoder = pipe.text_encoder
    return ModelIdentity(
        model_name=model.name,
        description=model.description,
        latent_shape=latent_shape(pipe),
        scheduler_class=type(pipe.scheduler).__name__,
        scheduler_config_json=config_json,
        scheduler_sha256=_sha256(config_json),
        text_encoder_name=f"{type(encoder).__name__}:{encoder.config.name_or_path or 'unnamed'}",
        text_encoder_sha256=text_encoder_sha256(pipe),
        guidance=model.guidance,
        random_weights=model.random_weights,
    )


def timesteps_for(model: LoadedModel, num_steps: int) -> tuple[int, ...]:
    scheduler = fresh_scheduler(model.pipe)
    scheduler.set_timesteps(num_steps)
    return tuple(int(t) for t in scheduler.timesteps)


def incompatibility(handoff: HandoffCompat, local: ModelIdentity, local_timesteps: tuple[int, ...]) -> str | None:
    """Why the handoff cannot be continued here, or None."""
    if handoff.scheduler_class != local.scheduler_class or handoff.scheduler_sha256 != local.scheduler_sha256:
        return (f"scheduler mismatch: handoff {handoff.scheduler_class} {handoff.scheduler_sha256[:12]}, "
                f"edge {local.scheduler_class} {local.scheduler_sha256[:12]}")
    if handoff.latent_shape != local.latent_shape:
        return f"latent shape mismatch: handoff {list(handoff.latent_shape)}, edge {list(local.latent_shape)}"
    if handoff.text_encoder_sha256 != local.text_encoder_sha256:
        return (f"text encoder mismatch: handoff {handoff.text_encoder_sha256[:12]}, "
                f"edge {local.text_encoder_sha256[:12]} ({local.text_encoder_name}); other weights, or a "
                "bfloat16 side paired with a float16/float32 one (bfloat16 pairs only with bfloat16)")
    if handoff.timesteps != local_timesteps:
        return f"timesteps mismatch for {handoff.num_steps} steps: the handoff's schedule differs from the edge's"
    return None
