"""One line per fact about the machine a benchmark ran on, for its report."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> dict[str, str]:
    try:
        triton_version = version("triton")
    except PackageNotFoundError:
        triton_version = "not installed"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return {
        "cpu": cpu_model(),
        "cpu_cores": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "triton": triton_version,
        "gpu": gpu,
        "python": platform.python_version(),
    }
