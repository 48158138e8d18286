"""correct_step: Triton and torch reference against float64 code written from the formulas."""

import pytest
import torch

from ecdiff.kernels import correct_step

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SMALL_SHAPES = [(1,), (7,), (4, 64, 64), (1, 3, 4, 6, 10)]  # the last: video latents [B, F, C, H, W]
BIG_SHAPES = [(1000003,), (2, 4, 128, 128), (16, 13, 60, 90)]
FP32_UNIT_ROUNDOFF = 2.0**-24
GUIDANCE, ALPHA, F, G = 7.5, 0.7, 1.08, 0.21  # CFG scale of SD; f, g of a mid-schedule DDIM step


def float64_step(x, cond, uncond, guidance, prev, alpha, f, g):
    """eps = uncond + guidance*(cond - uncond); delta = alpha*(eps - prev); x' = f*x - g*eps."""
    x, cond = x.double(), cond.double()
    eps = cond if uncond is None else uncond.double() + guidance * (cond - uncond.double())
    delta = None if prev is None else alpha * (eps - prev.double())
    return f * x - g * eps, eps, delta


def accumulation_bound(x, cond, uncond, guidance, prev, alpha, f, g):
    """fp32 error bound over the three outputs. With E = |uncond| + |guidance|(|cond| + |uncond|)
    bounding eps and its intermediates, eps has 3 roundings (<= 3uE); delta adds 2 roundings of
    magnitude |alpha|(E + |prev|) to |alpha|*3uE; x' adds 3 roundings of |f x| + |g| E to |g|*3uE.
    Every one of these is <= 8u*M with M the largest of E, |alpha|(E + |prev|) and |f x| + |g| E."""
    largest = lambda t: 0.0 if t is None else float(t.abs().max())  # noqa: E731
    e = largest(uncond) + (abs(guidance) if uncond is not None else 1.0) * (largest(cond) + largest(uncond))
    magnitude = max(e, abs(alpha) * (e + largest(prev)), abs(f) * largest(x) + abs(g) * e)
    return 8 * FP32_UNIT_ROUNDOFF * magnitude


def inputs(shape, dtype, device, has_uncond, has_prev, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x, cond, uncond, prev = (torch.randn(shape, generator=gen).to(device=device, dtype=dtype) for _ in range(4))
    return x, cond, uncond if has_uncond else None, prev if has_prev else None


def run_and_check(x, cond, uncond, prev, dtype, check_against_float64, check_backends_agree):
    args = (x, cond, uncond, GUIDANCE, prev, ALPHA, F, G)
    bound = accumulation_bound(*args)
    reference = float64_step(*args)
    results = {backend: correct_step(*args, backend=backend) for backend in ("triton", "torch")}
    for outputs in results.values():
        assert (outputs[2] is None) == (prev is None)
        for out, ref in zip(outputs, reference):
            if ref is not None:
                check_against_float64(out, ref, dtype, bound)
    for a, b in zip(results["triton"], results["torch"]):
        if a is not None:
            check_backends_agree(a, b, dtype, bound)


@pytest.mark.parametrize("has_uncond,has_prev", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SMALL_SHAPES)
def test_small_sizes(shape, dtype, has_uncond, has_prev, device, poisoned_allocations,
                     check_against_float64, check_backends_agree):
    tensors = inputs(shape, dtype, device, has_uncond, has_prev)
    run_and_check(*tensors, dtype, check_against_float64, check_backends_agree)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BIG_SHAPES)
def test_big_sizes(shape, dtype, device, poisoned_allocations, check_against_float64, check_backends_agree):
    run_and_check(*inputs(shape, dtype, device, True, True), dtype, check_against_float64, check_backends_agree)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(dtype, device, poisoned_allocations, check_against_float64, check_backends_agree):
    x, cond, uncond, prev = inputs((2, 4, 32, 48), dtype, device, True, True)
    x, cond = x.transpose(-1, -2).contiguous().transpose(-1, -2), torch.cat([cond, cond], -1)[..., ::2]
    uncond, prev = uncond[:1].expand(2, -1, -1, -1), prev.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert not any(t.is_contiguous() for t in (x, cond, uncond, prev))
    run_and_check(x, cond, uncond, prev, dtype, check_against_float64, check_backends_agree)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_scalar_forms_and_untouched_inputs(backend, device):
    x, cond, uncond, prev = inputs((3, 5), torch.float32, device, True, True)
    before = [t.clone() for t in (x, cond, uncond, prev)]
    # 0-d and 1-element tensors and ints are all accepted as scalars
    out = correct_step(x, cond, uncond, torch.tensor(GUIDANCE), prev, torch.tensor([ALPHA]), 1, G, backend=backend)
    for t, t0 in zip((x, cond, uncond, prev), before):
        torch.testing.assert_close(t, t0, rtol=0, atol=0)
    bound = accumulation_bound(x, cond, uncond, GUIDANCE, prev, ALPHA, 1.0, G)
    for o, r in zip(out, float64_step(x, cond, uncond, GUIDANCE, prev, ALPHA, 1.0, G)):
        torch.testing.assert_close(o.double(), r, rtol=FP32_UNIT_ROUNDOFF, atol=2 * bound)
    # without uncond, eps is a fresh copy of eps_cond, never the caller's tensor
    _, eps, _ = correct_step(x, cond, None, GUIDANCE, None, ALPHA, F, G, backend=backend)
    assert eps.data_ptr() != cond.data_ptr()
    torch.testing.assert_close(eps, cond, rtol=0, atol=0)
