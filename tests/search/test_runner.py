import json

import pytest

from ecdiff.search import ECDiffParams, Measurement, SearchConfig, objective_terms
from ecdiff.search.objective import Timing
from ecdiff.strategies import PlanCounts
from ecdiff.search.runner import run_search
from ecdiff.strategy_config import StrategyDefaults


class TableEvaluator:
    """Deterministic fake: SSIM from a formula, half the cloud time, true plan cloud-call counts."""

    def __init__(self, tag="table"):
        self.tag, self.calls, self.timed, self.cloud_calls_made = tag, [], [], 0

    def fingerprint(self):
        return self.tag

    def cloud_reference(self, num_steps):
        self.cloud_calls_made += 1
        return Measurement(1.0, 2.0, num_steps, num_steps, 1.0)

    def measure(self, params, timing):
        self.calls.append(params)
        quality = 1.0 - 0.05 * abs(params.k - 3) - abs(params.alpha - 0.7) - 0.01 * abs(params.switch_step - 33)
        counts = params.strategy().plan(params.num_steps).count("cloud")
        if timing is None:
            self.timed.append(params)
            timing = Timing(1.0, 0.5)
        return Measurement(quality, timing.latency_s, counts, params.num_steps, timing.relative_latency)


class NoisyClock(TableEvaluator):
    """Times every point it is asked to time differently (timing noise), and makes low alpha slightly
    better in SSIM; points of equal work are then ranked right only if they share one timing."""

    def measure(self, params, timing):
        if timing is None:
            timing = Timing(1.0, 0.5 - 0.01 * len(self.timed))  # each new timing looks faster
            self.timed.append(params)
        quality = 0.95 - 0.001 * params.alpha
        counts = params.strategy().plan(params.num_steps).count("cloud")
        self.calls.append(params)
        return Measurement(quality, timing.latency_s, counts, params.num_steps, timing.relative_latency)


def test_objective_formula():
    m = Measurement(0.9, 1.0, 20, 50, 0.25)
    terms = objective_terms(m, (0.3, 0.3, 0.4))
    # Efficiency = 1 - relative latency 1/4 (not the absolute seconds), Burden = 1 - 20/50.
    assert (terms.ssim, terms.efficiency, terms.burden) == (0.9, 0.75, 0.6)
    assert terms.value == pytest.approx(0.3 * 0.9 + 0.3 * 0.75 + 0.4 * 0.6)


def test_run_writes_points_path_and_config_and_reuses_cache(tmp_path):
    config = SearchConfig(weights=(1.0, 0.0, 0.0))
    first = TableEvaluator()
    outcome = run_search(config, first, tmp_path / "cache", tmp_path / "out1")
    assert (outcome.best.k, outcome.best.alpha, outcome.best.switch_step) == (3, 0.7, 33)
    assert first.cloud_calls_made == 1
    keys = [(p.k, p.alpha, p.switch_step) for p in first.calls]
    assert len(keys) == len(set(keys))  # each point measured once, even where the walk revisits it

    points = [json.loads(line) for line in (tmp_path / "out1" / "points.jsonl").read_text().splitlines()]
    assert [(p["params"]["k"], p["params"]["alpha"], p["params"]["switch_step"]) for p in points] == keys
    assert not any(p["from_cache"] for p in points)
    path = json.loads((tmp_path / "out1" / "path.json").read_text())
    assert path["result"]["params"] == outcome.best.as_dict()
    assert path["evaluations"] == len(points)
    assert [s["decision"] for s in path["path"]][0] == "start"
    assert ECDiffParams.from_defaults(StrategyDefaults.load(tmp_path / "out1" / "strategy.toml")) == outcome.best

    second = TableEvaluator()
    again = run_search(config, second, tmp_path / "cache", tmp_path / "out2")
    assert second.calls == [] and second.cloud_calls_made == 0
    assert again.best == outcome.best and again.path == outcome.path
    assert all(json.loads(line)["from_cache"] for line in (tmp_path / "out2" / "points.jsonl").read_text().splitlines())

    third = TableEvaluator(tag="another pair")  # another fingerprint: nothing reused
    run_search(config, third, tmp_path / "cache", tmp_path / "out3")
    assert len(third.calls) == len(first.calls)


def test_recorded_objectives_follow_the_formula(tmp_path):
    config = SearchConfig()
    run_search(config, TableEvaluator(), tmp_path / "c", tmp_path / "o")
    for line in (tmp_path / "o" / "points.jsonl").read_text().splitlines():
        point = json.loads(line)
        m = Measurement.from_dict(point["measurement"])
        assert point["terms"] == objective_terms(m, config.weights).as_dict()
        assert point["terms"]["efficiency"] == 0.5  # relative latency 0.5


def test_points_of_equal_work_share_one_timing(tmp_path):
    config = SearchConfig(k_grid=(2,), s_grid=(35,), s_start=35)  # stage 1 walks alpha only, at equal work
    evaluator = NoisyClock()
    outcome = run_search(config, evaluator, tmp_path / "c", tmp_path / "o")
    works = [PlanCounts.of(p.strategy().plan(50)) for p in evaluator.timed]
    assert len(works) == len(set(works))  # each distinct work timed once
    points = [json.loads(line) for line in (tmp_path / "o" / "points.jsonl").read_text().splitlines()]
    alpha_points = [p for p in points if p["params"]["switch_step"] == 30]
    assert {p["timed_at"] for p in alpha_points} == {"T50-p7-k2-a0.5-s30"}
    assert len({p["terms"]["efficiency"] for p in alpha_points}) == 1
    # With equal timings, SSIM decides: the walk goes down to the lowest alpha. (With its own timing
    # each point would look faster than the last, and the walk would follow the clock instead.)
    assert outcome.best.alpha == 0.1

    # A rerun from the cache scores every point with the same shared timings.
    again = run_search(config, NoisyClock(), tmp_path / "c", tmp_path / "o2")
    assert again.best == outcome.best and again.path == outcome.path
