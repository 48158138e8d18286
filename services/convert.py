"""Proto <-> core value conversions shared by the servicers and the SDK (messages only, no RPCs)."""

from __future__ import annotations

from ecdiff.strategies import StepKind
from ecdiff.strategy_config import PARAM_NAMES, StrategyParams
from ecdiff.v1 import strategy_pb2

STEP_KINDS = {
    StepKind.CLOUD: strategy_pb2.STEP_KIND_CLOUD,
    StepKind.APPROX: strategy_pb2.STEP_KIND_APPROX,
    StepKind.EDGE: strategy_pb2.STEP_KIND_EDGE,
}
STEP_KIND_NAMES = {wire: kind.value for kind, wire in STEP_KINDS.items()}


def param_overrides(message: strategy_pb2.StrategyParams) -> dict:
    """Only the fields the caller set (unset ones take the server's defaults)."""
    return {name: getattr(message, name) for name in PARAM_NAMES if message.HasField(name)}


def params_to_proto(params: StrategyParams | dict) -> strategy_pb2.StrategyParams:
    values = params.as_dict() if isinstance(params, StrategyParams) else params
    return strategy_pb2.StrategyParams(**values)
