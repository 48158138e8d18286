"""What every Triton launcher shares: flat contiguous views, output allocation, launch grid, the
device a launch runs on."""

from __future__ import annotations

import contextlib

import torch
import triton

from .dispatch import triton_interpreting

# Elementwise and memory-bound: 1024 elements per program (8 per thread with 4 warps, two
# 128-bit accesses per fp32 tensor) keeps enough loads in flight to approach copy bandwidth.
GPU_BLOCK, GPU_NUM_WARPS = 1024, 4
# The interpreter runs each program as numpy over its block, so few large programs are fastest.
INTERPRETER_BLOCK = 1 << 16


def flat(t: torch.Tensor) -> torch.Tensor:
    """A 1-D contiguous view of t, copying only when t is not contiguous."""
    return t.contiguous().view(-1)


def on_device(t: torch.Tensor):
    """The context to launch a kernel on t's tensors in: Triton launches on the thread's current CUDA
    device, not on the tensors', so tensors on cuda:1 of a thread whose current device is cuda:0 (the
    default, and each new thread's) would fail ("cannot be accessed from Triton") without it."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def empty_flat(like: torch.Tensor) -> torch.Tensor:
    return torch.empty(like.numel(), dtype=like.dtype, device=like.device)


def block_and_meta(**compile_options) -> tuple[int, dict]:
    """(BLOCK, launch options); compile_options apply to compiled kernels only."""
    if triton_interpreting():
        return INTERPRETER_BLOCK, {}
    return GPU_BLOCK, {"num_warps": GPU_NUM_WARPS, **compile_options}


def launch_config(n: int) -> tuple[tuple[int], dict]:
    """(grid, meta-parameters) for an elementwise kernel over n elements."""
    block, meta = block_and_meta()
    return (triton.cdiv(n, block),), {"BLOCK": block, **meta}
