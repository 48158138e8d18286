"""Where the models run: a device and a precision, chosen once per process from names.

`--device` takes `auto` (CUDA when torch sees a GPU, else the CPU), `cpu`, `cuda` or `cuda:N`;
`--dtype` takes `auto` (float16 on CUDA, float32 on the CPU), `float32`, `float16` or `bfloat16`
(fp32 / fp16 / bf16 accepted). A request that this machine cannot meet fails here, at start, with
a message saying what to do, never later inside a model call.

Precision is the models' precision only. The sampling loop's latents stay float32 on every device
(the kernels accumulate in float32 anyway; the UNet's input is cast to its dtype and its output back),
so the wire, the handoff, the seeds' convention (`ecdiff.conventions`: noise drawn on the CPU
generator, then moved) and every recorded latent are the same whatever the placement.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Optional

import torch

AUTO = "auto"
DEVICE_ENV = "ECDIFF_DEVICE"
DTYPE_ENV = "ECDIFF_DTYPE"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "half": "float16"}
_DEVICE_NAME = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

log = logging.getLogger(__name__)


class PlacementError(ValueError):
    """A device or dtype that is malformed or that this machine cannot provide."""


def check_device_name(name: str) -> str:
    """`name` if it is a device name we accept (syntax only: availability is checked by `resolve`)."""
    if not isinstance(name, str) or not _DEVICE_NAME.match(name.strip().lower()):
        raise PlacementError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return name.strip().lower()


def check_dtype_name(name: str) -> str:
    """The canonical dtype name (float32 / float16 / bfloat16 / auto) of `name`."""
    key = name.strip().lower() if isinstance(name, str) else name
    key = DTYPE_ALIASES.get(key, key)
    if key != AUTO and key not in DTYPES:
        raise PlacementError(f"dtype must be auto, {', '.join(DTYPES)} (or fp32, fp16, bf16), got {name!r}")
    return key


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype

    @classmethod
    def resolve(cls, device: Optional[str] = None, dtype: Optional[str | torch.dtype] = None) -> "Placement":
        """The placement for these names (None: $ECDIFF_DEVICE / $ECDIFF_DTYPE, else auto)."""
        device_name = check_device_name(device or os.environ.get(DEVICE_ENV) or AUTO)
        resolved = _resolve_device(device_name)
        if isinstance(dtype, torch.dtype):
            if dtype not in DTYPES.values():
                raise PlacementError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype}")
            chosen = dtype
        else:
            dtype_name = check_dtype_name(dtype or os.environ.get(DTYPE_ENV) or AUTO)
            chosen = (torch.float16 if resolved.type == "cuda" else torch.float32) if dtype_name == AUTO \
                else DTYPES[dtype_name]
        if chosen == torch.bfloat16 and resolved.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise PlacementError(f"bfloat16 is not supported by {torch.cuda.get_device_name(resolved)}; "
                                 "use --dtype float16")
        if chosen != torch.float32 and resolved.type == "cpu":
            log.warning("models run in %s on the CPU: slower and less exact than float32 there",
                        dtype_label(chosen))
        return cls(resolved, chosen)

    def describe(self) -> str:
        return f"{self.device} {dtype_label(self.dtype)}"


CPU_FLOAT32 = Placement(torch.device("cpu"), torch.float32)


def dtype_label(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _resolve_device(name: str) -> torch.device:
    if name == AUTO:
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise PlacementError(
                f"device {name!r} asked for, but CUDA is not available here (torch {torch.__version__}"
                f"{', a CPU-only build' if torch.version.cuda is None else ', no GPU visible'}); "
                "use --device cpu, or --device auto to take a GPU only where one exists")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise PlacementError(f"device {name!r} asked for, but this machine has {count} CUDA device(s) "
                                 f"(cuda:0..cuda:{count - 1})")
    return device
