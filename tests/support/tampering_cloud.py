"""A cloud that lies: CloudDenoiser and CloudRefiner forwarding to a real cloud, every event passed
through a test's `tamper(event) -> event` first (a NaN latent, a huge value, a wrong field)."""

from __future__ import annotations

import contextlib
from typing import Callable

import grpc

from ecdiff.v1 import cloud_pb2_grpc, diffusionx_pb2_grpc


class _Tampering(cloud_pb2_grpc.CloudDenoiserServicer, diffusionx_pb2_grpc.CloudRefinerServicer):
    def __init__(self, channel: grpc.aio.Channel, tamper: Callable) -> None:
        self.denoiser = cloud_pb2_grpc.CloudDenoiserStub(channel)
        self.refiner = diffusionx_pb2_grpc.CloudRefinerStub(channel)
        self.tamper = tamper

    async def Denoise(self, request, context):
        async for event in self.denoiser.Denoise(request):
            yield self.tamper(event)

    async def GetModelInfo(self, request, context):
        return await self.denoiser.GetModelInfo(request)

    async def Refine(self, request, context):
        async for event in self.refiner.Refine(request):
            yield self.tamper(event)


@contextlib.contextmanager
def tampering_cloud(services, tamper: Callable):
    """Yield the HOST:PORT of a lying cloud in front of `services`' cloud, on the services' loop."""

    async def start():
        channel = grpc.aio.insecure_channel(services.cloud_target)
        server = grpc.aio.server()
        servicer = _Tampering(channel, tamper)
        cloud_pb2_grpc.add_CloudDenoiserServicer_to_server(servicer, server)
        diffusionx_pb2_grpc.add_CloudRefinerServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, channel, port

    async def stop(server, channel):
        await server.stop(0)
        await channel.close()

    server, channel, port = services.call(start())
    try:
        yield f"127.0.0.1:{port}"
    finally:
        services.call(stop(server, channel))
