"""Proto `Tensor` <-> torch, with strict validation. The only place that knows the byte layout.

Layout: raw little-endian values of `dtype`, C order; len(data) == itemsize * prod(shape).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ecdiff.v1 import tensor_pb2

MAX_DIMS = 8

# wire dtype -> (torch dtype, itemsize). bf16 has no numpy dtype: it travels as int16 bits.
_WIRE_DTYPES = {
    tensor_pb2.DTYPE_FLOAT32: (torch.float32, 4),
    tensor_pb2.DTYPE_FLOAT16: (torch.float16, 2),
    tensor_pb2.DTYPE_BFLOAT16: (torch.bfloat16, 2),
}
_TORCH_TO_WIRE = {torch_dtype: wire for wire, (torch_dtype, _) in _WIRE_DTYPES.items()}
_BITS_VIEW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}
_NUMPY_BITS = {torch.int32: "<i4", torch.int16: "<i2"}


class TensorError(ValueError):
    """A malformed tensor message; the message says what is wrong."""


def wire_dtype(dtype: int) -> torch.dtype:
    """The torch dtype of a wire dtype (unspecified means float32)."""
    if dtype == tensor_pb2.DTYPE_UNSPECIFIED:
        return torch.float32
    if dtype not in _WIRE_DTYPES:
        raise TensorError(f"unknown dtype {dtype}; expected one of {sorted(_WIRE_DTYPES)}")
    return _WIRE_DTYPES[dtype][0]


def to_proto(tensor: torch.Tensor, dtype: torch.dtype = torch.float32) -> tensor_pb2.Tensor:
    """Encode `tensor` as `dtype` (a lossy cast when narrower than the tensor)."""
    if dtype not in _TORCH_TO_WIRE:
        raise TensorError(f"cannot send dtype {dtype}; expected float32, float16 or bfloat16")
    values = tensor.detach().to("cpu", dtype).contiguous()
    bits = values.view(_BITS_VIEW[dtype]).numpy().astype(_NUMPY_BITS[_BITS_VIEW[dtype]], copy=False)
    return tensor_pb2.Tensor(dtype=_TORCH_TO_WIRE[dtype], shape=list(values.shape), data=bits.tobytes())


def from_proto(message: tensor_pb2.Tensor, *, max_elements: int, max_abs: float = math.inf,
               what: str = "tensor") -> torch.Tensor:
    """Decode and validate (finite values, none beyond +-max_abs); raises TensorError naming `what`
    and the problem."""
    if message.encoding != tensor_pb2.ENCODING_RAW:
        raise TensorError(f"{what}: encoding {message.encoding} is not supported (only ENCODING_RAW)")
    if message.dtype == tensor_pb2.DTYPE_UNSPECIFIED:
        raise TensorError(f"{what}: dtype is unspecified")
    if message.dtype not in _WIRE_DTYPES:
        raise TensorError(f"{what}: unknown dtype {message.dtype}")
    dtype, itemsize = _WIRE_DTYPES[message.dtype]
    shape = tuple(message.shape)
    if not 1 <= len(shape) <= MAX_DIMS:
        raise TensorError(f"{what}: shape must have 1..{MAX_DIMS} dimensions, got {list(shape)}")
    if any(d < 1 for d in shape):
        raise TensorError(f"{what}: every dimension must be >= 1, got shape {list(shape)}")
    count = math.prod(shape)
    if count > max_elements:
        raise TensorError(f"{what}: {count} elements exceed the limit of {max_elements}")
    if len(message.data) != count * itemsize:
        raise TensorError(
            f"{what}: {len(message.data)} bytes do not match dtype {tensor_pb2.DType.Name(message.dtype)} "
            f"x shape {list(shape)} = {count * itemsize} bytes"
        )
    if message.scales:
        raise TensorError(f"{what}: scales are only valid with ENCODING_INT8_PER_CHANNEL")
    bits_dtype = _BITS_VIEW[dtype]
    bits = np.frombuffer(message.data, dtype=_NUMPY_BITS[bits_dtype]).astype(np.dtype(_NUMPY_BITS[bits_dtype]).newbyteorder("="))
    tensor = torch.from_numpy(bits.copy()).view(dtype).reshape(shape)
    if not torch.isfinite(tensor).all():
        raise TensorError(f"{what}: contains NaN or infinite values")
    largest = float(tensor.abs().max())
    if largest > max_abs:
        raise TensorError(f"{what}: a value of magnitude {largest:.3g} is beyond the limit of {max_abs:g}")
    return tensor
