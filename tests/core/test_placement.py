"""Device and dtype names -> a placement, and clear refusals of what this machine cannot provide."""

import os

import pytest
import torch

from ecdiff.placement import CPU_FLOAT32, DEVICE_ENV, DTYPE_ENV, Placement, PlacementError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a machine without CUDA")


@no_cuda
def test_auto_is_the_cpu_in_float32_without_cuda(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.delenv(DTYPE_ENV, raising=False)
    assert Placement.resolve() == CPU_FLOAT32 == Placement.resolve("auto", "auto")
    assert Placement.resolve("cpu", "bf16") == Placement(torch.device("cpu"), torch.bfloat16)
    assert Placement.resolve("CPU", torch.float16).dtype == torch.float16


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_fails_with_a_way_out(name):
    with pytest.raises(PlacementError, match=f"'{name}' asked for, but CUDA is not available.*--device cpu"):
        Placement.resolve(name)


@pytest.mark.parametrize("device,dtype,fragment", [
    ("gpu", None, "device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("cuda:x", None, "device must be"),
    ("cpu", "float64", "dtype must be auto, float32, float16, bfloat16"),
    ("cpu", "int8", "dtype must be"),
])
def test_malformed_names_are_refused(device, dtype, fragment):
    with pytest.raises(PlacementError, match=fragment):
        Placement.resolve(device, dtype)


@no_cuda
def test_environment_is_the_default(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    monkeypatch.setenv(DTYPE_ENV, "bfloat16")
    assert Placement.resolve().dtype == torch.bfloat16
    assert Placement.resolve(dtype="float32") == CPU_FLOAT32  # a flag beats the environment
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    with pytest.raises(PlacementError, match="CUDA is not available"):
        Placement.resolve()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_takes_the_gpu_in_float16_where_there_is_one(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)  # tests/conftest.py pins the suite to the CPU
    monkeypatch.delenv(DTYPE_ENV, raising=False)
    placement = Placement.resolve()
    assert placement.device.type == "cuda" and placement.dtype == torch.float16


def test_the_suite_pins_its_models_to_the_cpu():
    # tests/conftest.py: on a GPU machine `auto` would put the tiny pair and the services on CUDA in
    # float16, and the golden and exactness tests would compare other numbers.
    from ecdiff.services.config import CloudConfig, EdgeConfig, load_config

    assert [os.environ.get(name) for name in ("ECDIFF_DEVICE", "ECDIFF_CLOUD_DEVICE", "ECDIFF_EDGE_DEVICE")] == ["cpu"] * 3
    assert Placement.resolve() == CPU_FLOAT32
    for cls, role in ((CloudConfig, "cloud"), (EdgeConfig, "edge")):
        assert load_config(cls, role, {}).placement() == CPU_FLOAT32
