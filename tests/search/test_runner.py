import json

import pytest

from ecdiff.search import ECDiffParams, Measurement, SearchConfig, objective_terms
from ecdiff.search.runner import run_search
from ecdiff.strategy_config import StrategyDefaults


class TableEvaluator:
    """Deterministic fake: SSIM from a formula, half the cloud time, true plan cloud-call counts."""

    def __init__(self, tag="table"):
        self.tag, self.calls, self.cloud_calls_made = tag, [], 0

    def fingerprint(self):
        return self.tag

    def cloud_reference(self, num_steps):
        self.cloud_calls_made += 1
        return Measurement(1.0, 2.0, num_steps, num_steps)

    def measure(self, params):
        self.calls.append(params)
        quality = 1.0 - 0.05 * abs(params.k - 3) - abs(params.alpha - 0.7) - 0.01 * abs(params.switch_step - 33)
        counts = params.strategy().plan(params.num_steps).count("cloud")
        return Measurement(quality, 1.0, counts, params.num_steps)


def test_objective_formula():
    cloud = Measurement(1.0, 4.0, 50, 50)
    m = Measurement(0.9, 1.0, 20, 50)
    terms = objective_terms(m, cloud, (0.3, 0.3, 0.4))
    # Efficiency = 1 - 1/4, Burden = 1 - 20/50.
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
    cloud = Measurement(1.0, 2.0, 50, 50)
    for line in (tmp_path / "o" / "points.jsonl").read_text().splitlines():
        point = json.loads(line)
        m = Measurement.from_dict(point["measurement"])
        assert point["terms"] == objective_terms(m, cloud, config.weights).as_dict()
        assert point["terms"]["efficiency"] == 0.5  # 1.0 s against the cloud's 2.0 s
