import json

import pytest

from ecdiff.search import ECDiffParams, Measurement, SearchConfig, StepCosts, objective_terms
from ecdiff.search.runner import run_search
from ecdiff.strategies import PlanCounts
from ecdiff.strategy_config import StrategyDefaults


COSTS = StepCosts(cloud_s=0.07, approx_s=0.001, edge_s=0.02, cloud_only_overhead_s=0.1, collaborative_overhead_s=0.15)


def _measurement(params, quality, latency_s=1.0):
    counts = PlanCounts.of(params.strategy().plan(params.num_steps))
    return Measurement(quality, latency_s, counts.cloud, counts.approx, counts.edge, params.num_steps)


class TableEvaluator:
    """Deterministic fake: SSIM from a formula, fixed step costs, true plan counts."""

    def __init__(self, tag="table"):
        self.tag, self.calls, self.calibrations = tag, [], 0

    def fingerprint(self):
        return self.tag

    def calibrate(self, num_steps):
        self.calibrations += 1
        return COSTS

    def measure(self, params):
        self.calls.append(params)
        quality = 1.0 - 0.05 * abs(params.k - 3) - abs(params.alpha - 0.7) - 0.01 * abs(params.switch_step - 33)
        return _measurement(params, quality)


def test_objective_formula():
    m = Measurement(0.9, 1.0, 20, 10, 20, 50)
    terms = objective_terms(m, COSTS, (0.3, 0.3, 0.4))
    # t(cloud) = 0.1 + 50 * 0.07 = 3.6 s; t = 0.15 + 20 * 0.07 + 10 * 0.001 + 20 * 0.02 = 1.96 s; Burden = 1 - 20/50.
    assert terms.efficiency == pytest.approx(1 - 1.96 / 3.6)
    assert (terms.ssim, terms.burden) == (0.9, 0.6)
    assert terms.value == pytest.approx(0.3 * 0.9 + 0.3 * (1 - 1.96 / 3.6) + 0.4 * 0.6)


def test_run_writes_points_path_and_config_and_reuses_cache(tmp_path):
    config = SearchConfig(weights=(1.0, 0.0, 0.0))
    first = TableEvaluator()
    outcome = run_search(config, first, tmp_path / "cache", tmp_path / "out1")
    # every rule scores alike here except through alpha, which only the paper's rule reads: it wins
    assert (outcome.best.rule, outcome.best.k, outcome.best.alpha, outcome.best.switch_step) == ("paper", 3, 0.7, 33)
    assert first.calibrations == 1
    keys = [(p.rule, p.k, p.alpha if p.rule == "paper" else p.beta, p.switch_step) for p in first.calls]
    assert len(keys) == len(set(keys))  # each point measured once, even where the walk revisits it
    assert {p.rule for p in first.calls} == {"paper", "slope", "lsq", "quadratic"}

    points = [json.loads(line) for line in (tmp_path / "out1" / "points.jsonl").read_text().splitlines()]
    assert [(p["params"]["rule"], p["params"]["k"], p["params"]["alpha" if p["params"]["rule"] == "paper" else "beta"],
             p["params"]["switch_step"]) for p in points] == keys
    assert not any(p["from_cache"] for p in points)
    path = json.loads((tmp_path / "out1" / "path.json").read_text())
    assert path["result"]["params"] == outcome.best.as_dict()
    assert path["evaluations"] == len(points)
    assert [s["decision"] for s in path["path"]][0] == "start"
    assert ECDiffParams.from_defaults(StrategyDefaults.load(tmp_path / "out1" / "strategy.toml")) == outcome.best

    second = TableEvaluator()
    again = run_search(config, second, tmp_path / "cache", tmp_path / "out2")
    assert second.calls == [] and second.calibrations == 0
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
        assert point["terms"] == objective_terms(m, COSTS, config.weights).as_dict()
        assert point["costed_latency_s"] == COSTS.seconds(m.counts)
    assert json.loads((tmp_path / "o" / "path.json").read_text())["step_costs"]["seconds"] == COSTS.as_dict()


def test_the_header_says_how_to_run_the_search_again_and_names_no_output_folder(tmp_path):
    command = "ecdiff search --prompts bench/search_prompts.tsv --pre-steps 7"
    run_search(SearchConfig(), TableEvaluator(), tmp_path / "c", tmp_path / "gone", source="Model pair x+y.",
               command=command)
    header = [line for line in (tmp_path / "gone" / "strategy.toml").read_text().splitlines() if line.startswith("#")]
    assert any(f"Reproduce: `{command}`" in line for line in header)
    # The result is installed elsewhere (configs/strategy.toml) and outlives the output folder.
    assert not any("gone" in line for line in header)


class DriftingClock(TableEvaluator):
    """Each point's own stopwatch looks faster than the last (a drifting machine); SSIM is slightly
    better at lower alpha. Only the work may rank points, so the walk must follow SSIM."""

    def measure(self, params):
        self.calls.append(params)
        return _measurement(params, 0.95 - 0.001 * params.alpha, latency_s=2.0 - 0.1 * len(self.calls))


def test_points_of_equal_work_are_ranked_by_ssim_not_by_their_stopwatch(tmp_path):
    config = SearchConfig(k_grid=(2,), s_grid=(35,), s_start=35, rules=("paper",),
                          alpha_grid=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9))
    outcome = run_search(config, DriftingClock(), tmp_path / "c", tmp_path / "o")
    points = [json.loads(line) for line in (tmp_path / "o" / "points.jsonl").read_text().splitlines()]
    alpha_points = [p for p in points if p["params"]["switch_step"] == 30]
    assert len({p["terms"]["efficiency"] for p in alpha_points}) == 1  # equal work, equal Efficiency
    assert len({p["measurement"]["latency_s"] for p in alpha_points}) == len(alpha_points)
    assert outcome.best.alpha == 0.1
