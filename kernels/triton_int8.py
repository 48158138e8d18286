"""Triton: per-channel symmetric int8 encode/decode of latents for transfer.

Rows are (sample, channel) pairs of a contiguous (B, C, ...) tensor: one program per row for the
encoder (absmax pass, then quantise pass); decode is elementwise over (row, column block).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .triton_launch import block_and_meta, on_device

@triton.jit
def _encode_int8_kernel(x_ptr, q_ptr, scale_ptr, n_cols, BLOCK: tl.constexpr):
    base = tl.program_id(0).to(tl.int64) * n_cols
    running = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        v = tl.load(x_ptr + base + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
        running = tl.maximum(running, tl.abs(v))
    absmax = tl.max(running, axis=0)
    # IEEE divisions (div_rn), as torch does them, so both backends get the same scale
    tl.store(scale_ptr + tl.program_id(0), tl.math.div_rn(absmax, 127.0))
    inv = tl.where(absmax > 0, tl.math.div_rn(127.0, tl.maximum(absmax, 1e-30)), 0.0)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        v = tl.load(x_ptr + base + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
        q = tl.minimum(tl.maximum(tl.floor(v * inv + 0.5), -127.0), 127.0)
        tl.store(q_ptr + base + cols, q.to(tl.int8), mask=cols < n_cols)


@triton.jit
def _decode_int8_kernel(q_ptr, scale_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    scale = tl.load(scale_ptr + row)
    q = tl.load(q_ptr + row * n_cols + cols, mask=mask).to(tl.float32)
    tl.store(out_ptr + row * n_cols + cols, (q * scale).to(out_ptr.dtype.element_ty), mask=mask)


# fp fusion off: an FMA in v*inv + 0.5 would round differently from torch's mul-then-add
NO_FMA = {"enable_fp_fusion": False}


def encode_int8_triton(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Launcher: (int8 codes in latents' shape, fp32 scales of shape (B, C))."""
    rows, n = latents.shape[0] * latents.shape[1], math.prod(latents.shape[2:])
    x = latents.contiguous()
    q = torch.empty(latents.shape, dtype=torch.int8, device=latents.device)
    scale = torch.empty(latents.shape[:2], dtype=torch.float32, device=latents.device)
    if rows and n:
        block, meta = block_and_meta(**NO_FMA)
        with on_device(x):
            _encode_int8_kernel[(rows,)](x, q, scale, n, BLOCK=block, **meta)
    else:
        scale.zero_()  # no elements: nothing to scale
    return q, scale


def decode_int8_triton(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Launcher: latents of `dtype` in q's shape."""
    rows, n = q.shape[0] * q.shape[1], math.prod(q.shape[2:])
    q_c, scale_c = q.contiguous(), scale.to(torch.float32).contiguous()
    out = torch.empty(q.shape, dtype=dtype, device=q.device)
    if rows and n:
        block, meta = block_and_meta()
        with on_device(q_c):
            _decode_int8_kernel[(rows, triton.cdiv(n, block))](q_c, scale_c, out, n, BLOCK=block, **meta)
    return out
