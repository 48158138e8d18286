"""Every bad input to the ops is a clear TypeError/ValueError, on either backend."""

import pytest
import torch

from ecdiff.kernels import approx_steps, correct_step

BACKENDS = ["triton", "torch"]
T = torch.zeros(2, 3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("x,eps,delta,f,g,error,message", [
    (T, torch.zeros(3, 2), T, [1.0], [0.0], ValueError, r"eps has shape \(3, 2\) but x has \(2, 3\)"),
    (T, T, T.half(), [1.0], [0.0], ValueError, "delta has dtype torch.float16 but x has torch.float32"),
    (T, T, torch.zeros(2, 3, device="meta"), [1.0], [0.0], ValueError, "delta is on meta but x is on cpu"),
    (T.long(), T.long(), T.long(), [1.0], [0.0], TypeError, "x has dtype torch.int64; supported"),
    (T.double(), T.double(), T.double(), [1.0], [0.0], TypeError, "x has dtype torch.float64; supported"),
    (T.numpy(), T, T, [1.0], [0.0], TypeError, "x must be a torch.Tensor, got ndarray"),
    (T, T, T, [], [], ValueError, "k must be >= 1"),
    (T, T, T, torch.zeros(0), torch.zeros(0), ValueError, "k must be >= 1"),
    (T, T, T, [1.0, 1.0], [0.0], ValueError, "f has 2 coefficients but g has 1"),
    (T, T, T, torch.ones(2, 2), torch.ones(2, 2), ValueError, r"f must be 1-D .* shape \(2, 2\)"),
    (T, T, T, torch.ones(2, dtype=torch.int64), torch.ones(2), TypeError, "f has dtype torch.int64"),
    (T, T, T, 1.0, [0.0], TypeError, "f must be a 1-D tensor or a sequence of floats, got float"),
    (T, T, T, "ab", "ab", TypeError, "got str"),
    (T, T, T, [1.0], [True], TypeError, r"g\[0\] must be a number, got bool"),
])
def test_approx_steps_rejects(x, eps, delta, f, g, error, message, backend):
    with pytest.raises(error, match=message):
        approx_steps(x, eps, delta, f, g, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("args,error,message", [
    ((T, T, torch.zeros(3), 7.5, T, 1.0, 1.0, 0.1), ValueError, r"eps_uncond has shape \(3,\) but x has"),
    ((T, T, None, 7.5, T.bfloat16(), 1.0, 1.0, 0.1), ValueError, "eps_prev has dtype torch.bfloat16"),
    ((T, T.int(), None, 7.5, None, 1.0, 1.0, 0.1), TypeError, "eps_cond has dtype torch.int32"),
    ((T, T, T, True, T, 1.0, 1.0, 0.1), TypeError, "guidance must be a number, got bool"),
    ((T, T, T, 7.5, T, torch.ones(2), 1.0, 0.1), ValueError, r"alpha must be a scalar or 1-element tensor"),
    ((T, T, T, 7.5, T, 1.0, "1", 0.1), TypeError, "f must be a number or 1-element tensor, got str"),
    ((T, T, T, 7.5, T, 1.0, 1.0, torch.tensor(True)), TypeError, "g has dtype torch.bool"),
    ((T, None, T, 7.5, T, 1.0, 1.0, 0.1), TypeError, "eps_cond must be a torch.Tensor, got NoneType"),
    ((None, T, T, 7.5, T, 1.0, 1.0, 0.1), TypeError, "x must be a torch.Tensor, got NoneType"),
])
def test_correct_step_rejects(args, error, message, backend):
    with pytest.raises(error, match=message):
        correct_step(*args, backend=backend)
