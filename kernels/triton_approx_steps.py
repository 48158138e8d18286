"""Triton: k approximated steps in one pass, x and eps held in registers across the k steps."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_launch import empty_flat, flat, launch_config


@triton.jit
def _approx_steps_kernel(x_ptr, eps_ptr, delta_ptr, f_ptr, g_ptr, x_out_ptr, eps_out_ptr,
                         n_elements, k, BLOCK: tl.constexpr):
    # int64 offsets: video latents of a large batch can pass 2**31 elements
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask).to(tl.float32)
    eps = tl.load(eps_ptr + offsets, mask=mask).to(tl.float32)
    delta = tl.load(delta_ptr + offsets, mask=mask).to(tl.float32)
    for j in range(k):
        f = tl.load(f_ptr + j)
        g = tl.load(g_ptr + j)
        eps = eps + delta
        x = f * x - g * eps
    tl.store(x_out_ptr + offsets, x.to(x_out_ptr.dtype.element_ty), mask=mask)
    tl.store(eps_out_ptr + offsets, eps.to(eps_out_ptr.dtype.element_ty), mask=mask)


def approx_steps_triton(x, eps, delta, f, g):
    """Launcher. Tensors validated by the caller; f, g 1-D of any float dtype and device."""
    assert x.shape == eps.shape == delta.shape and x.dtype == eps.dtype == delta.dtype
    # fp32 coefficients on x's device: the sampling core keeps float64 DDIM tables on the host
    f32 = f.to(device=x.device, dtype=torch.float32).contiguous()
    g32 = g.to(device=x.device, dtype=torch.float32).contiguous()
    x_flat, eps_flat, delta_flat = flat(x), flat(eps), flat(delta)
    x_out, eps_out = empty_flat(x_flat), empty_flat(x_flat)
    n = x_flat.numel()
    if n:
        grid, meta = launch_config(n)
        _approx_steps_kernel[grid](x_flat, eps_flat, delta_flat, f32, g32, x_out, eps_out, n, f32.numel(), **meta)
    return x_out.view(x.shape), eps_out.view(x.shape)
