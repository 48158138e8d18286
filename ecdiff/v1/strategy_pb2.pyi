from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class StepKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_KIND_UNSPECIFIED: _ClassVar[StepKind]
    STEP_KIND_CLOUD: _ClassVar[StepKind]
    STEP_KIND_APPROX: _ClassVar[StepKind]
    STEP_KIND_EDGE: _ClassVar[StepKind]
STEP_KIND_UNSPECIFIED: StepKind
STEP_KIND_CLOUD: StepKind
STEP_KIND_APPROX: StepKind
STEP_KIND_EDGE: StepKind

class StrategyParams(_message.Message):
    __slots__ = ("pre_steps", "k", "alpha", "switch_step", "cloud_steps", "rule", "beta")
    PRE_STEPS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    SWITCH_STEP_FIELD_NUMBER: _ClassVar[int]
    CLOUD_STEPS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    pre_steps: int
    k: int
    alpha: float
    switch_step: int
    cloud_steps: int
    rule: str
    beta: float
    def __init__(self, pre_steps: _Optional[int] = ..., k: _Optional[int] = ..., alpha: _Optional[float] = ..., switch_step: _Optional[int] = ..., cloud_steps: _Optional[int] = ..., rule: _Optional[str] = ..., beta: _Optional[float] = ...) -> None: ...
