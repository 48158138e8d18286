"""encode_int8/decode_int8: both backends against float64 checks written from the definition."""

import pytest
import torch

from ecdiff.kernels import decode_int8, encode_int8

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SHAPES = [(3, 5), (1, 4, 8, 8), (2, 4, 64, 64), (1, 3, 4, 6, 10)]  # the last: video [B, F, C, H, W], a scale per frame
BIG_CASES = [((2, 4, 128, 128), torch.float16), ((1, 16, 13, 60, 90), torch.float32)]
FP32_UNIT_ROUNDOFF = 2.0**-24


def latents(shape, dtype, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen)
    # channels of very different ranges, which is why the scale is per channel
    x = x * torch.logspace(-2, 1, shape[1]).reshape(1, -1, *([1] * (len(shape) - 2)))
    return x.to(device=device, dtype=dtype)


def check_coding(x, q, scale):
    """Definition: scale = absmax/127 per (sample, channel); q = x/scale rounded to nearest, in
    [-127, 127]. fp32 arithmetic (the quotient x*(127/absmax) has |value| <= 127) may move
    the quotient by a few fp32 ulps of 127 before rounding: allow 1e-4 beyond the half."""
    x64 = x.double().reshape(*x.shape[:2], -1)
    absmax = x64.abs().amax(-1)
    # scale is one IEEE fp32 division of the exact absmax: off by at most one rounding
    torch.testing.assert_close(scale.double(), absmax / 127, rtol=FP32_UNIT_ROUNDOFF, atol=0)
    assert q.dtype == torch.int8 and q.shape == x.shape and int(q.min()) >= -127
    quotient = x64 / (absmax / 127)[..., None]
    assert float((q.reshape(x64.shape).double() - quotient).abs().max()) <= 0.5 + 1e-4


def check_round_trip(x, q, scale, backend, dtype):
    """decode = q*scale, one fp32 rounding then one to dtype: within scale/2 of x (coding) plus
    the dtype's unit roundoff of |x| (2**-7 for bf16 under the interpreter, see conftest)."""
    y = decode_int8(q, scale, dtype, backend=backend)
    assert y.dtype == dtype and y.shape == x.shape and torch.isfinite(y).all()
    per_row = scale.double().reshape(*scale.shape, *([1] * (x.dim() - 2)))
    unit = {torch.float32: 2.0**-23, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}[dtype]
    err = (y.double() - x.double()).abs()
    assert bool((err <= per_row * (0.5 + 1e-4) + unit * x.double().abs()).all())
    torch.testing.assert_close(y.double(), q.double() * per_row, rtol=unit, atol=0)


def encode_both_and_check(x):
    results = {b: encode_int8(x, backend=b) for b in ("triton", "torch")}
    # the same IEEE operations in the same order (FMA contraction is off in the kernel): equal bits
    torch.testing.assert_close(results["triton"][0], results["torch"][0], rtol=0, atol=0)
    torch.testing.assert_close(results["triton"][1], results["torch"][1], rtol=0, atol=0)
    check_coding(x, *results["torch"])
    return results


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_small(shape, dtype, device, poisoned_allocations):
    x = latents(shape, dtype, device)
    for backend, (q, scale) in encode_both_and_check(x).items():
        check_round_trip(x, q, scale, backend, dtype)
        check_round_trip(x, q, scale, backend, torch.float32)


@pytest.mark.parametrize("shape,dtype", BIG_CASES)
def test_big(shape, dtype, device, poisoned_allocations):
    x = latents(shape, dtype, device)
    for backend, (q, scale) in encode_both_and_check(x).items():
        check_round_trip(x, q, scale, backend, dtype)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_zero_channel_and_non_contiguous(backend, device, poisoned_allocations):
    x = latents((2, 4, 16, 24), torch.float32, device)
    x[1, 2] = 0
    x_nc = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels-last storage
    q, scale = encode_int8(x_nc, backend=backend)
    assert float(scale[1, 2]) == 0 and int(q[1, 2].abs().max()) == 0
    check_coding(x[:, [0, 1, 3]], q[:, [0, 1, 3]], scale[:, [0, 1, 3]])
    y = decode_int8(q.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2), scale, backend=backend)
    torch.testing.assert_close(y, decode_int8(q, scale, backend="torch"), rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("call,error,message", [
    (lambda b: encode_int8(torch.zeros(5), backend=b), ValueError, r"\(batch, channels, \.\.\.\)"),
    (lambda b: encode_int8(torch.tensor([[1.0, float("nan")]]), backend=b), ValueError, "NaN or inf"),
    (lambda b: encode_int8(torch.zeros(2, 2, dtype=torch.int32), backend=b), TypeError, "latents has dtype"),
    (lambda b: decode_int8(torch.zeros(2, 3), torch.ones(2, 3), backend=b), TypeError, "q must be an int8"),
    (lambda b: decode_int8(torch.zeros(2, 3, 4, dtype=torch.int8), torch.ones(3), backend=b),
     ValueError, r"scale has shape \(3,\); expected q's \(batch, channels\) \(2, 3\)"),
    (lambda b: decode_int8(torch.zeros(2, 3, dtype=torch.int8), torch.ones(2, 3, dtype=torch.int8), backend=b),
     TypeError, "scale must be a float tensor"),
    (lambda b: decode_int8(torch.zeros(2, 3, dtype=torch.int8), torch.ones(2, 3), torch.float64, backend=b),
     TypeError, "dtype torch.float64 is not supported"),
])
def test_rejects(call, error, message, backend):
    with pytest.raises(error, match=message):
        call(backend)
