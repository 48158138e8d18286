import pytest

from ecdiff.sampling import StepRecord
from ecdiff.strategies import StepKind
from ecdiff.v1 import cloud_pb2, edge_pb2, strategy_pb2
from ecdiff.wire.convert import decoding_progress, param_overrides, params_to_proto, progress, step_event, step_record


@pytest.mark.parametrize("kind", list(StepKind))
def test_step_event_round_trips(kind):
    record = StepRecord(index=3, timestep=781, kind=kind, seconds=0.25)
    event = step_event(record)
    assert (event.index, event.timestep, event.seconds, event.HasField("latents")) == (3, 781, 0.25, False)
    assert step_record(event) == record


def test_an_unknown_step_kind_is_refused():
    with pytest.raises(ValueError, match="unknown step kind 0"):
        step_record(cloud_pb2.StepEvent(index=1, kind=strategy_pb2.STEP_KIND_UNSPECIFIED))


def test_progress_carries_the_step_and_its_kind():
    message = progress(edge_pb2.PHASE_EDGE, StepRecord(4, 500, StepKind.APPROX, 0.1), 10, b"png")
    assert message == edge_pb2.Progress(phase=edge_pb2.PHASE_EDGE, step=4, total_steps=10,
                                        kind=strategy_pb2.STEP_KIND_APPROX, preview_png=b"png")
    assert decoding_progress(10) == edge_pb2.Progress(phase=edge_pb2.PHASE_DECODE, step=-1, total_steps=10)


def test_only_the_parameters_the_caller_set_are_overrides():
    message = params_to_proto({"k": 3, "alpha": 0.25})
    assert param_overrides(message) == {"k": 3, "alpha": 0.25}
