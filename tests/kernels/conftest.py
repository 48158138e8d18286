"""Kernel tests run the Triton kernels on CUDA when there is a GPU, else in Triton's CPU
interpreter (TRITON_INTERPRET=1, set by tests/conftest.py before anything imports triton)."""

import os

import pytest
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# Largest relative error of rounding an fp32 result to the output dtype: the unit roundoff
# (half an ulp) for round-to-nearest. Exception: Triton's interpreter (3.7.1 as 3.9) casts fp32 -> bf16 by
# truncation (interpreter.py, cast_impl calls _convert_float without a rounding mode), where
# compiled kernels round to nearest even; truncation errs by up to a whole bf16 ulp, 2**-7.
UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float16: 2.0**-11,
                 torch.bfloat16: 2.0**-7 if os.environ.get("TRITON_INTERPRET") == "1" else 2.0**-8}
# fp16 spacing below its smallest normal (6.1e-5) is 2**-24 absolute; fp32 and bf16 have no
# subnormals in the range these tests reach.
SUBNORMAL_SPACING = {torch.float32: 0.0, torch.float16: 2.0**-24, torch.bfloat16: 0.0}


@pytest.fixture
def device():
    return DEVICE


@pytest.fixture
def check_against_float64():
    """assert_close(actual, float64 reference) for a kernel that computes in fp32 and rounds once.

    rtol = the output dtype's unit roundoff: the single final rounding of an fp32 result to the
    output dtype moves it by at most that much relative. atol = `accumulation_bound`, the fp32
    arithmetic error of the op (each test derives it from its formula), doubled because the
    final rounding can also scale it, plus fp16's subnormal spacing.
    """

    def check(actual: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype, accumulation_bound: float):
        assert actual.dtype == dtype and actual.shape == reference.shape
        assert torch.isfinite(actual).all(), "non-finite output: an element was not written"
        torch.testing.assert_close(actual.double(), reference, rtol=UNIT_ROUNDOFF[dtype],
                                   atol=2 * accumulation_bound + SUBNORMAL_SPACING[dtype])

    return check


@pytest.fixture
def check_backends_agree():
    """Triton vs torch reference: each is within the float64 check's bound, so they are within twice it."""

    def check(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, accumulation_bound: float):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        torch.testing.assert_close(a.double(), b.double(), rtol=2 * UNIT_ROUNDOFF[dtype],
                                   atol=4 * accumulation_bound + 2 * SUBNORMAL_SPACING[dtype])

    return check


@pytest.fixture
def poisoned_allocations(monkeypatch):
    """Every torch.empty/empty_like comes back poisoned (floats NaN, integers their minimum, -128
    for int8, which the int8 encoder never writes), so an output element a kernel never writes
    shows up. Semantically safe: empty memory may hold anything anyway."""
    real_empty, real_empty_like = torch.empty, torch.empty_like

    def poison(t):
        if t.is_floating_point():
            return t.fill_(float("nan"))
        return t.fill_(torch.iinfo(t.dtype).min) if t.dtype != torch.bool and not t.is_complex() else t

    monkeypatch.setattr(torch, "empty", lambda *a, **k: poison(real_empty(*a, **k)))
    monkeypatch.setattr(torch, "empty_like", lambda *a, **k: poison(real_empty_like(*a, **k)))

