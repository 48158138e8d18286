"""Public kernel ops: validate, pick a backend, run it. Outputs are new tensors of the input's
shape and dtype (never views of an input); inputs are never modified."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from .dispatch import resolve_backend
from .reference import (approx_steps_curved_torch, approx_steps_torch, correct_step_torch, decode_int8_torch,
                        encode_int8_torch, fit_gradient_torch)
from .validation import (Coefficients, Scalar, check_channel_latents, check_coefficients, check_int8_codes,
                         check_latents, check_scalar, check_weights)


def approx_steps(x: torch.Tensor, eps: torch.Tensor, delta: torch.Tensor, f: Coefficients, g: Coefficients,
                 *, backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """k approximated DDIM steps: for j in 0..k-1, eps = eps + delta; x = f[j]*x - g[j]*eps.

    x, eps, delta: one shape and dtype (fp32/fp16/bf16), any rank. f, g: 1-D, k >= 1, any float
    dtype and device. Accumulates in fp32; returns (x, eps) after the k steps.
    """
    check_latents(x=x, eps=eps, delta=delta)
    f, g = check_coefficients(f, g)
    if resolve_backend(backend, x.device) == "triton":
        from .triton_approx_steps import approx_steps_triton

        return approx_steps_triton(x, eps, delta, f, g)
    return approx_steps_torch(x, eps, delta, f, g)


def approx_steps_curved(x: torch.Tensor, eps: torch.Tensor, delta: torch.Tensor, curvature: torch.Tensor,
                        f: Coefficients, g: Coefficients, *, backend: Optional[str] = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k approximated DDIM steps whose increment changes by a constant curvature: for j in 0..k-1,
    delta = delta + curvature; eps = eps + delta; x = f[j]*x - g[j]*eps.

    Inputs as for `approx_steps`, curvature of the same shape and dtype; returns (x, eps, delta)
    after the k steps (delta: the increment the last step used).
    """
    check_latents(x=x, eps=eps, delta=delta, curvature=curvature)
    f, g = check_coefficients(f, g)
    if resolve_backend(backend, x.device) == "triton":
        from .triton_approx_steps import approx_steps_triton

        return approx_steps_triton(x, eps, delta, f, g, curvature)
    return approx_steps_curved_torch(x, eps, delta, curvature, f, g)


def fit_gradient(noises: Sequence[torch.Tensor], slope: Sequence[float], curvature: Optional[Sequence[float]] = None,
                 *, backend: Optional[str] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """An extrapolation from the last real noises (two or three, most recent first):
    delta = sum_m slope[m]*noises[m], curvature = sum_m curvature[m]*noises[m] (None if not asked).

    noises: one shape and dtype (fp32/fp16/bf16); weights: one number per noise. fp32 arithmetic,
    outputs in the noises' dtype.
    """
    noises = list(noises)
    if len(noises) not in (2, 3):
        raise ValueError(f"fit_gradient takes two or three noises, got {len(noises)}")
    check_latents(**{f"noises[{m}]": noise for m, noise in enumerate(noises)})
    slope = check_weights("slope", slope, len(noises))
    curvature = None if curvature is None else check_weights("curvature", curvature, len(noises))
    if resolve_backend(backend, noises[0].device) == "triton":
        from .triton_fit_gradient import fit_gradient_triton

        return fit_gradient_triton(noises, slope, curvature)
    return fit_gradient_torch(noises, slope, curvature)


def correct_step(x: torch.Tensor, eps_cond: torch.Tensor, eps_uncond: Optional[torch.Tensor], guidance: Scalar,
                 eps_prev: Optional[torch.Tensor], alpha: Scalar, f: Scalar, g: Scalar,
                 *, backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """One real step: eps = eps_uncond + guidance*(eps_cond - eps_uncond) (eps_cond if eps_uncond
    is None), delta = alpha*(eps - eps_prev) (None if eps_prev is None), x_out = f*x - g*eps.

    Returns (x_out, eps, delta); fp32 arithmetic, outputs in the input dtype.
    """
    check_latents(("eps_uncond", "eps_prev"), x=x, eps_cond=eps_cond, eps_uncond=eps_uncond, eps_prev=eps_prev)
    scalars = [check_scalar(name, value) for name, value in
               (("guidance", guidance), ("alpha", alpha), ("f", f), ("g", g))]
    guidance, alpha, f, g = scalars
    if resolve_backend(backend, x.device) == "triton":
        from .triton_correct_step import correct_step_triton

        return correct_step_triton(x, eps_cond, eps_uncond, guidance, eps_prev, alpha, f, g)
    return correct_step_torch(x, eps_cond, eps_uncond, guidance, eps_prev, alpha, f, g)


def encode_int8(latents: torch.Tensor, *, backend: Optional[str] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(sample, channel) symmetric int8 coding of (B, C, ...) latents for transfer.

    Returns (q, scale): q int8 in latents' shape, scale fp32 (B, C) = absmax/127 of each channel,
    q = floor(x/scale + 0.5) (0 for an all-zero channel). decode_int8 is within scale/2 of x.
    """
    check_channel_latents(latents)
    if resolve_backend(backend, latents.device) == "triton":
        from .triton_int8 import encode_int8_triton

        return encode_int8_triton(latents)
    return encode_int8_torch(latents)


def decode_int8(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32,
                *, backend: Optional[str] = None) -> torch.Tensor:
    """Latents q * scale[b, c] in `dtype`, from encode_int8's (q, scale)."""
    check_int8_codes(q, scale, dtype)
    if resolve_backend(backend, q.device) == "triton":
        from .triton_int8 import decode_int8_triton

        return decode_int8_triton(q, scale, dtype)
    return decode_int8_torch(q, scale, dtype)
