"""Proto `Tensor` <-> torch, with strict validation. The only place that knows the byte layout.

ENCODING_RAW: little-endian values of `dtype`, C order; len(data) == itemsize * prod(shape).
ENCODING_INT8_PER_CHANNEL: one int8 per value, C order, and one float32 scale per (dim 0, dim 1)
pair (`ecdiff.kernels.encode_int8`: symmetric, absmax / 127); decoded to `dtype`. About a quarter
of float32's bytes; each value within scale / 2 of the original.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ecdiff.kernels.ops import decode_int8, encode_int8
from ecdiff.v1 import tensor_pb2

MAX_DIMS = 8
RAW, INT8 = tensor_pb2.ENCODING_RAW, tensor_pb2.ENCODING_INT8_PER_CHANNEL
ENCODINGS = {"raw": RAW, "int8": INT8}  # the names configuration and flags use

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


def wire_encoding(encoding: int) -> int:
    """A known wire encoding, else TensorError (a peer refuses what it does not know)."""
    if encoding not in (RAW, INT8):
        raise TensorError(f"unknown encoding {encoding}; this peer knows ENCODING_RAW ({RAW}) and "
                          f"ENCODING_INT8_PER_CHANNEL ({INT8})")
    return encoding


def to_proto(tensor: torch.Tensor, dtype: torch.dtype = torch.float32, encoding: int = RAW) -> tensor_pb2.Tensor:
    """Encode `tensor` as `dtype` (a lossy cast when narrower than the tensor), or as int8 codes
    and per-(dim 0, dim 1) scales that decode to `dtype` (lossy; needs >= 2 dimensions)."""
    if dtype not in _TORCH_TO_WIRE:
        raise TensorError(f"cannot send dtype {dtype}; expected float32, float16 or bfloat16")
    if wire_encoding(encoding) == INT8:
        q, scale = encode_int8(tensor.detach())
        return tensor_pb2.Tensor(dtype=_TORCH_TO_WIRE[dtype], shape=list(q.shape), encoding=INT8,
                                 data=q.to("cpu").contiguous().numpy().tobytes(),
                                 scales=scale.to("cpu").reshape(-1).tolist())
    values = tensor.detach().to("cpu", dtype).contiguous()
    bits = values.view(_BITS_VIEW[dtype]).numpy().astype(_NUMPY_BITS[_BITS_VIEW[dtype]], copy=False)
    return tensor_pb2.Tensor(dtype=_TORCH_TO_WIRE[dtype], shape=list(values.shape), data=bits.tobytes())


def from_proto(message: tensor_pb2.Tensor, *, max_elements: int, max_abs: float = math.inf,
               what: str = "tensor") -> torch.Tensor:
    """Decode and validate (finite values, none beyond +-max_abs); raises TensorError naming `what`
    and the problem."""
    try:
        encoding = wire_encoding(message.encoding)
    except TensorError as exc:
        raise TensorError(f"{what}: {exc}") from None
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
    tensor = _int8(message, shape, dtype, what) if encoding == INT8 else _raw(message, shape, dtype, itemsize, what)
    if not torch.isfinite(tensor).all():
        raise TensorError(f"{what}: contains NaN or infinite values")
    largest = float(tensor.abs().max())
    if largest > max_abs:
        raise TensorError(f"{what}: a value of magnitude {largest:.3g} is beyond the limit of {max_abs:g}")
    return tensor


def _raw(message: tensor_pb2.Tensor, shape: tuple[int, ...], dtype: torch.dtype, itemsize: int,
         what: str) -> torch.Tensor:
    count = math.prod(shape)
    if len(message.data) != count * itemsize:
        raise TensorError(
            f"{what}: {len(message.data)} bytes do not match dtype {tensor_pb2.DType.Name(message.dtype)} "
            f"x shape {list(shape)} = {count * itemsize} bytes"
        )
    if message.scales:
        raise TensorError(f"{what}: scales are only valid with ENCODING_INT8_PER_CHANNEL")
    bits_dtype = _BITS_VIEW[dtype]
    bits = np.frombuffer(message.data, dtype=_NUMPY_BITS[bits_dtype]).astype(np.dtype(_NUMPY_BITS[bits_dtype]).newbyteorder("="))
    return torch.from_numpy(bits.copy()).view(dtype).reshape(shape)


def _int8(message: tensor_pb2.Tensor, shape: tuple[int, ...], dtype: torch.dtype, what: str) -> torch.Tensor:
    if len(shape) < 2:
        raise TensorError(f"{what}: ENCODING_INT8_PER_CHANNEL needs >= 2 dimensions (batch, channels, ...), "
                          f"got shape {list(shape)}")
    count = math.prod(shape)
    if len(message.data) != count:
        raise TensorError(f"{what}: {len(message.data)} bytes do not match one int8 per value x shape {list(shape)} "
                          f"= {count} bytes")
    if len(message.scales) != shape[0] * shape[1]:
        raise TensorError(f"{what}: {len(message.scales)} scales; ENCODING_INT8_PER_CHANNEL needs one per (dim 0, "
                          f"dim 1) pair = {shape[0] * shape[1]}")
    scales = torch.tensor(list(message.scales), dtype=torch.float32).reshape(shape[:2])
    if not (torch.isfinite(scales).all() and (scales >= 0).all()):
        raise TensorError(f"{what}: int8 scales must be finite and >= 0")
    q = torch.from_numpy(np.frombuffer(message.data, dtype=np.int8).copy()).reshape(shape)
    return decode_int8(q, scales, dtype)
