"""Request validation shared by both services, on plain values (no protobuf here).

Every problem is a ValueError whose message says what is wrong; the servicers turn it into
INVALID_ARGUMENT.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecdiff.conventions import check_prompt, check_seed
from ecdiff.strategies import Strategy
from ecdiff.strategy_config import StrategyDefaults, StrategyParams


@dataclass(frozen=True)
class RequestLimits:
    max_prompt_chars: int
    max_steps: int


@dataclass(frozen=True)
class ValidRequest:
    prompt: str
    seed: int
    num_steps: int
    strategy_name: str
    strategy: Strategy
    params: StrategyParams
    switch_step: int


def validate_request(prompt: str, seed: int, num_steps: int, strategy_name: str, overrides: dict,
                     limits: RequestLimits, defaults: StrategyDefaults) -> ValidRequest:
    check_prompt(prompt, limits.max_prompt_chars)
    if not 1 <= num_steps <= limits.max_steps:
        raise ValueError(f"num_steps must be in [1, {limits.max_steps}], got {num_steps}")
    check_seed(seed)
    strategy, params = defaults.resolve(strategy_name, num_steps, overrides)
    return ValidRequest(prompt, seed, num_steps, strategy_name, strategy, params, strategy.handoff_step(num_steps))
