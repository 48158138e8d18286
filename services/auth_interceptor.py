"""The server interceptor that checks the bearer token of every RPC, whatever its call type.

No `authorization: Bearer <token>` metadata, or a token the server does not know:
UNAUTHENTICATED. A known token without a right to the method: PERMISSION_DENIED. Messages name
what is missing (and the token's name), never a secret. Health and reflection are open unless the
configuration says otherwise, so load balancers and grpcurl work without a token.
"""

from __future__ import annotations

import logging
from typing import Iterable

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from .tokens import TokenTable

log = logging.getLogger("ecdiff.services.auth")

AUTHORIZATION_KEY = "authorization"
BEARER = "bearer "  # the scheme is case-insensitive (RFC 6750)
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_SERVICE = reflection.SERVICE_NAME


def _bearer(metadata: Iterable) -> str | None:
    for key, value in metadata or ():
        if key == AUTHORIZATION_KEY and isinstance(value, str):
            return value
    return None


def _refusal(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same call type as `handler` that only aborts (a mismatched type would
    misbehave on the wire for streaming calls)."""

    async def refuse(request, context):
        await context.abort(code, message)

    async def refuse_streaming(request, context):
        await context.abort(code, message)
        yield  # never reached: the yield makes this the async generator a streaming response needs

    kinds = {(False, False): (grpc.unary_unary_rpc_method_handler, refuse),
             (False, True): (grpc.unary_stream_rpc_method_handler, refuse_streaming),
             (True, False): (grpc.stream_unary_rpc_method_handler, refuse),
             (True, True): (grpc.stream_stream_rpc_method_handler, refuse_streaming)}
    make, behavior = kinds[(handler.request_streaming, handler.response_streaming)]
    return make(behavior, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: TokenTable, open_services: frozenset[str]) -> None:
        self.tokens = tokens
        self.open_services = open_services  # reachable without a token (health, reflection)

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None:  # unknown method: gRPC answers UNIMPLEMENTED, nothing to protect
            return handler
        method = details.method
        if method.lstrip("/").split("/", 1)[0] in self.open_services:
            return handler
        header = _bearer(details.invocation_metadata)
        if header is None:
            return self._refuse(handler, method, grpc.StatusCode.UNAUTHENTICATED,
                                "missing bearer token: send metadata 'authorization: Bearer <token>'")
        if not header.lower().startswith(BEARER):
            return self._refuse(handler, method, grpc.StatusCode.UNAUTHENTICATED,
                                "the authorization metadata must be 'Bearer <token>'")
        token = self.tokens.find(header[len(BEARER):].strip())
        if token is None:
            return self._refuse(handler, method, grpc.StatusCode.UNAUTHENTICATED, "unknown bearer token")
        if not token.may_call(method):
            return self._refuse(handler, method, grpc.StatusCode.PERMISSION_DENIED,
                                f"token {token.name!r} has no right to call {method}")
        return handler

    def _refuse(self, handler, method: str, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
        log.warning("refused", extra={"fields": {"method": method, "status": code.name, "reason": message}})
        return _refusal(handler, code, message)
