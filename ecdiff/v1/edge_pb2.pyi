from ecdiff.v1 import cloud_pb2 as _cloud_pb2
from ecdiff.v1 import strategy_pb2 as _strategy_pb2
from ecdiff.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHASE_UNSPECIFIED: _ClassVar[Phase]
    PHASE_CLOUD: _ClassVar[Phase]
    PHASE_EDGE: _ClassVar[Phase]
    PHASE_DECODE: _ClassVar[Phase]
PHASE_UNSPECIFIED: Phase
PHASE_CLOUD: Phase
PHASE_EDGE: Phase
PHASE_DECODE: Phase

class GenerateRequest(_message.Message):
    __slots__ = ("prompt", "seed", "num_steps", "strategy", "params", "require_cloud", "checkpoint_every", "transfer_dtype", "preview_every", "return_latents", "transfer_encoding", "exact_strategy")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_CLOUD_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_DTYPE_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_EVERY_FIELD_NUMBER: _ClassVar[int]
    RETURN_LATENTS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_ENCODING_FIELD_NUMBER: _ClassVar[int]
    EXACT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    seed: int
    num_steps: int
    strategy: str
    params: _strategy_pb2.StrategyParams
    require_cloud: bool
    checkpoint_every: int
    transfer_dtype: _tensor_pb2.DType
    preview_every: int
    return_latents: bool
    transfer_encoding: _tensor_pb2.Encoding
    exact_strategy: bool
    def __init__(self, prompt: _Optional[str] = ..., seed: _Optional[int] = ..., num_steps: _Optional[int] = ..., strategy: _Optional[str] = ..., params: _Optional[_Union[_strategy_pb2.StrategyParams, _Mapping]] = ..., require_cloud: _Optional[bool] = ..., checkpoint_every: _Optional[int] = ..., transfer_dtype: _Optional[_Union[_tensor_pb2.DType, str]] = ..., preview_every: _Optional[int] = ..., return_latents: _Optional[bool] = ..., transfer_encoding: _Optional[_Union[_tensor_pb2.Encoding, str]] = ..., exact_strategy: _Optional[bool] = ...) -> None: ...

class ContinueRequest(_message.Message):
    __slots__ = ("handoff", "return_latents")
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    RETURN_LATENTS_FIELD_NUMBER: _ClassVar[int]
    handoff: _cloud_pb2.Handoff
    return_latents: bool
    def __init__(self, handoff: _Optional[_Union[_cloud_pb2.Handoff, _Mapping]] = ..., return_latents: _Optional[bool] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("phase", "step", "total_steps", "kind", "preview_png")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_PNG_FIELD_NUMBER: _ClassVar[int]
    phase: Phase
    step: int
    total_steps: int
    kind: _strategy_pb2.StepKind
    preview_png: bytes
    def __init__(self, phase: _Optional[_Union[Phase, str]] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., kind: _Optional[_Union[_strategy_pb2.StepKind, str]] = ..., preview_png: _Optional[bytes] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("strategy", "params", "num_steps", "handoff_step", "cloud_compute_seconds", "transfer_seconds", "edge_compute_seconds", "decode_seconds", "total_seconds", "cloud_calls", "approx_steps", "edge_calls", "bytes_to_cloud", "bytes_from_cloud", "degraded", "degraded_reason", "cloud_model", "edge_model", "cloud_queue_seconds", "downgraded", "served_params", "downgrade_reason", "cloud_resumed_at")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_STEP_FIELD_NUMBER: _ClassVar[int]
    CLOUD_COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EDGE_COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DECODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_CALLS_FIELD_NUMBER: _ClassVar[int]
    APPROX_STEPS_FIELD_NUMBER: _ClassVar[int]
    EDGE_CALLS_FIELD_NUMBER: _ClassVar[int]
    BYTES_TO_CLOUD_FIELD_NUMBER: _ClassVar[int]
    BYTES_FROM_CLOUD_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    CLOUD_MODEL_FIELD_NUMBER: _ClassVar[int]
    EDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    CLOUD_QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DOWNGRADED_FIELD_NUMBER: _ClassVar[int]
    SERVED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    DOWNGRADE_REASON_FIELD_NUMBER: _ClassVar[int]
    CLOUD_RESUMED_AT_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    params: _strategy_pb2.StrategyParams
    num_steps: int
    handoff_step: int
    cloud_compute_seconds: float
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
    edge_model: str
    cloud_queue_seconds: float
    downgraded: bool
    served_params: _strategy_pb2.StrategyParams
    downgrade_reason: str
    cloud_resumed_at: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, strategy: _Optional[str] = ..., params: _Optional[_Union[_strategy_pb2.StrategyParams, _Mapping]] = ..., num_steps: _Optional[int] = ..., handoff_step: _Optional[int] = ..., cloud_compute_seconds: _Optional[float] = ..., transfer_seconds: _Optional[float] = ..., edge_compute_seconds: _Optional[float] = ..., decode_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ..., cloud_calls: _Optional[int] = ..., approx_steps: _Optional[int] = ..., edge_calls: _Optional[int] = ..., bytes_to_cloud: _Optional[int] = ..., bytes_from_cloud: _Optional[int] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[str] = ..., cloud_model: _Optional[str] = ..., edge_model: _Optional[str] = ..., cloud_queue_seconds: _Optional[float] = ..., downgraded: _Optional[bool] = ..., served_params: _Optional[_Union[_strategy_pb2.StrategyParams, _Mapping]] = ..., downgrade_reason: _Optional[str] = ..., cloud_resumed_at: _Optional[_Iterable[int]] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("image_png", "summary", "latents")
    IMAGE_PNG_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    image_png: bytes
    summary: Summary
    latents: _tensor_pb2.Tensor
    def __init__(self, image_png: _Optional[bytes] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ..., latents: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class GenerateEvent(_message.Message):
    __slots__ = ("progress", "notice", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    notice: Notice
    result: Result
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., notice: _Optional[_Union[Notice, _Mapping]] = ..., result: _Optional[_Union[Result, _Mapping]] = ...) -> None: ...
