"""The edge's one way to the cloud, shared by EdgeDenoiser.Generate and the DiffusionX sessions:
one aio channel with both stubs, one shaped uplink and one downlink (shared by concurrent requests
like a real device's link), the event timeout, and the credentials the edge presents to the cloud
(its own token, not a user's: users' tokens stop at the edge).
"""

from __future__ import annotations

import logging
from typing import AsyncIterator, Callable, Optional

from ecdiff.clients.credentials import ChannelSecurity, open_aio_channel
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, diffusionx_pb2, diffusionx_pb2_grpc

from .config import CHANNEL_OPTIONS, MAX_CLOUD_MESSAGE_BYTES
from .link import Link, LinkConfig
from .shaped import shaped_stream

log = logging.getLogger(__name__)

# Video handoffs are larger than any request (services/config.py); reconnect quickly after the cloud
# comes back (gRPC's default backoff grows to minutes).
CLOUD_CHANNEL_OPTIONS = tuple(o for o in CHANNEL_OPTIONS if o[0] != "grpc.max_receive_message_length") + (
    ("grpc.max_receive_message_length", MAX_CLOUD_MESSAGE_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


class CloudClient:
    """Create inside the running event loop (it opens an aio channel); `close()` when done."""

    def __init__(self, target: str, link: LinkConfig, event_timeout_s: float,
                 security: ChannelSecurity) -> None:
        self.target = target
        self.channel = open_aio_channel(target, CLOUD_CHANNEL_OPTIONS, security)
        log.info("cloud channel", extra={"fields": {"cloud": target, "tls": security.secure,
                                                    "mutual_tls": security.tls_cert is not None,
                                                    "token": security.token is not None}})
        self.denoiser = cloud_pb2_grpc.CloudDenoiserStub(self.channel)
        self.refiner = diffusionx_pb2_grpc.CloudRefinerStub(self.channel)
        self.uplink, self.downlink = Link(link), Link(link)
        self.event_timeout_s = event_timeout_s

    def denoise(self, request: cloud_pb2.DenoiseRequest, traffic,
                deadline_s: Optional[float]) -> AsyncIterator[cloud_pb2.DenoiseEvent]:
        """CloudDenoiser.Denoise through the shaped link (see `shaped_stream` for `traffic`)."""
        return self._stream(self.denoiser.Denoise, request, traffic, deadline_s)

    def refine(self, request: diffusionx_pb2.RefineRequest, traffic,
               deadline_s: Optional[float]) -> AsyncIterator[diffusionx_pb2.RefineEvent]:
        """CloudRefiner.Refine through the shaped link."""
        return self._stream(self.refiner.Refine, request, traffic, deadline_s)

    def _stream(self, method: Callable, request, traffic, deadline_s: Optional[float]) -> AsyncIterator:
        return shaped_stream(method, request, self.uplink, self.downlink, traffic, deadline_s, self.event_timeout_s)

    async def close(self) -> None:
        await self.channel.close()
