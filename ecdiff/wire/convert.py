"""Proto <-> core value conversions shared by the servicers and the SDK (messages only, no RPCs)."""

from __future__ import annotations

from ecdiff.sampling import StepRecord
from ecdiff.strategies import StepKind
from ecdiff.strategy_config import PARAM_NAMES, StrategyParams
from ecdiff.v1 import cloud_pb2, edge_pb2, strategy_pb2

STEP_KINDS = {
    StepKind.CLOUD: strategy_pb2.STEP_KIND_CLOUD,
    StepKind.APPROX: strategy_pb2.STEP_KIND_APPROX,
    StepKind.EDGE: strategy_pb2.STEP_KIND_EDGE,
}
_WIRE_STEP_KINDS = {wire: kind for kind, wire in STEP_KINDS.items()}


def param_overrides(message: strategy_pb2.StrategyParams) -> dict:
    """Only the fields the caller set (unset ones take the server's defaults)."""
    return {name: getattr(message, name) for name in PARAM_NAMES if message.HasField(name)}


def params_to_proto(params: StrategyParams | dict) -> strategy_pb2.StrategyParams:
    values = params.as_dict() if isinstance(params, StrategyParams) else params
    return strategy_pb2.StrategyParams(**values)


def step_event(record: StepRecord) -> cloud_pb2.StepEvent:
    """A finished step as the cloud streams it (the caller attaches a latent when one is due)."""
    return cloud_pb2.StepEvent(index=record.index, timestep=record.timestep, kind=STEP_KINDS[record.kind],
                               seconds=record.seconds)


def step_record(event: cloud_pb2.StepEvent) -> StepRecord:
    """The inverse of `step_event` (without the latent); an unknown kind is a ValueError."""
    if event.kind not in _WIRE_STEP_KINDS:
        raise ValueError(f"step event {event.index}: unknown step kind {event.kind}")
    return StepRecord(index=event.index, timestep=event.timestep, kind=_WIRE_STEP_KINDS[event.kind],
                      seconds=event.seconds)


def progress(phase: int, record: StepRecord, total_steps: int = 0, preview_png: bytes = b"") -> edge_pb2.Progress:
    """A step as the edge reports it to its caller; total_steps 0 when the schedule is not known yet."""
    return edge_pb2.Progress(phase=phase, step=record.index, total_steps=total_steps, kind=STEP_KINDS[record.kind],
                             preview_png=preview_png)


def decoding_progress(total_steps: int = 0) -> edge_pb2.Progress:
    """The VAE decode has started (step -1: not a denoising step)."""
    return edge_pb2.Progress(phase=edge_pb2.PHASE_DECODE, step=-1, total_steps=total_steps)
