"""fit_gradient: Triton and torch reference against the float64 sums."""

import pytest
import torch

from ecdiff.kernels import fit_gradient

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
FP32_UNIT_ROUNDOFF = 2.0**-24


def noises(count, shape, dtype, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen).to(device=device, dtype=dtype) for _ in range(count)]


def bound(ns, *weight_rows):
    """Each sum of m products rounds 2m - 1 times in fp32, each by at most u * sum |w_m| |e_m|."""
    largest = max(float(n.abs().max()) for n in ns) if ns[0].numel() else 0.0
    return max(2 * len(ns) * FP32_UNIT_ROUNDOFF * sum(abs(w) for w in row) * largest for row in weight_rows)


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7,), (2, 4, 64, 64), (1, 3, 4, 6, 10), (1000003,)])  # 5-D: video [B, F, C, H, W]
def test_against_float64(shape, dtype, count, device, poisoned_allocations, check_against_float64,
                         check_backends_agree):
    ns = noises(count, shape, dtype, device, seed=count)
    # the quadratic rule's weights at real calls 11, 8, 6 with beta 0.5, and a slope-only fit
    slope, curvature = (0.45, -0.3333, 0.0583)[:count], (0.05, -0.1333, 0.0833)[:count]
    e = bound(ns, slope, curvature)
    results = {}
    for backend in ("triton", "torch"):
        results[backend] = fit_gradient(ns, slope, curvature, backend=backend)
        delta_only, none = fit_gradient(ns, slope, backend=backend)
        assert none is None and torch.equal(delta_only, results[backend][0])
        for out, weights in zip(results[backend], (slope, curvature)):
            reference = sum(w * n.double() for w, n in zip(weights, ns))
            check_against_float64(out, reference, dtype, e)
    for a, b in zip(results["triton"], results["torch"]):
        check_backends_agree(a, b, dtype, e)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_non_contiguous_and_untouched(backend, device):
    a, b, c = noises(3, (2, 4, 16, 24), torch.float32, device)
    a = a.transpose(-1, -2).contiguous().transpose(-1, -2)
    b = b[:, :1].expand(-1, 4, -1, -1)
    before = [t.clone() for t in (a, b, c)]
    delta, curvature = fit_gradient([a, b, c], (1.0, -0.5, -0.5), (0.25, 0.5, -0.75), backend=backend)
    torch.testing.assert_close(delta, a - 0.5 * b - 0.5 * c, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(curvature, 0.25 * a + 0.5 * b - 0.75 * c, rtol=1e-6, atol=1e-6)
    for t, t0 in zip((a, b, c), before):
        assert torch.equal(t, t0)


@pytest.mark.parametrize("call, error, message", [
    (lambda n: fit_gradient(n[:1], (1.0,)), ValueError, "two or three noises"),
    (lambda n: fit_gradient(n[:2], (1.0, -1.0, 0.0)), ValueError, "slope has 3 weights for 2 inputs"),
    (lambda n: fit_gradient(n[:2], (1.0, float("nan"))), ValueError, "finite"),
    (lambda n: fit_gradient(n[:2], (1.0, -1.0), (0.5,)), ValueError, "curvature has 1 weights"),
    (lambda n: fit_gradient([n[0], n[1][:1]], (1.0, -1.0)), ValueError, "shape"),
    (lambda n: fit_gradient([n[0], n[1].double()], (1.0, -1.0)), TypeError, "dtype"),
    (lambda n: fit_gradient(n[:2], "ab"), TypeError, "sequence of numbers"),
])
def test_bad_inputs(call, error, message):
    with pytest.raises(error, match=message):
        call(noises(3, (2, 3), torch.float32, "cpu"))
