"""CloudDenoiser through Ray Serve's own gRPC proxy (`ecdiff serve cloud --ray --ray-grpc-port P`),
beside our front end and on the same replicas, to compare the two (`ecdiff bench ray-proxy`).

Ray's proxy calls the replica method named after the RPC with the parsed request, so here the
servicer runs inside each replica, on the replica's own engine: validation, strategy defaults and
protobuf conversion included. What this path keeps and loses against our front end (no TLS, tokens,
interceptors, `grpc.health.v1`; no client deadline reaches the replica, only its expiry as a
cancellation): docs/services.md.
"""

from __future__ import annotations

from typing import Optional

from ecdiff.strategy_config import Frontier, StrategyDefaults
from ecdiff.v1 import cloud_pb2

from .cloud_servicer import CloudServicer
from .ray_replica import CloudReplica, ReplicaSpec
from .validation import RequestLimits

SERVICER_FUNCTIONS = ["ecdiff.v1.cloud_pb2_grpc.add_CloudDenoiserServicer_to_server"]


class _Aborted(Exception):
    """The servicer ended the RPC with a status; Ray's proxy sends the one set on its context."""


class _RayContext:
    """What `CloudServicer` reads of a grpc.aio context, over Ray's `RayServegRPCContext`."""

    def __init__(self, grpc_context) -> None:
        self.grpc_context = grpc_context

    def time_remaining(self) -> Optional[float]:
        # Ray's context copies the client's metadata, which never holds the deadline (gRPC consumes
        # grpc-timeout), and not time_remaining(); its expiry still cancels this call (docs/services.md).
        return None

    async def abort(self, code, details: str) -> None:
        self.grpc_context.set_code(code)
        self.grpc_context.set_details(details)
        raise _Aborted(details)


class ProxiedCloudReplica(CloudReplica):
    """A replica that also answers Ray's gRPC proxy (our front end keeps calling `denoise`)."""

    def __init__(self, spec: ReplicaSpec, defaults: StrategyDefaults, limits: RequestLimits,
                 frontier: Optional[Frontier]) -> None:
        """`frontier`: the ladder of cheaper points (load-adaptive quality), as our front end offers it."""
        super().__init__(spec)
        self.servicer = CloudServicer(self.identity(), defaults, limits, self.runner, frontier)

    async def Denoise(self, request: cloud_pb2.DenoiseRequest, grpc_context):  # noqa: N802 - the RPC's name
        async for event in self.servicer.Denoise(request, _RayContext(grpc_context)):
            yield event
