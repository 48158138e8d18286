"""Compiled kernels on a real GPU (skipped here: this machine has none)."""

import pytest
import torch

from ecdiff.kernels import ENV_VAR, approx_steps, correct_step

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_auto_runs_triton_on_cuda_with_host_float64_coefficients(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    x, eps, delta = (torch.randn(2, 4, 128, 128, device="cuda") for _ in range(3))
    f = torch.tensor([1.02, 0.98, 1.05], dtype=torch.float64)  # on the host, as the core keeps them
    g = torch.tensor([0.1, 0.2, 0.15], dtype=torch.float64)
    auto, torch_out = approx_steps(x, eps, delta, f, g), approx_steps(x, eps, delta, f, g, backend="torch")
    for a, b in zip(auto, torch_out):
        assert a.is_cuda
        # fp32 both ways; |values| < 30 and the two formulations round differently by a few ulps
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_correct_step_compiled_matches_torch():
    x, cond, uncond, prev = (torch.randn(16, 13, 60, 90, device="cuda", dtype=torch.bfloat16) for _ in range(4))
    args = (x, cond, uncond, 7.5, prev, 0.7, 1.08, 0.21)
    for a, b in zip(correct_step(*args, backend="triton"), correct_step(*args, backend="torch")):
        # both round one fp32 result to bf16 (nearest even when compiled); fp32 paths may differ
        # in the last fp32 bits (FMA contraction), which can flip one bf16 rounding: one ulp, 2**-7
        torch.testing.assert_close(a.float(), b.float(), rtol=2.0**-7, atol=1e-3)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs a second CUDA device")
def test_every_kernel_runs_on_a_device_that_is_not_the_current_one():
    from ecdiff.kernels import decode_int8, encode_int8, fit_gradient

    assert torch.cuda.current_device() == 0  # Triton launches on this one unless told otherwise
    x, eps, delta, prev = (torch.randn(2, 4, 32, 32, device="cuda:1") for _ in range(4))
    f, g = torch.tensor([1.02, 0.98]), torch.tensor([0.1, 0.2])
    pairs = [(approx_steps(x, eps, delta, f, g), approx_steps(x, eps, delta, f, g, backend="torch")),
             (correct_step(x, eps, prev, 7.5, delta, 0.5, 1.02, 0.1),
              correct_step(x, eps, prev, 7.5, delta, 0.5, 1.02, 0.1, backend="torch")),
             (fit_gradient([x, eps, delta], [1.0, -2.0, 1.0], [0.5, 0.5, 0.5]),
              fit_gradient([x, eps, delta], [1.0, -2.0, 1.0], [0.5, 0.5, 0.5], backend="torch")),
             (encode_int8(x), encode_int8(x, backend="torch"))]
    q, scale = pairs[-1][1]
    pairs.append(((decode_int8(q, scale),), (decode_int8(q, scale, backend="torch"),)))
    for triton_out, torch_out in pairs:
        for a, b in zip(triton_out, torch_out):
            assert a.device == torch.device("cuda:1")
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
