"""Hypothesis strategies for fuzzing the services: request messages built from their protobuf
descriptors (so a field added to a .proto is fuzzed without touching this file), latent tensors
(well-formed, non-finite, extreme, malformed), and raw bytes for the wire.

A request is a valid one with a few fields replaced: `requests(Cls, valid={...})` draws a valid
value for every field named in `valid`, then overwrites 0-3 fields (any field of the message,
recursively) with adversarial values of the field's type. A quarter of the examples stay valid, so
the fuzzer reaches the model runs behind validation, not only the refusals in front of it.
"""

from __future__ import annotations

import math
import struct
from typing import Mapping, Optional

import numpy as np
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import strategies as st

from ecdiff.v1 import tensor_pb2

INT32, INT64 = (-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1)
UINT32, UINT64 = (0, 2**32 - 1), (0, 2**64 - 1)

# Over gRPC's 1 MiB receive limit: RESOURCE_EXHAUSTED before the server parses anything.
OVERSIZED = 1 << 20


_EDGE_INTEGERS = (0, 1, -1, 2, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1, 2**63)


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = sorted({low, high, *(v for v in _EDGE_INTEGERS if low <= v <= high)})
    return st.one_of(st.sampled_from(edges), st.integers(max(low, -3), min(high, 20)), st.integers(low, high))


FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 5e-324, 1e308, -1e308, math.inf, -math.inf,
                                    math.nan, 3.4e38, 65504.0]),
                   st.floats(allow_nan=True, allow_infinity=True))
FLOATS32 = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -1.0, 3.4e38, -3.4e38, 1e-45, math.inf, -math.inf, math.nan]),
                     st.floats(width=32, allow_nan=True, allow_infinity=True))
# Text a client can send (proto3 strings are UTF-8: lone surrogates cannot be encoded at all).
_CHARS = st.characters(blacklist_categories=("Cs",))
TEXT = st.one_of(
    st.text(_CHARS, max_size=40),
    st.sampled_from(["", " ", "\t\n", "\x00", "\x00" * 50, "\u202e\u200b", "🙂" * 300, "x" * 1000, "x" * 1001,
                     "é" * 1000, "a red circle " * 5000, "\U0010ffff" * 100, "x" * (OVERSIZED + 1)]),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "\x00", "字", "\ufffd"]), st.integers(900, 200_000)),
)
BYTES = st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"\x00" * 1024, b"\xff" * 4096]))


def adversarial(field: FieldDescriptor, depth: int = 0) -> st.SearchStrategy:
    """Any value of the field's wire type, biased to edges (extremes, NaN, empty, huge)."""
    if field.is_repeated:
        one = _scalar(field, depth)
        return st.one_of(st.lists(one, max_size=8),
                         st.builds(lambda v, n: [v] * n, one, st.sampled_from([1000, 50_000])))
    return _scalar(field, depth)


def _scalar(field: FieldDescriptor, depth: int) -> st.SearchStrategy:
    t = field.type
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return _integers(*INT32)
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return _integers(*INT64)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return _integers(*UINT32)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return _integers(*UINT64)
    if t == FieldDescriptor.TYPE_DOUBLE:
        return FLOATS
    if t == FieldDescriptor.TYPE_FLOAT:
        return FLOATS32
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_STRING:
        return TEXT
    if t == FieldDescriptor.TYPE_BYTES:
        return BYTES
    if t == FieldDescriptor.TYPE_ENUM:  # proto3 enums are open: unknown numbers travel as they are
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), _integers(*INT32))
    if t == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == tensor_pb2.Tensor.DESCRIPTOR.full_name:
            return tensors()
        return random_message(field.message_type, depth + 1)
    raise AssertionError(f"no strategy for field type {t} ({field.full_name})")


def _message_class(descriptor: Descriptor):
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


def random_message(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy:
    """A message of `descriptor` with a random subset of fields set to adversarial values."""

    @st.composite
    def build(draw):
        message = _message_class(descriptor)()
        if depth > 2:
            return message
        for field in descriptor.fields:
            if draw(st.booleans()):
                _assign(message, field, draw(adversarial(field, depth)))
        return message

    return build()


def _assign(message, field: FieldDescriptor, value) -> None:
    if field.is_repeated:
        container = getattr(message, field.name)
        del container[:]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                container.add().CopyFrom(item)
        else:
            container.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


def _paths(descriptor: Descriptor, prefix: tuple = (), depth: int = 0) -> list[tuple[FieldDescriptor, ...]]:
    """Every field of the message and of its sub-messages (a few levels deep), as paths."""
    paths = []
    for field in descriptor.fields:
        paths.append(prefix + (field,))
        if (field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated
                and depth < 2):
            paths.extend(_paths(field.message_type, prefix + (field,), depth + 1))
    return paths


def requests(cls, valid: Mapping[str, st.SearchStrategy], max_mutations: int = 3) -> st.SearchStrategy:
    """A valid `cls` message (fields in `valid`; others unset), then 0..max_mutations fields
    (anywhere in the message) overwritten with adversarial values, or cleared."""
    paths = _paths(cls.DESCRIPTOR)

    @st.composite
    def build(draw):
        message = cls()
        for name, strategy in valid.items():
            value = draw(strategy)
            if value is not None:
                _assign(message, cls.DESCRIPTOR.fields_by_name[name], value)
        for path in draw(st.lists(st.sampled_from(paths), max_size=max_mutations, unique=True)):
            target = message
            for parent in path[:-1]:
                target = getattr(target, parent.name)
            field = path[-1]
            if draw(st.integers(0, 5)) == 0:
                target.ClearField(field.name)
            else:
                _assign(target, field, draw(adversarial(field)))
        return message

    return build()


# --- latent tensors -------------------------------------------------------------------------

_NUMPY = {tensor_pb2.DTYPE_FLOAT32: "<f4", tensor_pb2.DTYPE_FLOAT16: "<f2"}


def _encode(values: np.ndarray, dtype: int) -> bytes:
    if dtype == tensor_pb2.DTYPE_BFLOAT16:  # bf16 = the top 16 bits of the float32
        return (values.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
    with np.errstate(over="ignore"):  # 3.4e38 as float16 is meant to become inf
        return values.astype(_NUMPY[dtype]).tobytes()


def latent_tensor(shape: tuple[int, ...], dtype: int = tensor_pb2.DTYPE_FLOAT32, values: Optional[np.ndarray] = None,
                  seed: int = 0) -> tensor_pb2.Tensor:
    """A well-formed raw tensor (standard normal values unless given)."""
    if values is None:
        values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return tensor_pb2.Tensor(dtype=dtype, shape=list(shape), data=_encode(values, dtype))


def tensors(shape: tuple[int, ...] = (1, 4, 8, 8)) -> st.SearchStrategy[tensor_pb2.Tensor]:
    """Latents for a model of `shape`: well-formed, non-finite, extreme, int8-coded (well-formed
    or not), and malformed (wrong dtype, shape, byte count, encoding, scales)."""
    dtypes = st.sampled_from([tensor_pb2.DTYPE_FLOAT32, tensor_pb2.DTYPE_FLOAT16, tensor_pb2.DTYPE_BFLOAT16])

    @st.composite
    def well_formed(draw):
        return latent_tensor(shape, draw(dtypes), seed=draw(st.integers(0, 2**32 - 1)))

    @st.composite
    def special_values(draw):
        values = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(shape).astype(np.float32)
        special = draw(st.sampled_from([math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 65504.0, 1e30, 1e4]))
        flat = values.reshape(-1)
        for index in draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=4)):
            flat[index] = special
        return latent_tensor(shape, draw(dtypes), values)

    @st.composite
    def int8_coded(draw):
        count, channels = math.prod(shape), shape[1]
        data = draw(st.one_of(st.binary(min_size=count, max_size=count), st.binary(max_size=count + 8)))
        scales = draw(st.one_of(
            st.lists(st.floats(2.0**-13, 1.0, width=32), min_size=shape[0] * channels, max_size=shape[0] * channels),
            st.lists(FLOATS32, max_size=2 * channels)))
        return tensor_pb2.Tensor(dtype=draw(st.one_of(dtypes, _integers(*INT32))), shape=list(shape), data=data,
                                 encoding=tensor_pb2.ENCODING_INT8_PER_CHANNEL, scales=scales)

    @st.composite
    def malformed(draw):
        message = latent_tensor(shape, seed=draw(st.integers(0, 2**32 - 1)))
        which = draw(st.sampled_from(["dtype", "shape", "data", "encoding", "scales"]))
        if which == "dtype":
            message.dtype = draw(_integers(*INT32))
        elif which == "shape":
            del message.shape[:]
            message.shape.extend(draw(st.one_of(
                st.lists(_integers(*INT64), max_size=10), st.lists(st.integers(0, 70), max_size=9),
                st.sampled_from([[0], [1, 4, 8, 0], [2**62, 2**62], [-1, -4, 8, 8], [1] * 9, [1] * 100_000]))))
        elif which == "data":
            message.data = draw(st.one_of(st.binary(max_size=300), st.just(message.data[:-1]),
                                          st.just(message.data + b"\x00")))
        elif which == "encoding":
            message.encoding = draw(_integers(*INT32))
        else:
            message.scales.extend(draw(st.lists(FLOATS32, min_size=1, max_size=8)))
        return message

    return st.one_of(well_formed(), special_values(), int8_coded(), malformed(),
                     random_message(tensor_pb2.Tensor.DESCRIPTOR))


# --- bytes on the wire ----------------------------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def _protobuf_shaped(draw):
    """Records that look like protobuf: any field number and wire type, payloads right or wrong."""
    out = bytearray()
    for _ in range(draw(st.integers(1, 6))):
        number, wire = draw(st.integers(1, 40)), draw(st.integers(0, 7))
        out += _varint(number << 3 | wire)
        if wire == 0:
            out += _varint(draw(st.integers(0, 2**70)))
        elif wire == 1:
            out += struct.pack("<d", draw(FLOATS))
        elif wire == 2:
            payload = draw(st.binary(max_size=40))
            out += _varint(draw(st.one_of(st.just(len(payload)), st.integers(0, 2**35)))) + payload
        elif wire == 5:
            out += struct.pack("<f", draw(FLOATS32))
        else:
            out += draw(st.binary(max_size=8))
    return bytes(out)


def wire_bytes(valid: Optional[st.SearchStrategy] = None) -> st.SearchStrategy[bytes]:
    """Raw request bytes: random, protobuf-shaped, or a valid request's encoding with bytes
    flipped, cut or appended."""
    options = [st.binary(max_size=512), _protobuf_shaped()]
    if valid is not None:
        @st.composite
        def corrupted(draw):
            data = bytearray(draw(valid).SerializeToString())
            for _ in range(draw(st.integers(1, 4))):
                if data and draw(st.booleans()):
                    data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
                else:
                    data = data[:draw(st.integers(0, len(data)))] + draw(st.binary(max_size=8))
            return bytes(data)

        options.append(corrupted())
    return st.one_of(options)
