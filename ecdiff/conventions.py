"""The generation convention, defined once for the library, the services and the benchmarks.

- Initial latents: `torch.randn(latent_shape, generator=torch.Generator("cpu").manual_seed(seed))
  * scheduler.init_noise_sigma`, drawn in float32 on the CPU and then moved, which is what
  diffusers' StableDiffusionPipeline does when handed that generator.
- Negative prompt: empty (""), so classifier-free guidance uses the empty-prompt embedding (on SDXL,
  what its pipeline does without a negative prompt: zeros when the folder says
  force_zeros_for_empty_prompt, `ecdiff.conditioning`).
- 50 denoising steps by default. The guidance scale belongs to a model pair
  (`ecdiff.models.DEFAULT_GUIDANCE` for the embedded one).
- Request limits every entry point shares: seeds are unsigned 64-bit integers (what
  `torch.Generator.manual_seed` takes), prompts are non-empty and at most MAX_PROMPT_CHARS long.
"""

from __future__ import annotations

import torch

DEFAULT_NUM_STEPS = 50
NEGATIVE_PROMPT = ""
SEED_LIMIT = 2**64
MAX_PROMPT_CHARS = 1000


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return seed


def check_prompt(prompt: object, max_chars: int = MAX_PROMPT_CHARS) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt is empty")
    if len(prompt) > max_chars:
        raise ValueError(f"prompt has {len(prompt)} characters; the limit is {max_chars}")
    return prompt


def initial_latents(
    seed: int,
    latent_shape: tuple[int, ...],
    scheduler,
    *,
    num_steps: int = DEFAULT_NUM_STEPS,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Seeded initial latents; sets the scheduler's timesteps first, as the pipeline does, because
    some schedulers' `init_noise_sigma` depends on them."""
    check_seed(seed)
    scheduler.set_timesteps(num_steps, device=device)
    generator = torch.Generator("cpu").manual_seed(seed)
    latents = torch.randn(latent_shape, generator=generator, dtype=dtype).to(device)
    return latents * scheduler.init_noise_sigma
