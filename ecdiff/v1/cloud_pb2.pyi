from ecdiff.v1 import strategy_pb2 as _strategy_pb2
from ecdiff.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DenoiseRequest(_message.Message):
    __slots__ = ("prompt", "seed", "num_steps", "strategy", "params", "latents_every", "latents_dtype", "latents_encoding", "allow_downgrade")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    LATENTS_EVERY_FIELD_NUMBER: _ClassVar[int]
    LATENTS_DTYPE_FIELD_NUMBER: _ClassVar[int]
    LATENTS_ENCODING_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DOWNGRADE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    seed: int
    num_steps: int
    strategy: str
    params: _strategy_pb2.StrategyParams
    latents_every: int
    latents_dtype: _tensor_pb2.DType
    latents_encoding: _tensor_pb2.Encoding
    allow_downgrade: bool
    def __init__(self, prompt: _Optional[str] = ..., seed: _Optional[int] = ..., num_steps: _Optional[int] = ..., strategy: _Optional[str] = ..., params: _Optional[_Union[_strategy_pb2.StrategyParams, _Mapping]] = ..., latents_every: _Optional[int] = ..., latents_dtype: _Optional[_Union[_tensor_pb2.DType, str]] = ..., latents_encoding: _Optional[_Union[_tensor_pb2.Encoding, str]] = ..., allow_downgrade: _Optional[bool] = ...) -> None: ...

class StepEvent(_message.Message):
    __slots__ = ("index", "timestep", "kind", "seconds", "latents")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTEP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    index: int
    timestep: int
    kind: _strategy_pb2.StepKind
    seconds: float
    latents: _tensor_pb2.Tensor
    def __init__(self, index: _Optional[int] = ..., timestep: _Optional[int] = ..., kind: _Optional[_Union[_strategy_pb2.StepKind, str]] = ..., seconds: _Optional[float] = ..., latents: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...

class TextEncoderId(_message.Message):
    __slots__ = ("name", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    sha256: str
    def __init__(self, name: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class Handoff(_message.Message):
    __slots__ = ("step", "num_steps", "latents", "strategy", "params", "scheduler_class", "scheduler_config_sha256", "timesteps", "guidance_scale", "text_encoder", "prompt", "seed", "cloud_calls", "approx_steps", "cloud_compute_seconds", "model_name", "added_conditioning", "vae_sha256", "cloud_queue_seconds", "downgraded", "requested_params", "downgrade_reason", "resumed_at")
    STEP_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_CLASS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_CONFIG_SHA256_FIELD_NUMBER: _ClassVar[int]
    TIMESTEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    TEXT_ENCODER_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CLOUD_CALLS_FIELD_NUMBER: _ClassVar[int]
    APPROX_STEPS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ADDED_CONDITIONING_FIELD_NUMBER: _ClassVar[int]
    VAE_SHA256_FIELD_NUMBER: _ClassVar[int]
    CLOUD_QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DOWNGRADED_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    DOWNGRADE_REASON_FIELD_NUMBER: _ClassVar[int]
    RESUMED_AT_FIELD_NUMBER: _ClassVar[int]
    step: int
    num_steps: int
    latents: _tensor_pb2.Tensor
    strategy: str
    params: _strategy_pb2.StrategyParams
    scheduler_class: str
    scheduler_config_sha256: str
    timesteps: _containers.RepeatedScalarFieldContainer[int]
    guidance_scale: float
    text_encoder: TextEncoderId
    prompt: str
    seed: int
    cloud_calls: int
    approx_steps: int
    cloud_compute_seconds: float
    model_name: str
    added_conditioning: str
    vae_sha256: str
    cloud_queue_seconds: float
    downgraded: bool
    requested_params: _strategy_pb2.StrategyParams
    downgrade_reason: str
    resumed_at: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, step: _Optional[int] = ..., num_steps: _Optional[int] = ..., latents: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., strategy: _Optional[str] = ..., params: _Optional[_Union[_strategy_pb2.StrategyParams, _Mapping]] = ..., scheduler_class: _Optional[str] = ..., scheduler_config_sha256: _Optional[str] = ..., timesteps: _Optional[_Iterable[int]] = ..., guidance_scale: _Optional[float] = ..., text_encoder: _Optional[_Union[TextEncoderId, _Mapping]] = ..., prompt: _Optional[str] = ..., seed: _Optional[int] = ..., cloud_calls: _Optional[int] = ..., approx_steps: _Optional[int] = ..., cloud_compute_seconds: _Optional[float] = ..., model_name: _Optional[str] = ..., added_conditioning: _Optional[str] = ..., vae_sha256: _Optional[str] = ..., cloud_queue_seconds: _Optional[float] = ..., downgraded: _Optional[bool] = ..., requested_params: _Optional[_Union[_strategy_pb2.StrategyParams, _Mapping]] = ..., downgrade_reason: _Optional[str] = ..., resumed_at: _Optional[_Iterable[int]] = ...) -> None: ...

class DenoiseEvent(_message.Message):
    __slots__ = ("step", "handoff")
    STEP_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    step: StepEvent
    handoff: Handoff
    def __init__(self, step: _Optional[_Union[StepEvent, _Mapping]] = ..., handoff: _Optional[_Union[Handoff, _Mapping]] = ...) -> None: ...

class ModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_name", "description", "latent_shape", "scheduler_class", "scheduler_config_json", "scheduler_config_sha256", "text_encoder", "guidance_scale", "max_steps", "max_prompt_chars", "random_weights", "added_conditioning", "vae_sha256")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LATENT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_CLASS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_CONFIG_SHA256_FIELD_NUMBER: _ClassVar[int]
    TEXT_ENCODER_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_CHARS_FIELD_NUMBER: _ClassVar[int]
    RANDOM_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    ADDED_CONDITIONING_FIELD_NUMBER: _ClassVar[int]
    VAE_SHA256_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    description: str
    latent_shape: _containers.RepeatedScalarFieldContainer[int]
    scheduler_class: str
    scheduler_config_json: str
    scheduler_config_sha256: str
    text_encoder: TextEncoderId
    guidance_scale: float
    max_steps: int
    max_prompt_chars: int
    random_weights: bool
    added_conditioning: str
    vae_sha256: str
    def __init__(self, model_name: _Optional[str] = ..., description: _Optional[str] = ..., latent_shape: _Optional[_Iterable[int]] = ..., scheduler_class: _Optional[str] = ..., scheduler_config_json: _Optional[str] = ..., scheduler_config_sha256: _Optional[str] = ..., text_encoder: _Optional[_Union[TextEncoderId, _Mapping]] = ..., guidance_scale: _Optional[float] = ..., max_steps: _Optional[int] = ..., max_prompt_chars: _Optional[int] = ..., random_weights: _Optional[bool] = ..., added_conditioning: _Optional[str] = ..., vae_sha256: _Optional[str] = ...) -> None: ...
