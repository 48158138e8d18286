"""Backend choice: argument > ECDIFF_KERNELS > auto; explicit unavailable backends raise."""

import pytest
import torch

from ecdiff.kernels import ENV_VAR, BackendUnavailableError, approx_steps, correct_step, dispatch, ops
from ecdiff.kernels import triton_approx_steps, triton_correct_step

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_auto_picks_triton_for_cuda_and_torch_for_cpu(no_env):
    assert dispatch.resolve_backend(None, CUDA) == "triton"
    assert dispatch.resolve_backend(None, CPU) == "torch"
    assert dispatch.resolve_backend("auto", CPU) == "torch"


def test_auto_falls_back_quietly_without_triton(no_env, monkeypatch):
    monkeypatch.setattr(dispatch, "triton_importable", lambda: False)
    assert dispatch.resolve_backend(None, CUDA) == "torch"


def test_explicit_triton_without_triton_raises(no_env, monkeypatch):
    monkeypatch.setattr(dispatch, "triton_importable", lambda: False)
    with pytest.raises(BackendUnavailableError, match="triton package is not installed"):
        dispatch.resolve_backend("triton", CUDA)


def test_explicit_triton_on_cpu_without_interpreter_raises(no_env, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(BackendUnavailableError, match="TRITON_INTERPRET=1"):
        approx_steps(torch.zeros(3), torch.zeros(3), torch.zeros(3), [1.0], [0.0], backend="triton")


def test_environment_sets_the_default_and_the_argument_wins(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "torch")
    assert dispatch.resolve_backend(None, CUDA) == "torch"
    assert dispatch.resolve_backend("triton", CUDA) == "triton"
    monkeypatch.setenv(ENV_VAR, "auto")
    assert dispatch.resolve_backend(None, CUDA) == "triton"
    monkeypatch.setenv(ENV_VAR, "")  # empty means unset
    assert dispatch.resolve_backend(None, CPU) == "torch"


def test_unknown_names_raise(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "cuda")
    with pytest.raises(ValueError, match=f"environment variable {ENV_VAR}='cuda'"):
        dispatch.resolve_backend(None, CPU)
    with pytest.raises(ValueError, match="backend argument='Triton'"):
        dispatch.resolve_backend("Triton", CPU)


@pytest.fixture
def calls(monkeypatch):
    """Records which implementation each op call reaches."""
    seen = []

    def spy(module, name):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a: seen.append(name) or real(*a))

    spy(ops, "approx_steps_torch")
    spy(ops, "correct_step_torch")
    spy(triton_approx_steps, "approx_steps_triton")
    spy(triton_correct_step, "correct_step_triton")
    return seen


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU routes")
def test_ops_reach_the_chosen_implementation(calls, monkeypatch):
    t = torch.ones(5)
    monkeypatch.delenv(ENV_VAR, raising=False)
    approx_steps(t, t, t, [1.0], [0.5])
    correct_step(t, t, None, 1.0, None, 1.0, 1.0, 0.5)
    monkeypatch.setenv(ENV_VAR, "triton")
    approx_steps(t, t, t, [1.0], [0.5])
    correct_step(t, t, None, 1.0, None, 1.0, 1.0, 0.5)
    approx_steps(t, t, t, [1.0], [0.5], backend="torch")
    assert calls == ["approx_steps_torch", "correct_step_torch", "approx_steps_triton", "correct_step_triton",
                     "approx_steps_torch"]
