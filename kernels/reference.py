"""Pure-torch implementations of the kernel ops: the CPU path and the Triton kernels' oracle.

Both compute in fp32 and return the input dtype, like the Triton kernels. Inputs must already
be validated (see ops.py); nothing here mutates an input.
"""

from __future__ import annotations

from typing import Optional

import torch


def approx_steps_closed_form(f: torch.Tensor, g: torch.Tensor) -> tuple[float, float, float, float]:
    """(a, b, c, e) with x_k = a*x - b*eps - c*delta - e*curvature after k steps of
    delta += curvature; eps += delta; x = f_j*x - g_j*eps (curvature 0: eps += delta alone).

    Unrolling: eps_j = eps + (j+1)*delta + T_(j+1)*curvature, T_m = m(m+1)/2, is the noise used
    at step j, and with P_j = f_j * f_{j+1} * ... * f_{k-1} (P_k = 1):
        x_k = P_0*x - sum_j g_j*P_{j+1}*(eps + (j+1)*delta + T_(j+1)*curvature),
    so a = P_0, b = sum_j g_j*P_{j+1}, c = sum_j (j+1)*g_j*P_{j+1}, e = sum_j T_(j+1)*g_j*P_{j+1}.
    Float64 on the host.
    """
    # plain Python floats: k is small, and a dozen tiny torch ops would cost more than the
    # latents' own arithmetic for small latents
    f64, g64 = f.detach().to("cpu", torch.float64).tolist(), g.detach().to("cpu", torch.float64).tolist()
    a, b, c, e = 1.0, 0.0, 0.0, 0.0  # a is P_{j+1} while j walks from k-1 down to 0, P_0 at the end
    for j in range(len(f64) - 1, -1, -1):
        weight = g64[j] * a
        b += weight
        c += (j + 1) * weight
        e += (j + 1) * (j + 2) / 2 * weight
        a *= f64[j]
    return a, b, c, e


def approx_steps_torch(x, eps, delta, f, g):
    """k approximated steps in four fp32 torch ops over the latents, whatever k is."""
    a, b, c, _ = approx_steps_closed_form(f, g)
    x32, eps32, delta32 = x.float(), eps.float(), delta.float()  # no copy when already fp32
    x_out = torch.mul(x32, a).add_(eps32, alpha=-b).add_(delta32, alpha=-c)
    eps_out = torch.add(eps32, delta32, alpha=f.numel())
    return x_out.to(x.dtype), eps_out.to(x.dtype)


def approx_steps_curved_torch(x, eps, delta, curvature, f, g):
    """k approximated steps with a changing increment in fp32 torch ops over the latents, whatever k is."""
    a, b, c, e = approx_steps_closed_form(f, g)
    k = f.numel()
    x32, eps32, delta32, curvature32 = x.float(), eps.float(), delta.float(), curvature.float()
    x_out = torch.mul(x32, a).add_(eps32, alpha=-b).add_(delta32, alpha=-c).add_(curvature32, alpha=-e)
    eps_out = torch.add(eps32, delta32, alpha=k).add_(curvature32, alpha=k * (k + 1) / 2)
    delta_out = torch.add(delta32, curvature32, alpha=k)
    return x_out.to(x.dtype), eps_out.to(x.dtype), delta_out.to(x.dtype)


def fit_gradient_torch(noises, slope, curvature):
    """delta = sum_m slope[m]*noises[m] (and the curvature likewise), in fp32."""
    def combine(weights):
        total = torch.mul(noises[0].float(), weights[0])
        for noise, weight in zip(noises[1:], weights[1:]):
            total.add_(noise.float(), alpha=weight)
        return total.to(noises[0].dtype)

    return combine(slope), None if curvature is None else combine(curvature)


def correct_step_torch(x, eps_cond, eps_uncond: Optional[torch.Tensor], guidance: float,
                       eps_prev: Optional[torch.Tensor], alpha: float, f: float, g: float):
    """Guidance, noise gradient and DDIM update of one real step, in fp32."""
    if eps_uncond is None:
        eps = eps_cond.to(torch.float32, copy=True)  # a copy: outputs never alias inputs
    else:
        uncond = eps_uncond.float()
        eps = torch.sub(eps_cond.float(), uncond).mul_(guidance).add_(uncond)
    delta = None if eps_prev is None else torch.sub(eps, eps_prev.float()).mul_(alpha).to(x.dtype)
    x_out = torch.mul(x.float(), f).sub_(eps, alpha=g)
    return x_out.to(x.dtype), eps.to(x.dtype), delta


def encode_int8_torch(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(sample, channel) symmetric int8: scale = absmax/127, q = floor(x*(127/absmax) + 0.5)."""
    rows = latents.float().reshape(*latents.shape[:2], -1)
    absmax = rows.abs().amax(dim=-1) if rows.shape[-1] else rows.new_zeros(rows.shape[:2])
    # tensor / tensor: one IEEE division, like the kernel's div_rn (python 127.0 / t is
    # reciprocal-then-multiply: two roundings)
    inv = torch.where(absmax > 0, torch.full_like(absmax, 127.0) / absmax.clamp_min(1e-30), 0.0)
    q = torch.floor(rows * inv[..., None] + 0.5).clamp_(-127, 127).to(torch.int8)
    # tensor / tensor again: CUDA turns division by a python scalar into a reciprocal multiply
    return q.reshape(latents.shape), absmax / torch.full_like(absmax, 127.0)


def decode_int8_torch(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """q * scale of its (sample, channel), in `dtype`."""
    per_row = scale.float().reshape(*scale.shape, *([1] * (q.dim() - 2)))
    return (q.float() * per_row).to(dtype)
