"""Triton: k approximated steps in one pass, x and eps (and a changing increment) held in
registers across the k steps."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_launch import empty_flat, flat, launch_config, on_device


@triton.jit
def _approx_steps_kernel(x_ptr, eps_ptr, delta_ptr, curvature_ptr, f_ptr, g_ptr, x_out_ptr, eps_out_ptr,
                         delta_out_ptr, n_elements, k, HAS_CURVATURE: tl.constexpr, BLOCK: tl.constexpr):
    # int64 offsets: video latents of a large batch can pass 2**31 elements
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask).to(tl.float32)
    eps = tl.load(eps_ptr + offsets, mask=mask).to(tl.float32)
    delta = tl.load(delta_ptr + offsets, mask=mask).to(tl.float32)
    if HAS_CURVATURE:
        curvature = tl.load(curvature_ptr + offsets, mask=mask).to(tl.float32)
    for j in range(k):
        f = tl.load(f_ptr + j)
        g = tl.load(g_ptr + j)
        if HAS_CURVATURE:
            delta = delta + curvature
        eps = eps + delta
        x = f * x - g * eps
    tl.store(x_out_ptr + offsets, x.to(x_out_ptr.dtype.element_ty), mask=mask)
    tl.store(eps_out_ptr + offsets, eps.to(eps_out_ptr.dtype.element_ty), mask=mask)
    if HAS_CURVATURE:
        tl.store(delta_out_ptr + offsets, delta.to(delta_out_ptr.dtype.element_ty), mask=mask)


def approx_steps_triton(x, eps, delta, f, g, curvature=None):
    """Launcher. Tensors validated by the caller; f, g 1-D of any float dtype and device.
    Returns (x, eps) without curvature, (x, eps, delta) with it."""
    assert x.shape == eps.shape == delta.shape and x.dtype == eps.dtype == delta.dtype
    # fp32 coefficients on x's device: the sampling core keeps float64 DDIM tables on the host
    f32 = f.to(device=x.device, dtype=torch.float32).contiguous()
    g32 = g.to(device=x.device, dtype=torch.float32).contiguous()
    x_flat, eps_flat, delta_flat = flat(x), flat(eps), flat(delta)
    # an absent input is never read nor an absent output written (constexpr flag): any valid
    # pointer stands in for them
    curvature_flat = delta_flat if curvature is None else flat(curvature)
    x_out, eps_out = empty_flat(x_flat), empty_flat(x_flat)
    delta_out = x_out if curvature is None else empty_flat(x_flat)
    n = x_flat.numel()
    if n:
        grid, meta = launch_config(n)
        with on_device(x):
            _approx_steps_kernel[grid](x_flat, eps_flat, delta_flat, curvature_flat, f32, g32, x_out, eps_out,
                                       delta_out, n, f32.numel(), HAS_CURVATURE=curvature is not None, **meta)
    if curvature is None:
        return x_out.view(x.shape), eps_out.view(x.shape)
    return x_out.view(x.shape), eps_out.view(x.shape), delta_out.view(x.shape)
