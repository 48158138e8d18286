"""Triton: one real step's guidance, noise gradient and DDIM update in one pass."""

from __future__ import annotations

import triton
import triton.language as tl

from .triton_launch import empty_flat, flat, launch_config, on_device


@triton.jit
def _correct_step_kernel(x_ptr, cond_ptr, uncond_ptr, prev_ptr, x_out_ptr, eps_out_ptr, delta_out_ptr,
                         n_elements, guidance, alpha, f, g,
                         HAS_UNCOND: tl.constexpr, HAS_PREV: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_elements
    eps = tl.load(cond_ptr + offsets, mask=mask).to(tl.float32)
    if HAS_UNCOND:
        uncond = tl.load(uncond_ptr + offsets, mask=mask).to(tl.float32)
        eps = uncond + guidance * (eps - uncond)
    if HAS_PREV:
        prev = tl.load(prev_ptr + offsets, mask=mask).to(tl.float32)
        tl.store(delta_out_ptr + offsets, (alpha * (eps - prev)).to(delta_out_ptr.dtype.element_ty), mask=mask)
    x = tl.load(x_ptr + offsets, mask=mask).to(tl.float32)
    tl.store(x_out_ptr + offsets, (f * x - g * eps).to(x_out_ptr.dtype.element_ty), mask=mask)
    tl.store(eps_out_ptr + offsets, eps.to(eps_out_ptr.dtype.element_ty), mask=mask)


def correct_step_triton(x, eps_cond, eps_uncond, guidance, eps_prev, alpha, f, g):
    """Launcher. Tensors validated by the caller; guidance, alpha, f, g python floats."""
    assert all(isinstance(s, float) for s in (guidance, alpha, f, g))
    x_flat, cond_flat = flat(x), flat(eps_cond)
    # an absent input is never read (constexpr flag), so any valid pointer stands in for it
    uncond_flat = cond_flat if eps_uncond is None else flat(eps_uncond)
    prev_flat = cond_flat if eps_prev is None else flat(eps_prev)
    x_out, eps_out = empty_flat(x_flat), empty_flat(x_flat)
    delta_out = x_out if eps_prev is None else empty_flat(x_flat)
    n = x_flat.numel()
    if n:
        grid, meta = launch_config(n)
        with on_device(x):
            _correct_step_kernel[grid](x_flat, cond_flat, uncond_flat, prev_flat, x_out, eps_out, delta_out,
                                       n, guidance, alpha, f, g,
                                       HAS_UNCOND=eps_uncond is not None, HAS_PREV=eps_prev is not None, **meta)
    delta = None if eps_prev is None else delta_out.view(x.shape)
    return x_out.view(x.shape), eps_out.view(x.shape), delta
