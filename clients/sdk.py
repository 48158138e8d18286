"""Python SDK over the generated EdgeDenoiser stubs: `EdgeClient` (sync) and `AsyncEdgeClient`.

    with EdgeClient("127.0.0.1:50052") as client:
        result = client.generate("a small red circle", strategy="ecdiff", seed=7)
        result.save("circle.png"); print(result.summary.total_seconds)

Errors are `grpc.RpcError` with the server's status code and message. Cancel a stream with
`client.stream(request).cancel()` (sync) or by cancelling the awaiting task (async).

A secured edge: `EdgeClient(target, tls_ca="ca.pem", token=...)`, plus `tls_cert`/`tls_key` when
it asks for a client certificate (mutual TLS). Without `tls_ca` the channel is plaintext.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator, Optional

import grpc
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecdiff.wire.tensors import ENCODINGS, from_proto
from ecdiff.v1 import cloud_pb2, edge_pb2, edge_pb2_grpc, strategy_pb2, tensor_pb2

from .credentials import ChannelSecurity, open_aio_channel, open_channel

DEFAULT_EDGE = "127.0.0.1:50052"
# Results carry a PNG (a video's animated PNG): accept up to the edge's send limit (services/config.py).
CLIENT_OPTIONS = (("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 1 << 20))
TRANSFER_DTYPES = {"float32": tensor_pb2.DTYPE_FLOAT32, "float16": tensor_pb2.DTYPE_FLOAT16,
                   "bfloat16": tensor_pb2.DTYPE_BFLOAT16}
EventCallback = Callable[[edge_pb2.GenerateEvent], None]


@dataclass
class GenerateResult:
    image_png: bytes
    summary: edge_pb2.Summary
    notices: list[str] = field(default_factory=list)
    latents: Optional[torch.Tensor] = None  # final latent, when asked for with return_latents

    @property
    def degraded(self) -> bool:
        return self.summary.degraded

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.image_png)
        return path


def generate_request(prompt: str, *, seed: int = 0, num_steps: int = 0, strategy: str = "ecdiff",
                     params: Optional[dict] = None, require_cloud: bool = False,
                     checkpoint_every: Optional[int] = None, transfer_dtype: str = "float32",
                     transfer_encoding: Optional[str] = None, preview_every: int = 0,
                     return_latents: bool = False, exact_strategy: bool = False) -> edge_pb2.GenerateRequest:
    """A GenerateRequest; unset params, num_steps=0 and transfer_encoding=None take the server's
    defaults ("raw" with float32 is the exact transfer). `exact_strategy` forbids the cloud to serve a
    cheaper EC-Diff point under load (load-adaptive quality; `summary.downgraded` says when it did)."""
    if transfer_dtype not in TRANSFER_DTYPES:
        raise ValueError(f"transfer_dtype must be one of {sorted(TRANSFER_DTYPES)}, got {transfer_dtype!r}")
    if transfer_encoding is not None and transfer_encoding not in ENCODINGS:
        raise ValueError(f"transfer_encoding must be one of {sorted(ENCODINGS)}, got {transfer_encoding!r}")
    request = edge_pb2.GenerateRequest(
        prompt=prompt, seed=seed, num_steps=num_steps, strategy=strategy,
        params=strategy_pb2.StrategyParams(**{k: v for k, v in (params or {}).items() if v is not None}),
        require_cloud=require_cloud, transfer_dtype=TRANSFER_DTYPES[transfer_dtype],
        preview_every=preview_every, return_latents=return_latents, exact_strategy=exact_strategy)
    if checkpoint_every is not None:
        request.checkpoint_every = checkpoint_every
    if transfer_encoding is not None:
        request.transfer_encoding = ENCODINGS[transfer_encoding]
    return request


class _Collector:
    def __init__(self, on_event: Optional[EventCallback]) -> None:
        self.on_event = on_event
        self.notices: list[str] = []
        self.result: Optional[edge_pb2.Result] = None

    def feed(self, event: edge_pb2.GenerateEvent) -> None:
        if event.HasField("notice"):
            self.notices.append(event.notice.message)
        elif event.HasField("result"):
            self.result = event.result
        if self.on_event is not None:
            self.on_event(event)

    def finish(self) -> GenerateResult:
        if self.result is None:
            raise RuntimeError("the stream ended without a result")
        r = self.result
        latents = from_proto(r.latents, max_elements=1 << 24, what="result.latents") if r.HasField("latents") else None
        return GenerateResult(r.image_png, r.summary, self.notices, latents)


class EdgeClient:
    """Blocking client."""

    def __init__(self, target: str = DEFAULT_EDGE, *, tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None, token: Optional[str] = None) -> None:
        self.channel = open_channel(target, CLIENT_OPTIONS, ChannelSecurity(tls_ca, tls_cert, tls_key, token))
        self.stub = edge_pb2_grpc.EdgeDenoiserStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)

    def stream(self, request: edge_pb2.GenerateRequest, timeout: Optional[float] = None) -> Iterator[edge_pb2.GenerateEvent]:
        """The raw event stream; the returned call also has `.cancel()`."""
        return self.stub.Generate(request, timeout=timeout)

    def generate(self, prompt: str, *, on_event: Optional[EventCallback] = None, timeout: Optional[float] = None,
                 **options) -> GenerateResult:
        collector = _Collector(on_event)
        for event in self.stream(generate_request(prompt, **options), timeout):
            collector.feed(event)
        return collector.finish()

    def continue_from_handoff(self, handoff: cloud_pb2.Handoff, *, return_latents: bool = False,
                              on_event: Optional[EventCallback] = None, timeout: Optional[float] = None) -> GenerateResult:
        collector = _Collector(on_event)
        request = edge_pb2.ContinueRequest(handoff=handoff, return_latents=return_latents)
        for event in self.stub.ContinueFromHandoff(request, timeout=timeout):
            collector.feed(event)
        return collector.finish()

    def health(self, service: str = "") -> str:
        response = self.health_stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def wait_ready(self, timeout: float = 60.0) -> None:
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "EdgeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncEdgeClient:
    """asyncio client; create it inside the running event loop."""

    def __init__(self, target: str = DEFAULT_EDGE, *, tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None, token: Optional[str] = None) -> None:
        self.channel = open_aio_channel(target, CLIENT_OPTIONS, ChannelSecurity(tls_ca, tls_cert, tls_key, token))
        self.stub = edge_pb2_grpc.EdgeDenoiserStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)

    def stream(self, request: edge_pb2.GenerateRequest, timeout: Optional[float] = None) -> AsyncIterator[edge_pb2.GenerateEvent]:
        return self.stub.Generate(request, timeout=timeout)

    async def generate(self, prompt: str, *, on_event: Optional[EventCallback] = None,
                       timeout: Optional[float] = None, **options) -> GenerateResult:
        collector = _Collector(on_event)
        async for event in self.stream(generate_request(prompt, **options), timeout):
            collector.feed(event)
        return collector.finish()

    async def continue_from_handoff(self, handoff: cloud_pb2.Handoff, *, return_latents: bool = False,
                                    on_event: Optional[EventCallback] = None,
                                    timeout: Optional[float] = None) -> GenerateResult:
        collector = _Collector(on_event)
        request = edge_pb2.ContinueRequest(handoff=handoff, return_latents=return_latents)
        async for event in self.stub.ContinueFromHandoff(request, timeout=timeout):
            collector.feed(event)
        return collector.finish()

    async def health(self, service: str = "") -> str:
        response = await self.health_stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(self.channel.channel_ready(), timeout)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> "AsyncEdgeClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
