"""Backend choice for the kernel ops: "triton", "torch" or auto.

Precedence: the `backend` argument, then the ECDIFF_KERNELS environment variable, then auto.
Auto picks Triton for CUDA tensors when triton imports, else the torch reference, quietly.
An explicit request that cannot be met raises BackendUnavailableError instead of falling back,
so a caller who asked for Triton never silently measures or tests the torch path.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional

import torch

ENV_VAR = "ECDIFF_KERNELS"
BACKENDS = ("triton", "torch")
_AUTO = "auto"


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run on this machine or these tensors."""


def triton_importable() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    if not triton_importable():
        return False
    import triton

    knobs = getattr(triton, "knobs", None)  # triton >= 3.3; older releases read the variable directly
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on")


def resolve_backend(backend: Optional[str], device: torch.device) -> str:
    """The backend ("triton" or "torch") that runs an op on tensors living on `device`."""
    source = "backend argument"
    if backend is None:
        backend, source = os.environ.get(ENV_VAR) or _AUTO, f"environment variable {ENV_VAR}"
    if backend == _AUTO:
        return "triton" if device.type == "cuda" and triton_importable() else "torch"
    if backend not in BACKENDS:
        raise ValueError(f"{source}={backend!r} is not one of {BACKENDS + (_AUTO,)}")
    if backend == "triton":
        _require_triton(device, source)
    return backend


def _require_triton(device: torch.device, source: str) -> None:
    if not triton_importable():
        raise BackendUnavailableError(
            f"{source} asks for 'triton' but the triton package is not installed (pip install 'ecdiff[triton]')"
        )
    if device.type != "cuda" and not triton_interpreting():
        raise BackendUnavailableError(
            f"{source} asks for 'triton' on {device.type} tensors: Triton needs CUDA tensors, "
            "or TRITON_INTERPRET=1 set before triton is imported to run its CPU interpreter"
        )
