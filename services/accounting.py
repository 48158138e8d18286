"""What the edge counts about one request, transport-free: the cloud stream's tally, filled
while the stream runs, and the summary of the whole request built from it.

Plain dataclasses in and out (no grpc, no protobuf); the servicers convert to and from the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ecdiff.sampling import StepRecord
from ecdiff.strategies import StepKind, Strategy
from ecdiff.strategy_config import StrategyParams

from .edge_phase import EdgeOutcome


@dataclass(frozen=True)
class Downgraded:
    """The cloud served a cheaper EC-Diff point than requested (load-adaptive quality)."""

    strategy: Strategy  # the edge continues with it
    params: StrategyParams
    reason: str


@dataclass(frozen=True)
class ReceivedHandoff:
    """A handoff the edge has validated: where to continue, and what the cloud reports about its phase."""

    step: int
    latents: torch.Tensor  # entering `step`, float32
    guidance: float
    cloud_calls: int
    approx_steps: int
    compute_seconds: float  # the cloud's queueing excluded
    model_name: str
    queue_seconds: float = 0.0
    downgraded: Optional[Downgraded] = None
    resumed_at: tuple[int, ...] = ()  # the cloud phase resumed on another replica from these steps


@dataclass
class CloudTraffic:
    """Serialized message bytes each way on the edge<->cloud hop (counted by `shaped_stream`)."""

    bytes_to_cloud: int = 0
    bytes_from_cloud: int = 0


def transfer_seconds(wall_seconds: float, cloud_compute_seconds: float, cloud_queue_seconds: float = 0.0) -> float:
    """The edge's wall time for a cloud call less the compute and queueing the cloud reports: the
    transport, shaping included. Never negative: the figures are measured on different clocks."""
    return max(0.0, wall_seconds - cloud_compute_seconds - cloud_queue_seconds)


@dataclass
class CloudStreamTally(CloudTraffic):
    """What the edge received from the cloud's Denoise stream; filled while the stream runs."""

    handoff: Optional[ReceivedHandoff] = None
    checkpoint: Optional[tuple[int, torch.Tensor]] = None  # (step, latent entering it)
    events: int = 0
    cloud_calls: int = 0
    approx_steps: int = 0
    step_seconds: float = 0.0
    wall_seconds: float = 0.0
    failure: Optional[str] = None  # why the stream ended without a handoff

    def add_step(self, record: StepRecord, latents: Optional[torch.Tensor]) -> None:
        """A step event; `latents` (after the step) become the checkpoint to recover from."""
        self.events += 1
        self.cloud_calls += record.kind == StepKind.CLOUD
        self.approx_steps += record.kind == StepKind.APPROX
        self.step_seconds += record.seconds
        if latents is not None:
            self.checkpoint = (record.index + 1, latents)

    def add_handoff(self, handoff: ReceivedHandoff) -> None:
        self.events += 1
        self.handoff = handoff

    def distrust(self, reason: str) -> None:
        """The cloud's latents proved unusable (the edge phase from them ended in NaN): recover as if
        none had arrived."""
        self.handoff, self.checkpoint, self.failure = None, None, reason

    @property
    def compute_seconds(self) -> float:
        """The cloud's own figure when its handoff arrived, else the sum of the steps it streamed."""
        return self.handoff.compute_seconds if self.handoff is not None else self.step_seconds

    @property
    def queue_seconds(self) -> float:
        """The cloud's own figure when its handoff arrived, else unknown and counted as transfer."""
        return self.handoff.queue_seconds if self.handoff is not None else 0.0


@dataclass(frozen=True)
class RequestSummary:
    """Where one request's time, model calls and bytes went (field names as in edge.v1.Summary)."""

    handoff_step: int
    cloud_compute_seconds: float
    cloud_queue_seconds: float
    transfer_seconds: float
    edge_compute_seconds: float
    decode_seconds: float
    total_seconds: float
    cloud_calls: int
    approx_steps: int
    edge_calls: int
    bytes_to_cloud: int
    bytes_from_cloud: int
    degraded: bool
    degraded_reason: str
    cloud_model: str
    downgraded: bool
    downgrade_reason: str
    cloud_resumed_at: tuple[int, ...]


def summarize(tally: CloudStreamTally, edge: EdgeOutcome, *, handoff_step: int, degraded_reason: str,
              contacted_cloud: bool, total_seconds: float) -> RequestSummary:
    """`contacted_cloud`: this edge streamed the cloud phase itself (else there is no transfer time)."""
    handoff = tally.handoff
    downgraded = handoff.downgraded if handoff is not None else None
    return RequestSummary(
        handoff_step=handoff_step, cloud_compute_seconds=tally.compute_seconds, cloud_queue_seconds=tally.queue_seconds,
        transfer_seconds=transfer_seconds(tally.wall_seconds, tally.compute_seconds, tally.queue_seconds)
        if contacted_cloud else 0.0,
        edge_compute_seconds=edge.compute_seconds, decode_seconds=edge.decode_seconds, total_seconds=total_seconds,
        cloud_calls=handoff.cloud_calls if handoff is not None else tally.cloud_calls,
        approx_steps=handoff.approx_steps if handoff is not None else tally.approx_steps,
        edge_calls=edge.edge_calls, bytes_to_cloud=tally.bytes_to_cloud, bytes_from_cloud=tally.bytes_from_cloud,
        degraded=bool(degraded_reason), degraded_reason=degraded_reason,
        cloud_model=handoff.model_name if handoff is not None else "",
        downgraded=downgraded is not None, downgrade_reason=downgraded.reason if downgraded is not None else "",
        cloud_resumed_at=handoff.resumed_at if handoff is not None else ())
