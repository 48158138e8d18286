"""Structured (JSON-lines) logs carrying the request id of the RPC being served.

The id is set by `ecdiff.services.interceptor.RequestInterceptor` and appears on every log line
written while the RPC runs (worker threads included: they run in a copy of the RPC's context).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from typing import Iterator

REQUEST_ID_KEY = "x-request-id"
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


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


@contextlib.contextmanager
def json_logs_to_stderr(level: int = logging.INFO) -> Iterator[None]:
    """The root logger writes JSON lines to stderr inside the block and is restored after it.

    The handler holds the stderr of the moment it is made; left installed, a caller in the same
    process (a test capturing stderr) would close that stream under it, and every later log line
    of a server still running in that process would fail ("--- Logging error ---")."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    handlers, previous_level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(level)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(previous_level)
