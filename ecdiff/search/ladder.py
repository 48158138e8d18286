"""The ladder of cheaper EC-Diff points for load-adaptive quality, measured (`ecdiff ladder`).

Candidates: the shipped point (configs/strategy.toml) with earlier switch steps and/or fewer
pre-steps, its rule, k and damping kept, each making fewer cloud calls than the shipped point.
Every candidate is measured like a point of the search (`PipelineEvaluator` on the search's
prompts, through the search's disk cache): SSIM against the cloud-only pictures, the scorer's
prompt fidelity, cloud calls. Kept: the Pareto-optimal ones (no other point makes no more cloud
calls and is at least as good in SSIM and fidelity), and of those with equal cloud calls the one of
best SSIM (the cloud's engine tells ladder points apart only by their cost), most expensive first:
the `Frontier` the cloud reads from configs/frontier.toml.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..strategies import PlanCounts
from ..strategy_config import Frontier, FrontierPoint, StrategyDefaults
from .cache import MeasurementCache, point_key
from .evaluator import PipelineEvaluator
from .objective import Measurement
from .params import ECDiffParams

RESULT_FILE = "frontier.toml"
DEFAULT_PRE_STEPS = (7, 4)
DEFAULT_SWITCH_STEPS = (36, 30, 24, 18, 12)


def cloud_calls(params: ECDiffParams) -> int:
    return PlanCounts.of(params.strategy().plan(params.num_steps)).cloud


def candidates(base: ECDiffParams, pre_steps: Sequence[int], switch_steps: Sequence[int]) -> list[ECDiffParams]:
    """Every valid (p, s) of the grids on `base`'s rule, k and damping that makes fewer cloud calls
    than `base`, most cloud calls first."""
    limit = cloud_calls(base)
    points = {base.replace(pre_steps=p, switch_step=s) for p in pre_steps for s in switch_steps
              if 2 <= p <= s <= base.num_steps}
    return sorted((point for point in points if cloud_calls(point) < limit),
                  key=lambda point: (-cloud_calls(point), -point.switch_step, -point.pre_steps))


def frontier_point(params: ECDiffParams, measurement: Measurement, base: StrategyDefaults) -> FrontierPoint:
    p = params.to_defaults(base).params  # the paper's rule takes beta, which it does not read, from `base`
    return FrontierPoint(p.pre_steps, p.k, p.alpha, p.switch_step, p.rule, p.beta, measurement.cloud_calls,
                         measurement.ssim, measurement.fidelity)


def pareto_ladder(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """The points none other dominates, one per cloud-call count (best SSIM), most cloud calls first."""
    kept = [point for point in points if not any(other.dominates(point) for other in points)]
    best: dict[int, FrontierPoint] = {}
    for point in kept:
        if point.cloud_calls not in best or point.ssim > best[point.cloud_calls].ssim:
            best[point.cloud_calls] = point
    return [best[calls] for calls in sorted(best, reverse=True)]


@dataclass(frozen=True)
class LadderOutcome:
    frontier: Frontier
    shipped: FrontierPoint  # the shipped point, measured the same way
    cloud_only_fidelity: Optional[float]
    measured: tuple[FrontierPoint, ...]  # every candidate


def run_ladder(evaluator: PipelineEvaluator, cache_dir: str | Path, out_dir: str | Path, base: StrategyDefaults,
               pre_steps: Sequence[int] = DEFAULT_PRE_STEPS, switch_steps: Sequence[int] = DEFAULT_SWITCH_STEPS,
               source: str = "", command: str = "") -> LadderOutcome:
    """Measure the shipped point and the candidates, keep the ladder; writes ladder.json (every point,
    kept or not) and frontier.toml under `out_dir`. `source` says what was measured on and `command`
    how to run it again, for the header, which names no output folder: the result is installed
    elsewhere and outlives it."""
    shipped_params = ECDiffParams.from_defaults(base, evaluator.num_steps)
    points = candidates(shipped_params, pre_steps, switch_steps)
    if not points:
        raise ValueError(f"no candidate on pre-steps {list(pre_steps)} x switch steps {list(switch_steps)} makes "
                         f"fewer cloud calls than the shipped point ({cloud_calls(shipped_params)})")
    cache = MeasurementCache(cache_dir, evaluator.fingerprint())

    def measured(params: ECDiffParams) -> FrontierPoint:
        measurement, _ = cache.get_or_measure(point_key(params), lambda: evaluator.measure(params),
                                              Measurement.from_dict)
        return frontier_point(params, measurement, base)

    shipped = measured(shipped_params)
    every = tuple(measured(params) for params in points)
    ladder = pareto_ladder(every)
    frontier = Frontier(evaluator.num_steps, evaluator.pair.cloud_model.name, evaluator.pair.edge_model.name,
                        tuple(ladder))
    reference = evaluator.reference_fidelity()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ladder.json").write_text(json.dumps({
        "num_steps": evaluator.num_steps, "cloud_only_fidelity": reference, "shipped": asdict(shipped),
        "candidates": [{**asdict(point), "kept": point in ladder} for point in every],
    }, indent=1) + "\n")
    fidelity = "n/a (no scorer installed)" if reference is None else f"{reference:.1f}"
    header = [
        f"The ladder of cheaper EC-Diff points for load-adaptive quality, measured by `ecdiff ladder` "
        f"(docs/services.md), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        *([source] if source else []),
        f"Shipped point (configs/strategy.toml): p {shipped.pre_steps}, k {shipped.k}, s {shipped.switch_step}, "
        f"rule {shipped.rule}: {shipped.cloud_calls} cloud calls, SSIM {shipped.ssim:.4f}, fidelity "
        f"{'n/a' if shipped.fidelity is None else f'{shipped.fidelity:.1f}'}; cloud-only fidelity {fidelity}.",
        f"Candidates: pre-steps {list(pre_steps)} x switch steps {list(switch_steps)} with fewer cloud calls "
        f"({len(every)}); kept: the Pareto-optimal ones in (SSIM, fidelity, cloud calls), one per cloud-call count.",
        "ssim: mean SSIM against cloud-only; fidelity: mean scorer prompt fidelity (points).",
        *([f"Reproduce: `{command}`; its --out folder gets every candidate, kept or not (ladder.json)."]
          if command else []),
        "Step-indexed values are for num_steps steps; other step counts scale them.",
    ]
    frontier.write(out_dir / RESULT_FILE, "\n".join(header))
    return LadderOutcome(frontier, shipped, reference, every)
