from ecdiff.v1 import cloud_pb2 as _cloud_pb2
from ecdiff.v1 import edge_pb2 as _edge_pb2
from ecdiff.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartSessionRequest(_message.Message):
    __slots__ = ("prompt", "seed", "return_latents")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RETURN_LATENTS_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    seed: int
    return_latents: bool
    def __init__(self, prompt: _Optional[str] = ..., seed: _Optional[int] = ..., return_latents: _Optional[bool] = ...) -> None: ...

class ReviseRequest(_message.Message):
    __slots__ = ("session_id", "prompt", "strength", "return_latents")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    RETURN_LATENTS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    prompt: str
    strength: float
    return_latents: bool
    def __init__(self, session_id: _Optional[str] = ..., prompt: _Optional[str] = ..., strength: _Optional[float] = ..., return_latents: _Optional[bool] = ...) -> None: ...

class FinalizeRequest(_message.Message):
    __slots__ = ("session_id", "strength", "approximate", "return_latents", "require_cloud")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    APPROXIMATE_FIELD_NUMBER: _ClassVar[int]
    RETURN_LATENTS_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_CLOUD_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    strength: float
    approximate: bool
    return_latents: bool
    require_cloud: bool
    def __init__(self, session_id: _Optional[str] = ..., strength: _Optional[float] = ..., approximate: _Optional[bool] = ..., return_latents: _Optional[bool] = ..., require_cloud: _Optional[bool] = ...) -> None: ...

class RoundSummary(_message.Message):
    __slots__ = ("round", "strength", "strength_source", "steps_run", "num_steps", "edge_compute_seconds", "decode_seconds", "cloud_compute_seconds", "transfer_seconds", "total_seconds", "cloud_calls", "approx_steps", "bytes_to_cloud", "bytes_from_cloud", "degraded", "degraded_reason", "cloud_resumed_at", "cloud_queue_seconds")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_SOURCE_FIELD_NUMBER: _ClassVar[int]
    STEPS_RUN_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    EDGE_COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DECODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_CALLS_FIELD_NUMBER: _ClassVar[int]
    APPROX_STEPS_FIELD_NUMBER: _ClassVar[int]
    BYTES_TO_CLOUD_FIELD_NUMBER: _ClassVar[int]
    BYTES_FROM_CLOUD_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    CLOUD_RESUMED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOUD_QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    round: int
    strength: float
    strength_source: str
    steps_run: int
    num_steps: int
    edge_compute_seconds: float
    decode_seconds: float
    cloud_compute_seconds: float
    transfer_seconds: float
    total_seconds: float
    cloud_calls: int
    approx_steps: int
    bytes_to_cloud: int
    bytes_from_cloud: int
    degraded: bool
    degraded_reason: str
    cloud_resumed_at: _containers.RepeatedScalarFieldContainer[int]
    cloud_queue_seconds: float
    def __init__(self, round: _Optional[int] = ..., strength: _Optional[float] = ..., strength_source: _Optional[str] = ..., steps_run: _Optional[int] = ..., num_steps: _Optional[int] = ..., edge_compute_seconds: _Optional[float] = ..., decode_seconds: _Optional[float] = ..., cloud_compute_seconds: _Optional[float] = ..., transfer_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ..., cloud_calls: _Optional[int] = ..., approx_steps: _Optional[int] = ..., bytes_to_cloud: _Optional[int] = ..., bytes_from_cloud: _Optional[int] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[str] = ..., cloud_resumed_at: _Optional[_Iterable[int]] = ..., cloud_queue_seconds: _Optional[float] = ...) -> None: ...

class RoundResult(_message.Message):
    __slots__ = ("session_id", "prompt", "image_png", "summary", "latents")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_PNG_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    prompt: str
    image_png: bytes
    summary: RoundSummary
    latents: _tensor_pb2.Tensor
    def __init__(self, session_id: _Optional[str] = ..., prompt: _Optional[str] = ..., image_png: _Optional[bytes] = ..., summary: _Optional[_Union[RoundSummary, _Mapping]] = ..., latents: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class SessionEvent(_message.Message):
    __slots__ = ("progress", "notice", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _edge_pb2.Progress
    notice: _edge_pb2.Notice
    result: RoundResult
    def __init__(self, progress: _Optional[_Union[_edge_pb2.Progress, _Mapping]] = ..., notice: _Optional[_Union[_edge_pb2.Notice, _Mapping]] = ..., result: _Optional[_Union[RoundResult, _Mapping]] = ...) -> None: ...

class RefineRequest(_message.Message):
    __slots__ = ("prompt", "seed", "round", "latents", "strength", "approximate")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    APPROXIMATE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    seed: int
    round: int
    latents: _tensor_pb2.Tensor
    strength: float
    approximate: bool
    def __init__(self, prompt: _Optional[str] = ..., seed: _Optional[int] = ..., round: _Optional[int] = ..., latents: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., strength: _Optional[float] = ..., approximate: _Optional[bool] = ...) -> None: ...

class Refined(_message.Message):
    __slots__ = ("latents", "strength", "strength_source", "start_step", "num_steps", "cloud_calls", "approx_steps", "cloud_compute_seconds", "model_name", "resumed_at", "cloud_queue_seconds")
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_SOURCE_FIELD_NUMBER: _ClassVar[int]
    START_STEP_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_CALLS_FIELD_NUMBER: _ClassVar[int]
    APPROX_STEPS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    RESUMED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOUD_QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    latents: _tensor_pb2.Tensor
    strength: float
    strength_source: str
    start_step: int
    num_steps: int
    cloud_calls: int
    approx_steps: int
    cloud_compute_seconds: float
    model_name: str
    resumed_at: _containers.RepeatedScalarFieldContainer[int]
    cloud_queue_seconds: float
    def __init__(self, latents: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., strength: _Optional[float] = ..., strength_source: _Optional[str] = ..., start_step: _Optional[int] = ..., num_steps: _Optional[int] = ..., cloud_calls: _Optional[int] = ..., approx_steps: _Optional[int] = ..., cloud_compute_seconds: _Optional[float] = ..., model_name: _Optional[str] = ..., resumed_at: _Optional[_Iterable[int]] = ..., cloud_queue_seconds: _Optional[float] = ...) -> None: ...

class RefineEvent(_message.Message):
    __slots__ = ("step", "refined")
    STEP_FIELD_NUMBER: _ClassVar[int]
    REFINED_FIELD_NUMBER: _ClassVar[int]
    step: _cloud_pb2.StepEvent
    refined: Refined
    def __init__(self, step: _Optional[_Union[_cloud_pb2.StepEvent, _Mapping]] = ..., refined: _Optional[_Union[Refined, _Mapping]] = ...) -> None: ...
