"""`@status_codes`: the one exception -> status code map, on unary and streaming handlers."""

import asyncio

import grpc
import pytest

from ecdiff.diffusionx.store import SessionNotFound
from ecdiff.services.admission import Busy
from ecdiff.services.errors import MAX_DETAILS_BYTES, RpcError, status_codes
from ecdiff.services.recovery import CloudRequired
from ecdiff.wire.tensors import TensorError


class Aborted(Exception):
    pass


class FakeContext:
    """Records the abort, then raises as grpc.aio's context.abort does."""

    async def abort(self, code, details):
        self.status = (code, details)
        raise Aborted


class Handlers:
    def __init__(self, exc):
        self.exc = exc

    @status_codes
    async def Unary(self, request, context):
        raise self.exc

    @status_codes
    async def Streaming(self, request, context):
        yield "first"
        raise self.exc


async def _drain(events):
    return [event async for event in events]


def _unary(exc, context):
    return asyncio.run(Handlers(exc).Unary(None, context))


def _streaming(exc, context):
    return asyncio.run(_drain(Handlers(exc).Streaming(None, context)))


@pytest.mark.parametrize("run", [_unary, _streaming])
@pytest.mark.parametrize("exc, code", [
    (RpcError(grpc.StatusCode.FAILED_PRECONDITION, "incompatible"), grpc.StatusCode.FAILED_PRECONDITION),
    (SessionNotFound("unknown session 'x'"), grpc.StatusCode.NOT_FOUND),
    (Busy("server busy"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (CloudRequired("cloud unreachable"), grpc.StatusCode.UNAVAILABLE),
    (ValueError("prompt is empty"), grpc.StatusCode.INVALID_ARGUMENT),
    (TensorError("latents: NaN"), grpc.StatusCode.INVALID_ARGUMENT),
])
def test_mapped_exceptions_abort_with_their_code_and_message(run, exc, code):
    context = FakeContext()
    with pytest.raises(Aborted):
        run(exc, context)
    assert context.status == (code, str(exc))


@pytest.mark.parametrize("run", [_unary, _streaming])
def test_other_exceptions_propagate(run):
    with pytest.raises(KeyError):  # a bug, not the caller's fault: gRPC reports UNKNOWN
        run(KeyError("bug"), FakeContext())


@pytest.mark.parametrize("run", [_unary, _streaming])
def test_a_long_message_is_cut_to_what_a_trailer_carries(run):
    context = FakeContext()
    with pytest.raises(Aborted):
        run(ValueError("unknown session '" + "字" * 5000 + "'"), context)
    code, details = context.status
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("unknown session '字") and details.endswith("(15018 bytes, cut)")
    assert len(details.split("...")[0].encode()) <= MAX_DETAILS_BYTES
