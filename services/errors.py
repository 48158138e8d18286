"""The one place that turns exceptions into gRPC status codes.

Service logic raises plain exceptions (or `RpcError` when it must choose the code itself);
`@status_codes` on every handler, unary or response-streaming, aborts the RPC with the mapped
code and the exception's message (cut to MAX_DETAILS_BYTES). Anything else propagates (gRPC
reports it as UNKNOWN). The request interceptor reports a request that does not parse through
`abort` too (`MalformedRequest`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Optional

import grpc

from ecdiff.diffusionx.store import SessionNotFound
from ecdiff.engine.work import Cancelled, DeadlineExceeded, DeadlineUnmeetable, QueueFull

from .admission import Busy
from .cloud_phase import CloudPhaseLost
from .recovery import CloudRequired


# gRPC carries the details in a percent-encoded trailer, and clients drop a call whose metadata passes
# 8 KiB (as RESOURCE_EXHAUSTED "Stream removed"): a message echoing a huge request field must be cut.
MAX_DETAILS_BYTES = 1024


class MalformedRequest(ValueError):
    """The request's bytes are not a valid message of the method's request type."""


class RpcError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# Checked in order: the first matching class wins (TensorError is a ValueError).
_STATUS_CODES = (
    (SessionNotFound, grpc.StatusCode.NOT_FOUND),
    (Busy, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (QueueFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (DeadlineUnmeetable, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (Cancelled, grpc.StatusCode.CANCELLED),
    (CloudRequired, grpc.StatusCode.UNAVAILABLE),
    (CloudPhaseLost, grpc.StatusCode.UNAVAILABLE),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
)


def status_of(exc: Exception) -> Optional[tuple[grpc.StatusCode, str]]:
    """(code, message) for an exception the services report to the caller, else None."""
    if isinstance(exc, RpcError):
        return exc.code, _details(exc.message)
    for kind, code in _STATUS_CODES:
        if isinstance(exc, kind):
            return code, _details(str(exc))
    return None


def _details(message: str) -> str:
    encoded = message.encode("utf-8", "replace")
    if len(encoded) <= MAX_DETAILS_BYTES:
        return message
    return encoded[:MAX_DETAILS_BYTES].decode("utf-8", "ignore") + f"... ({len(encoded)} bytes, cut)"


def status_codes(handler):
    """Decorate a servicer method so that mapped exceptions end the RPC with their status code."""
    if inspect.isasyncgenfunction(handler):
        @functools.wraps(handler)
        async def streaming(self, request, context):
            try:
                async with contextlib.aclosing(handler(self, request, context)) as events:
                    async for event in events:
                        yield event
            except Exception as exc:
                await abort(context, exc)

        return streaming

    @functools.wraps(handler)
    async def unary(self, request, context):
        try:
            return await handler(self, request, context)
        except Exception as exc:
            await abort(context, exc)

    return unary


async def abort(context, exc: Exception) -> None:
    """End the RPC with the exception's status, or let an unmapped exception propagate."""
    status = status_of(exc)
    if status is None:
        raise exc
    await context.abort(*status)
