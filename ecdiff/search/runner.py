"""Runs the two-stage search with an evaluator and a disk cache, and writes everything down.

Output folder:
    points.jsonl  every distinct point evaluated, in order: params, measurement, objective terms,
                  and whether the measurement came from the cache
    path.json     the config, the cloud reference, the path taken (each step with its decision)
                  and the result
    ecdiff.toml   the result, in the parameter-file format the services and the bench read
"""

from __future__ import annotations

import json
from pathlib import Path

from .cache import MeasurementCache, point_key
from .config import SearchConfig
from .evaluator import Evaluator
from .greedy import SearchOutcome, two_stage_search
from .objective import objective_terms
from .params import ECDiffParams, write_params


def run_search(config: SearchConfig, evaluator: Evaluator, cache_dir: str | Path, out_dir: str | Path) -> SearchOutcome:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = MeasurementCache(cache_dir, evaluator.fingerprint())
    cloud, cloud_cached = cache.get_or_measure(f"T{config.num_steps}-cloud", lambda: evaluator.cloud_reference(config.num_steps))
    points: dict[str, dict] = {}

    def score(params: ECDiffParams) -> float:
        key = point_key(params)
        if key not in points:
            measurement, cached = cache.get_or_measure(key, lambda: evaluator.measure(params))
            terms = objective_terms(measurement, cloud, config.weights)
            points[key] = {"params": params.as_dict(), "measurement": measurement.as_dict(),
                           "terms": terms.as_dict(), "from_cache": cached}
        return points[key]["terms"]["value"]

    outcome = two_stage_search(config, score)
    (out_dir / "points.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points.values()))
    (out_dir / "path.json").write_text(json.dumps({
        "config": config.as_dict(),
        "cloud_reference": {"measurement": cloud.as_dict(), "from_cache": cloud_cached},
        "path": [step.as_dict() for step in outcome.path],
        "result": {"params": outcome.best.as_dict(), "objective": outcome.objective},
        "evaluations": len(points),
    }, indent=2) + "\n")
    write_params(
        out_dir / "ecdiff.toml",
        outcome.best,
        notes={"objective": outcome.objective, "weights": list(config.weights),
               "stage1_switch": config.stage1_switch, "evaluations": len(points)},
        header="EC-Diff parameters written by `ecdiff search` (two-stage greedy search, docs/search.md).\n"
               f"Evaluator: {evaluator.fingerprint()[:300]}",
    )
    return outcome
