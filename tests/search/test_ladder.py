"""The ladder of cheaper EC-Diff points: candidates, the Pareto choice, the written frontier, the command."""

import json
import shlex
from types import SimpleNamespace

from ecdiff.cli import main
from ecdiff.search import ECDiffParams
from ecdiff.search.ladder import candidates, cloud_calls, pareto_ladder, run_ladder
from ecdiff.search.objective import Measurement
from ecdiff.strategy_config import Frontier, FrontierPoint, StrategyDefaults, StrategyParams

BASE = StrategyDefaults(50, StrategyParams(7, 5, 0.5, 36, 25, "lsq", 0.3))  # 11 cloud calls


def point(calls, ssim, fidelity=None, s=30):
    return FrontierPoint(7, 5, 0.5, s, "lsq", 0.3, calls, ssim, fidelity)


def test_candidates_are_the_grid_points_cheaper_than_the_base_most_calls_first():
    base = ECDiffParams.from_defaults(BASE)
    found = candidates(base, (7, 4), (40, 36, 30, 24))
    assert [(p.pre_steps, p.switch_step, cloud_calls(p)) for p in found] == [
        (4, 40, 10), (7, 30, 10), (4, 36, 9), (7, 24, 9), (4, 30, 8), (4, 24, 7)]  # (7, 40): 12 calls; (7, 36): the base
    assert all((p.rule, p.k, p.beta) == ("lsq", 5, 0.3) for p in found)
    assert candidates(base, (7,), (36, 40)) == []


def test_the_ladder_keeps_undominated_points_one_per_cost():
    kept = pareto_ladder([
        point(10, 0.97, 90.0), point(9, 0.98, 90.0, s=24),  # the 9-call point dominates the 10-call one
        point(8, 0.95, 95.0), point(8, 0.96, 80.0, s=18),  # equal cost, both undominated: the better SSIM stays
        point(7, 0.94, 70.0), point(6, 0.90, 70.0, s=12),
    ])
    assert [(p.cloud_calls, p.ssim) for p in kept] == [(9, 0.98), (8, 0.96), (7, 0.94), (6, 0.90)]
    # Without fidelity (no scorer) SSIM alone decides.
    assert [p.cloud_calls for p in pareto_ladder([point(9, 0.9), point(8, 0.95, s=24), point(7, 0.8, s=18)])] == [8, 7]


class FakeEvaluator:
    """SSIM and fidelity fall with the switch step; fewer pre-steps cost nothing in quality here."""

    num_steps = 50
    pair = SimpleNamespace(cloud_model=SimpleNamespace(name="cloud-a"), edge_model=SimpleNamespace(name="edge-b"))

    def __init__(self):
        self.measured = []

    def fingerprint(self):
        return "fake"

    def reference_fidelity(self):
        return 100.0

    def measure(self, params):
        self.measured.append(params)
        calls = cloud_calls(params)
        return Measurement(0.5 + params.switch_step / 100, 1.0, calls, params.switch_step - calls, 50 - params.switch_step,
                           50, float(params.switch_step))


def test_run_ladder_measures_keeps_and_writes_a_frontier_that_loads(tmp_path):
    evaluator = FakeEvaluator()
    outcome = run_ladder(evaluator, tmp_path / "cache", tmp_path / "out", BASE, (7, 4), (36, 24))
    assert len(evaluator.measured) == 4  # the base and (4, 36), (7, 24), (4, 24)
    # (7, 24) makes 9 calls like (4, 36) but is worse: dropped.
    assert [(p.pre_steps, p.switch_step, p.cloud_calls) for p in outcome.frontier.points] == [(4, 36, 9), (4, 24, 7)]
    assert Frontier.load(tmp_path / "out" / "frontier.toml") == outcome.frontier
    assert (outcome.frontier.cloud_model, outcome.shipped.cloud_calls) == ("cloud-a", 11)
    record = json.loads((tmp_path / "out" / "ladder.json").read_text())
    assert record["cloud_only_fidelity"] == 100.0 and len(record["candidates"]) == 3
    assert [c["kept"] for c in record["candidates"]] == [True, False, True]
    header = (tmp_path / "out" / "frontier.toml").read_text()
    assert "Shipped point (configs/strategy.toml): p 7, k 5, s 36, rule lsq: 11 cloud calls" in header
    # Measurements are cached: a second run measures nothing.
    again = FakeEvaluator()
    assert run_ladder(again, tmp_path / "cache", tmp_path / "out2", BASE, (7, 4), (36, 24)).frontier == outcome.frontier
    assert again.measured == []


def test_the_ladder_command_on_tiny_models(tmp_path, capsys):
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("prompt\tseed\na small red circle at the top left on a white background\t3\n"
                       "a large blue square in the middle on a black background\t4\n")
    config = tmp_path / "strategy.toml"
    StrategyDefaults(8, StrategyParams(3, 1, 0.5, 8, 4, "lsq", 0.3)).write(config, "tiny base")
    out = tmp_path / "out"
    given = ["--tiny", "--prompts", str(prompts), "--pre-steps-grid", "3", "2", "--switch-steps", "8", "4",
             "--strategy-config", str(config)]
    assert main(["ladder", *given, "--out", str(out), "--install", str(tmp_path / "installed.toml")]) == 0
    frontier = Frontier.load(tmp_path / "installed.toml")
    assert frontier.num_steps == 8 and frontier.points and all(p.cloud_calls < 6 for p in frontier.points)
    assert all(p.fidelity is not None for p in frontier.points)  # the shipped scorer read the pictures
    assert "candidates kept" in capsys.readouterr().out
    # The header says how to run it again, and names no output folder (the installed file outlives it).
    header = [line for line in (tmp_path / "installed.toml").read_text().splitlines() if line.startswith("#")]
    assert any(f"Reproduce: `{shlex.join(['ecdiff', 'ladder', *given])}`" in line for line in header), header
    assert not any(str(out) in line for line in header)
