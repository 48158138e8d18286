"""One exception type carrying a gRPC status, raised by service logic and turned into
`context.abort` at the top of each handler."""

from __future__ import annotations

import grpc


class RpcError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message
