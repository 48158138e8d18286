"""Triton: an extrapolation's increment (and curvature) from the last two or three real noises in one pass."""

from __future__ import annotations

import triton
import triton.language as tl

from .triton_launch import empty_flat, flat, launch_config, on_device


@triton.jit
def _fit_gradient_kernel(e0_ptr, e1_ptr, e2_ptr, delta_out_ptr, curvature_out_ptr, n_elements,
                         s0, s1, s2, c0, c1, c2,
                         HAS_E2: tl.constexpr, HAS_CURVATURE: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_elements
    e0 = tl.load(e0_ptr + offsets, mask=mask).to(tl.float32)
    e1 = tl.load(e1_ptr + offsets, mask=mask).to(tl.float32)
    delta = s0 * e0 + s1 * e1
    if HAS_E2:
        e2 = tl.load(e2_ptr + offsets, mask=mask).to(tl.float32)
        delta = delta + s2 * e2
    tl.store(delta_out_ptr + offsets, delta.to(delta_out_ptr.dtype.element_ty), mask=mask)
    if HAS_CURVATURE:
        curvature = c0 * e0 + c1 * e1
        if HAS_E2:
            curvature = curvature + c2 * e2
        tl.store(curvature_out_ptr + offsets, curvature.to(curvature_out_ptr.dtype.element_ty), mask=mask)


def fit_gradient_triton(noises, slope, curvature):
    """Launcher. Tensors validated by the caller (two or three); weights python floats, one per noise."""
    assert len(noises) in (2, 3) and len(slope) == len(noises)
    assert curvature is None or len(curvature) == len(noises)
    flats = [flat(noise) for noise in noises]
    # an absent input is never read nor an absent output written (constexpr flags)
    e2 = flats[2] if len(flats) == 3 else flats[0]
    s = tuple(slope) + (0.0,) * (3 - len(slope))
    c = (0.0, 0.0, 0.0) if curvature is None else tuple(curvature) + (0.0,) * (3 - len(curvature))
    delta_out = empty_flat(flats[0])
    curvature_out = delta_out if curvature is None else empty_flat(flats[0])
    n = flats[0].numel()
    if n:
        grid, meta = launch_config(n)
        with on_device(flats[0]):
            _fit_gradient_kernel[grid](flats[0], flats[1], e2, delta_out, curvature_out, n, *s, *c,
                                       HAS_E2=len(flats) == 3, HAS_CURVATURE=curvature is not None, **meta)
    shape = noises[0].shape
    return delta_out.view(shape), None if curvature is None else curvature_out.view(shape)
