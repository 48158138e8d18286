"""Hostile traffic for `ecdiff bench load --hostile F`: requests a service must survive without
letting the valid ones around them suffer.

Kinds, taken in turn:
- malformed: a request the service must refuse (empty prompt, steps out of range, unknown strategy,
  NaN parameter, unknown dtype or encoding, a message over the 1 MiB limit);
- garbage: random bytes as the request, through a generic call with identity serializers;
- cancel: a valid request the client cancels after its first events;
- deadline: a valid request with a deadline far shorter than a generation;
- disconnect: a valid request whose channel is closed mid-stream, or a TCP connection that sends
  half an HTTP/2 preface and garbage and is then reset.
Each outcome is a status name; `EXPECTED` says which ones each kind may end with.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time

import grpc

from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2, edge_pb2_grpc

KINDS = ("malformed", "garbage", "cancel", "deadline", "disconnect")
# The oversized message is RESOURCE_EXHAUSTED (gRPC's limit); a deadline may be refused up front
# (RESOURCE_EXHAUSTED "deadline cannot be met") or be met by a lucky fast request (OK).
EXPECTED = {
    "malformed": {"INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"},
    "garbage": {"INVALID_ARGUMENT"},
    "cancel": {"CANCELLED", "OK"},
    "deadline": {"DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "OK"},
    "disconnect": {"CANCELLED", "RESET", "OK"},
}
MALFORMED = (
    dict(prompt=""),
    dict(num_steps=-1),
    dict(strategy="turbo"),
    dict(alpha=float("nan")),
    dict(dtype=99),
    dict(encoding=7),
    dict(prompt="x" * ((1 << 20) + 1)),
)


class HostileClient:
    """Hostile requests against the edge's Generate or the cloud's Denoise (`kind`: edge | cloud)."""

    def __init__(self, target: str, kind: str, num_steps: int, options: list) -> None:
        self.target, self.kind, self.num_steps, self.options = target, kind, num_steps, options
        self.channel = grpc.aio.insecure_channel(target, options=options)
        self.method = "/ecdiff.v1.EdgeDenoiser/Generate" if kind == "edge" else "/ecdiff.v1.CloudDenoiser/Denoise"
        self.turn = 0

    def request(self, seed: int, **bad):
        prompt = bad.get("prompt", "a small red circle at the top left on a white background")
        common = dict(prompt=prompt, seed=seed, num_steps=bad.get("num_steps", self.num_steps),
                      strategy=bad.get("strategy", "ecdiff"))
        if "alpha" in bad:
            common["params"] = {"alpha": bad["alpha"]}
        if self.kind == "edge":
            return edge_pb2.GenerateRequest(**common, transfer_dtype=bad.get("dtype", 0),
                                            transfer_encoding=bad.get("encoding", 0))
        return cloud_pb2.DenoiseRequest(**common, latents_dtype=bad.get("dtype", 0), latents_encoding=bad.get("encoding", 0))

    def _call(self, channel, request, timeout: float):
        stub = (edge_pb2_grpc.EdgeDenoiserStub(channel).Generate if self.kind == "edge"
                else cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise)
        return stub(request, timeout=timeout)

    async def one(self, kind: str, seed: int, rng: random.Random) -> tuple[float, str]:
        """(seconds, status name) of one hostile request of `kind`."""
        started = time.perf_counter()
        self.turn += 1
        try:
            if kind == "malformed":
                await self._drain(self._call(self.channel, self.request(seed, **MALFORMED[self.turn % len(MALFORMED)]), 60))
            elif kind == "garbage":
                call = self.channel.unary_stream(self.method)  # no serializers: bytes as they are
                await self._drain(call(rng.randbytes(rng.randint(1, 300)), timeout=60))
            elif kind == "cancel":
                call = self._call(self.channel, self.request(seed), 600)
                for _ in range(rng.randint(1, 3)):
                    await call.read()
                call.cancel()
                return time.perf_counter() - started, "CANCELLED"
            elif kind == "deadline":
                await self._drain(self._call(self.channel, self.request(seed), rng.uniform(0.02, 0.3)))
            elif self.turn % 2:
                await self._close_mid_stream(seed, rng)
                return time.perf_counter() - started, "CANCELLED"
            else:
                await asyncio.to_thread(_reset_connection, self.target, rng)
                return time.perf_counter() - started, "RESET"
            return time.perf_counter() - started, "OK"
        except grpc.aio.AioRpcError as exc:
            return time.perf_counter() - started, exc.code().name

    @staticmethod
    async def _drain(call) -> None:
        async for _ in call:
            pass

    async def _close_mid_stream(self, seed: int, rng: random.Random) -> None:
        """A channel of its own, closed (without grace) while its stream runs."""
        channel = grpc.aio.insecure_channel(self.target, options=self.options)
        try:
            call = self._call(channel, self.request(seed), 600)
            for _ in range(rng.randint(1, 3)):
                await call.read()
        finally:
            await channel.close(None)

    async def close(self) -> None:
        await self.channel.close()


def _reset_connection(target: str, rng: random.Random) -> None:
    """Half the HTTP/2 client preface, random bytes, then an RST instead of a clean close."""
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM" + rng.randbytes(rng.randint(0, 64)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
