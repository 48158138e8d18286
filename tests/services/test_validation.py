import pytest

from ecdiff.strategies import HybridSD
from ecdiff.strategy_config import StrategyDefaults
from ecdiff.services.validation import RequestLimits, validate_request

LIMITS = RequestLimits(max_prompt_chars=20, max_steps=100)


def _validate(prompt="a red circle", seed=7, num_steps=10, strategy="hybrid", overrides=None):
    return validate_request(prompt, seed, num_steps, strategy, overrides or {}, LIMITS, StrategyDefaults.load())


def test_a_valid_request_resolves_its_strategy_and_switch_step():
    valid = _validate(overrides={"cloud_steps": 4})
    assert (valid.prompt, valid.seed, valid.num_steps, valid.strategy_name) == ("a red circle", 7, 10, "hybrid")
    assert valid.strategy == HybridSD(4) and valid.switch_step == 4 and valid.params.cloud_steps == 4


@pytest.mark.parametrize("fields, message", [
    ({"prompt": "  "}, "prompt is empty"),
    ({"prompt": "x" * 21}, "prompt has 21 characters; the limit is 20"),
    ({"num_steps": 0}, "num_steps must be in [1, 100], got 0"),
    ({"num_steps": 101}, "num_steps must be in [1, 100], got 101"),
    ({"seed": -1}, "seed must be an integer in [0, 2**64), got -1"),
    ({"seed": 2**64}, "seed must be an integer in [0, 2**64)"),
    ({"strategy": "turbo"}, "unknown strategy"),
])
def test_invalid_requests_say_what_is_wrong(fields, message):
    with pytest.raises(ValueError) as info:
        _validate(**fields)
    assert message in str(info.value)
