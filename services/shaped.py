"""A server-streaming call to the cloud through the shaped edge<->cloud link.

The request waits its serialisation + latency on the uplink before it is sent; each response is
released at its arrival time on the downlink. Bytes are counted on `traffic` (any object with
`bytes_to_cloud` / `bytes_from_cloud`). A gap of `event_timeout_s` without a message raises
asyncio.TimeoutError; the call is cancelled when the consumer stops.
"""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Callable, Optional

import grpc

from .link import Link
from .logs import REQUEST_ID_KEY, request_id


async def sleep_until(at: float) -> None:
    delay = at - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def shaped_stream(method: Callable, request, uplink: Link, downlink: Link, traffic,
                        deadline_s: Optional[float], event_timeout_s: float) -> AsyncIterator:
    nbytes = request.ByteSize()
    traffic.bytes_to_cloud += nbytes
    await sleep_until(uplink.arrival(nbytes, time.perf_counter()))
    call = method(request, timeout=deadline_s, metadata=((REQUEST_ID_KEY, request_id.get()),))
    queue: asyncio.Queue = asyncio.Queue()

    async def read() -> None:
        try:
            async for message in call:
                size = message.ByteSize()
                traffic.bytes_from_cloud += size
                queue.put_nowait((message, downlink.arrival(size, time.perf_counter())))
            queue.put_nowait((None, 0.0))
        except grpc.aio.AioRpcError as exc:
            queue.put_nowait((exc, 0.0))

    reader = asyncio.create_task(read())
    try:
        while True:
            message, arrival = await asyncio.wait_for(queue.get(), event_timeout_s)
            if message is None:
                return
            if isinstance(message, grpc.aio.AioRpcError):
                raise message
            await sleep_until(arrival)
            yield message
    finally:
        call.cancel()
        reader.cancel()
