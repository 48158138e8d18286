import struct

import pytest
import torch

from ecdiff.wire.tensors import INT8, TensorError, from_proto, to_proto
from ecdiff.v1 import tensor_pb2

LIMIT = 1 << 16


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_roundtrip_is_exact_in_the_wire_dtype(dtype):
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    message = to_proto(x, dtype)
    assert len(message.data) == x.numel() * torch.finfo(dtype).bits // 8
    torch.testing.assert_close(from_proto(message, max_elements=LIMIT), x.to(dtype), rtol=0, atol=0)


def test_float32_bytes_are_little_endian_c_order():
    x = torch.tensor([[1.0, -2.5], [3.25, 0.5]])
    message = to_proto(x)
    assert message.data == struct.pack("<4f", 1.0, -2.5, 3.25, 0.5)
    assert list(message.shape) == [2, 2] and message.dtype == tensor_pb2.DTYPE_FLOAT32


def _raw(dtype, shape, nbytes, **extra):
    return tensor_pb2.Tensor(dtype=dtype, shape=shape, data=b"\0" * nbytes, **extra)


@pytest.mark.parametrize("message, fragment", [
    (_raw(tensor_pb2.DTYPE_FLOAT32, [1, 4, 8, 8], 1023), "1023 bytes do not match dtype DTYPE_FLOAT32 x shape [1, 4, 8, 8] = 1024 bytes"),
    (_raw(tensor_pb2.DTYPE_FLOAT16, [1, 4, 8, 8], 1024), "= 512 bytes"),
    (_raw(tensor_pb2.DTYPE_BFLOAT16, [3], 8), "= 6 bytes"),
    (_raw(tensor_pb2.DTYPE_UNSPECIFIED, [2], 8), "dtype is unspecified"),
    (_raw(99, [2], 8), "unknown dtype 99"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [], 4), "1..8 dimensions"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [2, 0], 0), "every dimension must be >= 1"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [2, -1], 0), "every dimension must be >= 1"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [1 << 20], 4), "exceed the limit"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [2], 8, encoding=7), "unknown encoding 7; this peer knows ENCODING_RAW (0)"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [2], 2, encoding=INT8, scales=[1.0]), "needs >= 2 dimensions"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [1, 2, 3], 5, encoding=INT8, scales=[1.0, 1.0]), "5 bytes do not match one int8 per value"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [1, 2, 3], 6, encoding=INT8, scales=[1.0]), "1 scales; ENCODING_INT8_PER_CHANNEL needs"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [1, 2, 3], 6, encoding=INT8, scales=[1.0, float("nan")]), "finite and >= 0"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [1, 2, 3], 6, encoding=INT8, scales=[1.0, float("inf")]), "finite and >= 0"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [1, 2, 3], 6, encoding=INT8, scales=[-1.0, 1.0]), "finite and >= 0"),
    (_raw(tensor_pb2.DTYPE_UNSPECIFIED, [1, 2, 3], 6, encoding=INT8, scales=[1.0, 1.0]), "dtype is unspecified"),
    (tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, shape=[1, 2], data=b"\x7f\x7f", encoding=INT8,
                       scales=[3e38, 1.0]), "NaN or infinite"),
    (_raw(tensor_pb2.DTYPE_FLOAT32, [2], 8, scales=[1.0]), "scales are only valid"),
    (tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, shape=[2], data=struct.pack("<2f", 1.0, float("nan"))), "NaN"),
])
def test_malformed_tensors_are_refused_with_a_reason(message, fragment):
    with pytest.raises(TensorError, match="latents: .*") as info:
        from_proto(message, max_elements=LIMIT, what="latents")
    assert fragment in str(info.value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_int8_is_a_byte_a_value_and_decodes_within_half_a_step_of_each_channel(dtype):
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * torch.tensor([1.0, 3.0, 0.1, 0.0]).view(1, 4, 1, 1)
    message = to_proto(x, dtype, INT8)
    assert len(message.data) == x.numel() and len(message.scales) == 2 * 4 and message.encoding == INT8
    decoded = from_proto(message, max_elements=LIMIT)
    assert decoded.dtype == dtype and decoded.shape == x.shape
    step = x.abs().amax(dim=(2, 3)) / 127  # each (sample, channel)'s scale
    error = (decoded.float() - x).abs().amax(dim=(2, 3))
    assert bool((error <= step / 2 + torch.finfo(dtype).eps * x.abs().amax(dim=(2, 3))).all())
    assert bool((decoded[:, 3] == 0).all())  # an all-zero channel stays zero (scale 0)


def test_int8_beyond_the_magnitude_limit_is_refused():
    message = to_proto(torch.full((1, 1, 2), 5e4), encoding=INT8)
    with pytest.raises(TensorError, match="beyond the limit of 10000"):
        from_proto(message, max_elements=LIMIT, max_abs=1e4)
