"""Structured (JSON-lines) logs with a per-RPC request id, set by a server interceptor.

The id comes from the caller's `x-request-id` metadata or is generated, is sent back as
initial metadata, forwarded by the edge to the cloud, and appears on every log line written
while the RPC runs (worker threads included: they run in a copy of the RPC's context).
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid

import grpc

REQUEST_ID_KEY = "x-request-id"
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
log = logging.getLogger("ecdiff.services.rpc")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "request_id": request_id.get(),
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _incoming_id(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and 0 < len(value) <= 64:
            return value
    return uuid.uuid4().hex[:16]


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    """Tags every RPC with a request id and logs its start and end (status, duration)."""

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None or handler.request_streaming:
            return handler
        rid, method = _incoming_id(details), details.method
        if handler.response_streaming:
            behavior = handler.unary_stream

            async def stream(request, context):
                _begin(rid, method)
                await context.send_initial_metadata(((REQUEST_ID_KEY, rid),))
                started = time.perf_counter()
                try:
                    async for item in behavior(request, context):
                        yield item
                finally:
                    _end(method, context, started)

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
        behavior = handler.unary_unary

        async def unary(request, context):
            _begin(rid, method)
            started = time.perf_counter()
            try:
                return await behavior(request, context)
            finally:
                _end(method, context, started)

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)


def _begin(rid: str, method: str) -> None:
    request_id.set(rid)
    log.info("rpc start", extra={"fields": {"method": method}})


def _end(method: str, context, started: float) -> None:
    code = context.code()
    if context.cancelled() and code is None:
        status = "CANCELLED"
    else:
        status = getattr(code, "name", None) or "OK"
    log.info("rpc end", extra={"fields": {"method": method, "status": status,
                                          "seconds": round(time.perf_counter() - started, 4)}})
