"""One exception type carrying a gRPC status, raised by service logic and turned into
`context.abort` at the top of each handler."""

from __future__ import annotations

import contextlib

import grpc

from .admission import Admission, Busy


class RpcError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@contextlib.contextmanager
def admitted(admission: Admission):
    """Hold one request slot for the block; a full server is RESOURCE_EXHAUSTED."""
    try:
        admission.acquire()
    except Busy as exc:
        raise RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from None
    try:
        yield
    finally:
        admission.release()
