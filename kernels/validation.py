"""Input checks shared by the kernel ops: every bad input becomes a ValueError/TypeError naming it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import torch

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_SUPPORTED = "supported: " + ", ".join(map(str, SUPPORTED_DTYPES))

Scalar = Union[float, int, torch.Tensor]
Coefficients = Union[torch.Tensor, Sequence[float]]


def check_latents(optional: tuple[str, ...] = (), **tensors: Optional[torch.Tensor]) -> None:
    """Checks same-shaped float latents of one dtype and device; names in `optional` may be None."""
    present = {name: t for name, t in tensors.items() if not (t is None and name in optional)}
    first_name, first = next(iter(present.items()))
    for name, t in present.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{name} has dtype {t.dtype}; {_SUPPORTED}")
        if t.shape != first.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but {first_name} has {tuple(first.shape)}")
        if t.dtype != first.dtype:
            raise ValueError(f"{name} has dtype {t.dtype} but {first_name} has {first.dtype}")
        if t.device != first.device:
            raise ValueError(f"{name} is on {t.device} but {first_name} is on {first.device}")


def check_channel_latents(latents: torch.Tensor) -> None:
    """Finite float latents laid out (B, C, ...), for per-(sample, channel) int8 coding."""
    check_latents(latents=latents)
    if latents.dim() < 2:
        raise ValueError(f"latents must be (batch, channels, ...), got shape {tuple(latents.shape)}")
    # NaN/inf would poison the absmax of a whole channel, silently: refuse them
    if not bool(torch.isfinite(latents).all()):
        raise ValueError("latents contain NaN or inf; int8 coding needs finite values")


def check_int8_codes(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> None:
    """Codes and scales as encode_int8 returns them, and a supported output dtype."""
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        raise TypeError(f"q must be an int8 tensor, got {getattr(q, 'dtype', type(q).__name__)}")
    if q.dim() < 2:
        raise ValueError(f"q must be (batch, channels, ...), got shape {tuple(q.shape)}")
    if not isinstance(scale, torch.Tensor) or not scale.is_floating_point():
        raise TypeError(f"scale must be a float tensor, got {getattr(scale, 'dtype', type(scale).__name__)}")
    if scale.shape != q.shape[:2]:
        raise ValueError(f"scale has shape {tuple(scale.shape)}; expected q's (batch, channels) {tuple(q.shape[:2])}")
    if scale.device != q.device:
        raise ValueError(f"scale is on {scale.device} but q is on {q.device}")
    if dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"dtype {dtype} is not supported; {_SUPPORTED}")


def check_coefficients(f: Coefficients, g: Coefficients) -> tuple[torch.Tensor, torch.Tensor]:
    """f and g as 1-D float tensors of equal length k >= 1 (dtype and device unchanged)."""
    f, g = _as_vector("f", f), _as_vector("g", g)
    if f.numel() == 0:
        raise ValueError("f and g are empty: k must be >= 1")
    if f.numel() != g.numel():
        raise ValueError(f"f has {f.numel()} coefficients but g has {g.numel()}")
    return f, g


def check_scalar(name: str, value: Scalar) -> float:
    """A python float from a python number or a 1-element float/int tensor."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got bool")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar or 1-element tensor, got shape {tuple(value.shape)}")
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} has dtype {value.dtype}; expected a real number")
        return float(value.item())
    if not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or 1-element tensor, got {type(value).__name__}")
    return float(value)


def check_weights(name: str, weights: Sequence[float], count: int) -> tuple[float, ...]:
    """`count` finite python floats, one weight per input."""
    if not isinstance(weights, Sequence) or isinstance(weights, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(weights).__name__}")
    if len(weights) != count:
        raise ValueError(f"{name} has {len(weights)} weights for {count} inputs")
    values = tuple(check_scalar(f"{name}[{m}]", w) for m, w in enumerate(weights))
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must hold finite numbers, got {list(values)}")
    return values


def _as_vector(name: str, value: Coefficients) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be a 1-D tensor or a sequence of floats, got {type(value).__name__}")
        value = torch.tensor([check_scalar(f"{name}[{i}]", v) for i, v in enumerate(value)], dtype=torch.float64)
    if not value.is_floating_point():
        raise TypeError(f"{name} has dtype {value.dtype}; coefficients must be a float dtype")
    if value.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one coefficient per step), got shape {tuple(value.shape)}")
    return value
