"""The offline default models: the toy-world cloud/edge pair, their shared VAE and text encoder,
and the alignment scorer that reads generated images (the toy world's stand-in for CLIP score).

Generation convention: plain diffusers calls,
`pipe(prompt, num_inference_steps=50, guidance_scale=DEFAULT_GUIDANCE,
generator=torch.Generator("cpu").manual_seed(seed))`, i.e. initial latents
`torch.randn(latent_shape, generator) * scheduler.init_noise_sigma`, empty negative prompt.
"""

from ecdiff.models.pipeline import load_pipeline

# Classifier-free guidance scale for the toy-world pair, chosen by measured prompt fidelity
# (see models/toyworld-cloud/README.md).
DEFAULT_GUIDANCE = 4.0

__all__ = ["DEFAULT_GUIDANCE", "load_pipeline"]
