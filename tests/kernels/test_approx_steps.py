"""approx_steps and approx_steps_curved: Triton and torch reference against a float64 loop written
from the formula."""

import pytest
import torch

from ecdiff.kernels import approx_steps, approx_steps_curved

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SMALL_SHAPES = [(1,), (7,), (4, 64, 64), (1, 3, 4, 6, 10)]  # the last: video latents [B, F, C, H, W]
BIG_SHAPES = [(1000003,), (2, 4, 128, 128), (16, 13, 60, 90)]
# each big size with every dtype but one k per pair (k = 1..8 is covered on the small sizes),
# which keeps the interpreter runs to seconds
BIG_CASES = [(shape, dtype, (2, 3, 5, 8)[(i + j) % 4])
             for i, shape in enumerate(BIG_SHAPES) for j, dtype in enumerate(DTYPES)]
FP32_UNIT_ROUNDOFF = 2.0**-24


def float64_steps(x, eps, delta, f, g):
    """The definition: for j in 0..k-1, eps = eps + delta; x = f[j]*x - g[j]*eps (in float64)."""
    x, eps, delta = x.double(), eps.double(), delta.double()
    for fj, gj in zip(f.tolist(), g.tolist()):
        eps = eps + delta
        x = fj * x - gj * eps
    return x, eps


def inputs(shape, dtype, k, device, seed=0):
    """Latents like a sampler's (unit-variance x and eps, small noise gradient) and DDIM-like
    coefficients (f a little above or below 1, g in [0, 0.3]), float64 as the core keeps them."""
    gen = torch.Generator().manual_seed(seed)
    x, eps = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    delta = 0.05 * torch.randn(shape, generator=gen)
    f = 0.9 + 0.25 * torch.rand(k, generator=gen, dtype=torch.float64)
    g = 0.3 * torch.rand(k, generator=gen, dtype=torch.float64)
    return [t.to(device=device, dtype=dtype) for t in (x, eps, delta)] + [f, g]


def accumulation_bound(x, eps, delta, f, g):
    """fp32 error bound of either formulation (k-step loop or the closed form a*x - b*eps - c*delta).

    Every intermediate is at most S = F*(|x| + (1 + sum|g|)*(|eps| + k|delta|)), F = prod max(1, |f_j|).
    Each step rounds 4 times (two products, a sum, a difference), each by at most u*S, and an
    error carried forward is scaled by at most F: after k steps, at most 4(k+1)*u*S*F. Rounding f
    and g to fp32 costs u*S per step, inside the +1.
    """
    k = f.numel()
    amplification = float(torch.clamp(f.abs(), min=1).prod())
    largest = lambda t: float(t.abs().max())  # noqa: E731
    magnitude = amplification * (largest(x) + (1 + float(g.abs().sum())) * (largest(eps) + k * largest(delta)))
    return 4 * (k + 1) * FP32_UNIT_ROUNDOFF * magnitude * amplification


def run_and_check(x, eps, delta, f, g, dtype, check_against_float64, check_backends_agree):
    bound = accumulation_bound(x, eps, delta, f, g)
    reference = float64_steps(x, eps, delta, f, g)
    results = {backend: approx_steps(x, eps, delta, f, g, backend=backend) for backend in ("triton", "torch")}
    for outputs in results.values():
        for out, ref in zip(outputs, reference):
            check_against_float64(out, ref, dtype, bound)
    for a, b in zip(results["triton"], results["torch"]):
        check_backends_agree(a, b, dtype, bound)


@pytest.mark.parametrize("k", range(1, 9))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SMALL_SHAPES)
def test_small_sizes(shape, dtype, k, device, poisoned_allocations, check_against_float64, check_backends_agree):
    run_and_check(*inputs(shape, dtype, k, device, seed=k), dtype, check_against_float64, check_backends_agree)


@pytest.mark.parametrize("shape,dtype,k", BIG_CASES)
def test_big_sizes(shape, dtype, k, device, poisoned_allocations, check_against_float64, check_backends_agree):
    run_and_check(*inputs(shape, dtype, k, device), dtype, check_against_float64, check_backends_agree)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(dtype, device, poisoned_allocations, check_against_float64, check_backends_agree):
    x, eps, delta, f, g = inputs((2, 4, 32, 48), dtype, 4, device)
    # a transposed view, a strided slice and a broadcast-expanded tensor: three layouts at once
    x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    eps = torch.cat([eps, eps], dim=-1)[..., ::2]
    delta = delta[:, :1].expand(-1, 4, -1, -1)
    assert not any(t.is_contiguous() for t in (x, eps, delta))
    run_and_check(x, eps, delta, f, g, dtype, check_against_float64, check_backends_agree)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_inputs_untouched_and_coefficients_any_float(backend, device):
    x, eps, delta, f, g = inputs((3, 5), torch.float32, 3, device)
    before = [t.clone() for t in (x, eps, delta)]
    # float16 coefficients on the host; f as a plain list: both are accepted
    x_out, eps_out = approx_steps(x, eps, delta, f.tolist(), g.half(), backend=backend)
    for t, t0 in zip((x, eps, delta), before):
        torch.testing.assert_close(t, t0, rtol=0, atol=0)
    g_used = g.half().double()
    bound = accumulation_bound(x, eps, delta, f, g_used)
    for out, ref in zip((x_out, eps_out), float64_steps(x, eps, delta, f, g_used)):
        torch.testing.assert_close(out.double(), ref, rtol=FP32_UNIT_ROUNDOFF, atol=2 * bound)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_empty_latents(backend, device):
    x = torch.empty(0, 4, device=device)
    x_out, eps_out = approx_steps(x, x, x, [1.0], [0.5], backend=backend)
    assert x_out.shape == eps_out.shape == (0, 4)


# approx_steps_curved: the increment changes by a constant curvature per step.
def float64_curved_steps(x, eps, delta, curvature, f, g):
    """The definition: for j in 0..k-1, delta = delta + curvature; eps = eps + delta; x = f[j]*x - g[j]*eps."""
    x, eps, delta, curvature = x.double(), eps.double(), delta.double(), curvature.double()
    for fj, gj in zip(f.tolist(), g.tolist()):
        delta = delta + curvature
        eps = eps + delta
        x = fj * x - gj * eps
    return x, eps, delta


def curved_inputs(shape, dtype, k, device, seed=0):
    x, eps, delta, f, g = inputs(shape, dtype, k, device, seed)
    curvature = (0.01 * torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1))).to(device=device, dtype=dtype)
    return x, eps, delta, curvature, f, g


def curved_bound(x, eps, delta, curvature, f, g):
    """approx_steps' bound with the largest increment the k steps reach, |delta| + k|curvature|, in
    place of |delta| (it bounds every noise used), and 6 roundings per step instead of 4 (the
    increment's update, and the curvature term of the closed form), plus one more step's worth for
    the closed form's extra coefficient e."""
    k = f.numel()
    reach = (delta.abs() + k * curvature.abs()).to(delta.dtype)
    return accumulation_bound(x, eps, reach, f, g) * (k + 2) / (k + 1) * 6 / 4


def run_and_check_curved(inputs_, dtype, check_against_float64, check_backends_agree):
    x, eps, delta, curvature, f, g = inputs_
    bound = curved_bound(x, eps, delta, curvature, f, g)
    reference = float64_curved_steps(x, eps, delta, curvature, f, g)
    results = {backend: approx_steps_curved(x, eps, delta, curvature, f, g, backend=backend)
               for backend in ("triton", "torch")}
    for outputs in results.values():
        for out, ref in zip(outputs, reference):
            check_against_float64(out, ref, dtype, bound)
    for a, b in zip(results["triton"], results["torch"]):
        check_backends_agree(a, b, dtype, bound)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SMALL_SHAPES)
def test_curved_small_sizes(shape, dtype, k, device, poisoned_allocations, check_against_float64, check_backends_agree):
    run_and_check_curved(curved_inputs(shape, dtype, k, device, seed=k), dtype, check_against_float64, check_backends_agree)


@pytest.mark.parametrize("dtype", DTYPES)
def test_curved_big_and_non_contiguous(dtype, device, poisoned_allocations, check_against_float64, check_backends_agree):
    run_and_check_curved(curved_inputs((1000003,), dtype, 4, device), dtype, check_against_float64, check_backends_agree)
    x, eps, delta, curvature, f, g = curved_inputs((2, 4, 32, 48), dtype, 3, device)
    curvature = curvature[:, :1].expand(-1, 4, -1, -1)
    x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    run_and_check_curved((x, eps, delta, curvature, f, g), dtype, check_against_float64, check_backends_agree)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_zero_curvature_is_approx_steps(backend, device):
    x, eps, delta, f, g = inputs((3, 5), torch.float32, 3, device)
    x_out, eps_out, delta_out = approx_steps_curved(x, eps, delta, torch.zeros_like(x), f, g, backend=backend)
    x_ref, eps_ref = approx_steps(x, eps, delta, f, g, backend=backend)
    bound = accumulation_bound(x, eps, delta, f, g)
    torch.testing.assert_close(x_out, x_ref, rtol=2 * FP32_UNIT_ROUNDOFF, atol=4 * bound)
    torch.testing.assert_close(eps_out, eps_ref, rtol=2 * FP32_UNIT_ROUNDOFF, atol=4 * bound)
    assert torch.equal(delta_out, delta)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_curved_inputs_untouched_and_bad_inputs_refused(backend, device):
    x, eps, delta, curvature, f, g = curved_inputs((3, 5), torch.float32, 3, device)
    before = [t.clone() for t in (x, eps, delta, curvature)]
    approx_steps_curved(x, eps, delta, curvature, f, g, backend=backend)
    for t, t0 in zip((x, eps, delta, curvature), before):
        assert torch.equal(t, t0)
    with pytest.raises(ValueError, match="curvature has shape"):
        approx_steps_curved(x, eps, delta, curvature[:1], f, g, backend=backend)
    with pytest.raises(ValueError, match="k must be >= 1"):
        approx_steps_curved(x, eps, delta, curvature, [], [], backend=backend)
