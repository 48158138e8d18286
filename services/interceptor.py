"""The server interceptor: request id, start/end log lines, and in-flight RPC tracking.

The request id comes from the caller's `x-request-id` metadata or is generated; it is sent back
as initial metadata and forwarded by the edge to the cloud. Tracking the handler tasks lets a
stopping server cancel what is still running when the grace period ends (grpc.aio's own
`stop(grace)` does not interrupt a handler that keeps streaming).

It also parses the request itself: bytes that are not a valid message of the method's request
type are INVALID_ARGUMENT saying so (gRPC's own deserializer would end the call as UNKNOWN).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from typing import Optional

import grpc
from google.protobuf.message import DecodeError

from .errors import MalformedRequest, abort
from .logs import REQUEST_ID_KEY, request_id
from .metrics import RpcStats

log = logging.getLogger("ecdiff.services.rpc")


def _incoming_id(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and 0 < len(value) <= 64:
            return value
    return uuid.uuid4().hex[:16]


class RequestInterceptor(grpc.aio.ServerInterceptor):
    """Tags every RPC with a request id, logs its start and end (status, duration), tracks it."""

    def __init__(self, rpcs: Optional[RpcStats] = None) -> None:
        self.in_flight: set[asyncio.Task] = set()
        self.rpcs = rpcs  # RPC durations and statuses for the metrics exporter

    def cancel_in_flight(self) -> int:
        """Cancel every RPC handler still running; each stops its denoising loop within one step."""
        for task in self.in_flight:
            task.cancel()
        return len(self.in_flight)

    def _track(self, rid: str, method: str) -> asyncio.Task:
        request_id.set(rid)
        log.info("rpc start", extra={"fields": {"method": method}})
        task = asyncio.current_task()
        self.in_flight.add(task)
        return task

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None or handler.request_streaming:
            return handler
        rid, method = _incoming_id(details), details.method
        parse = _parser(handler.request_deserializer)
        if handler.response_streaming:
            behavior = _as_async_generator(handler.unary_stream)

            async def stream(raw, context):
                task = self._track(rid, method)
                await context.send_initial_metadata(((REQUEST_ID_KEY, rid),))
                started, finished = time.perf_counter(), False
                try:
                    request = await parse(raw, context)
                    async for item in behavior(request, context):
                        yield item
                    finished = True
                finally:
                    self.in_flight.discard(task)
                    _end(method, context, started, finished, self.rpcs)

            return grpc.unary_stream_rpc_method_handler(stream, response_serializer=handler.response_serializer)
        behavior = handler.unary_unary

        async def unary(raw, context):
            task = self._track(rid, method)
            started = time.perf_counter()
            finished = False
            try:
                response = await behavior(await parse(raw, context), context)
                finished = True
                return response
            finally:
                self.in_flight.discard(task)
                _end(method, context, started, finished, self.rpcs)

        return grpc.unary_unary_rpc_method_handler(unary, response_serializer=handler.response_serializer)


def _parser(deserializer):
    """The request from its bytes, or the call ends with INVALID_ARGUMENT saying why."""

    async def parse(raw: bytes, context):
        if deserializer is None:
            return raw
        try:
            return deserializer(raw)
        except DecodeError as exc:
            await abort(context, MalformedRequest(f"malformed request ({len(raw)} bytes): {exc}"))

    return parse


def _as_async_generator(behavior):
    """A streaming handler that writes with `await context.write(...)` (grpc's Health.Watch) is a
    coroutine function, not an async generator one: wrap it as an async generator yielding nothing."""
    if inspect.isasyncgenfunction(behavior):
        return behavior

    async def writing(request, context):
        await behavior(request, context)
        return
        yield  # noqa: unreachable - makes this an async generator

    return writing


def _end(method: str, context, started: float, finished: bool, rpcs: Optional[RpcStats]) -> None:
    code = context.code()
    if code is not None:
        status = code.name if hasattr(code, "name") else str(code)
    else:
        # Ended without a status: completed, or abandoned (cancelled, deadline, server stop).
        status = "OK" if finished else "CANCELLED"
    seconds = time.perf_counter() - started
    log.info("rpc end", extra={"fields": {"method": method, "status": status, "seconds": round(seconds, 4)}})
    if rpcs is not None:
        rpcs.observe(method, status, seconds)
