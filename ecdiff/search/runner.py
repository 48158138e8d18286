"""Runs the two-stage search with an evaluator and a disk cache, and writes everything down.

Output folder:
    points.jsonl  every distinct point evaluated, in order: params, measurement, the seconds per
                  picture its work costs by the step costs, objective terms, and whether the
                  measurement came from the cache
    path.json     the config, the step costs, the path taken (each step with its decision) and
                  the result
    strategy.toml the result, in the strategy-parameter format (`ecdiff.strategy_config`) that the
                  services and the bench read; its header comment says where the values came from
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .cache import MeasurementCache, point_key
from .config import SearchConfig
from .evaluator import Evaluator
from .greedy import SearchOutcome, two_stage_search
from .costs import StepCosts
from .objective import Measurement, objective_terms
from ..strategy_config import StrategyDefaults
from .params import ECDiffParams

RESULT_FILE = "strategy.toml"


def run_search(config: SearchConfig, evaluator: Evaluator, cache_dir: str | Path, out_dir: str | Path,
               base: StrategyDefaults | None = None, source: str = "", command: str = "") -> SearchOutcome:
    """`base` gives the values the search does not tune (HybridSD's); `source` says what was searched
    on (model pair, prompt file) and `command` how to run the search again, for the result's header.
    The header names no output folder: the result is installed elsewhere and outlives it."""
    base = base or StrategyDefaults.load()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = MeasurementCache(cache_dir, evaluator.fingerprint())
    costs, costs_cached = cache.get_or_measure(f"T{config.num_steps}-step-costs",
                                               lambda: evaluator.calibrate(config.num_steps), StepCosts.from_dict)
    points: dict[str, dict] = {}

    def score(params: ECDiffParams) -> float:
        key = point_key(params)
        if key not in points:
            measurement, cached = cache.get_or_measure(key, lambda: evaluator.measure(params), Measurement.from_dict)
            terms = objective_terms(measurement, costs, config.weights)
            points[key] = {"params": params.as_dict(), "measurement": measurement.as_dict(),
                           "costed_latency_s": costs.seconds(measurement.counts),
                           "terms": terms.as_dict(), "from_cache": cached}
        return points[key]["terms"]["value"]

    outcome = two_stage_search(config, score)
    (out_dir / "points.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points.values()))
    (out_dir / "path.json").write_text(json.dumps({
        "config": config.as_dict(),
        "step_costs": {"seconds": costs.as_dict(), "from_cache": costs_cached},
        "path": [step.as_dict() for step in outcome.path],
        "result": {"params": outcome.best.as_dict(), "objective": outcome.objective},
        "evaluations": len(points),
    }, indent=2) + "\n")
    header = [
        f"EC-Diff parameters found by `ecdiff search` (two-stage greedy search, docs/search.md), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        *([source] if source else []),
        f"T = {config.num_steps}, p = {config.pre_steps} fixed; weights (SSIM, Efficiency, Burden) = "
        f"{tuple(config.weights)}; stage-1 switch s' = {config.stage1_switch}.",
        f"Objective J = {outcome.objective:.4f} after {len(points)} evaluated points. [hybrid] is not searched: "
        "kept from the base config.",
        *([f"Reproduce: `{command}`; its --out folder gets every point (points.jsonl) and the path taken "
           "(path.json). Efficiency uses step costs timed by that run, so another machine or load may choose "
           "other values."] if command else []),
        "Step-indexed values (pre_steps, switch_step, cloud_steps) are for num_steps steps; other step counts "
        "scale them proportionally.",
    ]
    outcome.best.to_defaults(base).write(out_dir / RESULT_FILE, "\n".join(header))
    return outcome
