import pytest

from ecdiff.strategies import ECDiff, HybridSD, PlanCounts
from ecdiff.strategy_config import Frontier, StrategyDefaults, StrategyParams


def write(tmp_path, text):
    path = tmp_path / "strategy.toml"
    path.write_text(text)
    return path


PAPER = """num_steps = 50
[ecdiff]
pre_steps = 7
k = 2
alpha = 0.5
switch_step = 37
rule = "paper"
beta = 0.25
[hybrid]
cloud_steps = 25
"""


def test_shipped_config_loads_and_gives_the_paper_defaults_at_50_steps():
    defaults = StrategyDefaults.load()
    strategy, params = defaults.resolve("ecdiff", 50, {})
    assert isinstance(strategy, ECDiff)
    assert defaults.num_steps == 50 and params.switch_step == strategy.switch_step


def test_step_indexed_defaults_scale_with_num_steps(tmp_path):
    defaults = StrategyDefaults.load(write(tmp_path, PAPER))
    assert defaults.scaled(50) == StrategyParams(7, 2, 0.5, 37, 25, "paper", 0.25)
    # 10 steps: p = max(2, round(1.4)) = 2, s = round(7.4) = 7, n = round(5.0) = 5
    assert defaults.scaled(10) == StrategyParams(2, 2, 0.5, 7, 5, "paper", 0.25)
    # 100 steps: doubled
    assert defaults.scaled(100) == StrategyParams(14, 2, 0.5, 74, 50, "paper", 0.25)


def test_explicit_parameters_win_and_are_validated(tmp_path):
    defaults = StrategyDefaults.load(write(tmp_path, PAPER))
    strategy, params = defaults.resolve("hybrid", 10, {"cloud_steps": 3})
    assert strategy == HybridSD(3) and params.cloud_steps == 3
    with pytest.raises(ValueError, match="switch_step"):
        defaults.resolve("ecdiff", 10, {"switch_step": 11})
    with pytest.raises(ValueError, match="alpha"):
        defaults.resolve("ecdiff", 10, {"alpha": -0.5})
    with pytest.raises(ValueError, match="extrapolation rule"):
        defaults.resolve("ecdiff", 10, {"rule": "cubic"})
    with pytest.raises(ValueError, match="beta"):
        defaults.resolve("ecdiff", 10, {"rule": "slope", "beta": 2.0})
    strategy, params = defaults.resolve("ecdiff", 50, {"rule": "slope", "alpha": 0.0})
    assert (strategy.rule, strategy.beta, strategy.alpha) == ("slope", 0.25, 0.0) and params.rule == "slope"
    with pytest.raises(ValueError, match="unknown strategy"):
        defaults.resolve("fast", 10, {})
    with pytest.raises(ValueError, match="unknown strategy parameters"):
        defaults.resolve("ecdiff", 10, {"gamma": 1})


@pytest.mark.parametrize("text, fragment", [
    (PAPER.replace("k = 2", "k = -1"), "k must be"),
    (PAPER.replace("alpha = 0.5", "alpha = 0.5\ngamma = 1"), "unknown keys"),
    (PAPER.replace("cloud_steps = 25", ""), "missing key"),
    (PAPER.replace('rule = "paper"', ""), "missing key"),
    (PAPER.replace('rule = "paper"', 'rule = "cubic"'), "extrapolation rule"),
    (PAPER.replace("beta = 0.25", "beta = 1.5"), "beta"),
    (PAPER.replace("switch_step = 37", "switch_step = 51"), "switch_step"),
    ("num_steps = [", "strategy config"),
])
def test_bad_config_files_are_refused(tmp_path, text, fragment):
    with pytest.raises(ValueError, match=fragment):
        StrategyDefaults.load(write(tmp_path, text))


def test_missing_config_file_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="ECDIFF_STRATEGY_CONFIG"):
        StrategyDefaults.load(tmp_path / "nope.toml")


def test_written_config_reads_back_with_its_header_as_comments(tmp_path):
    defaults = StrategyDefaults(40, StrategyParams(pre_steps=5, k=3, alpha=0.35, switch_step=30, cloud_steps=20,
                                                   rule="quadratic", beta=0.5))
    path = defaults.write(tmp_path / "sub" / "strategy.toml", "found by a test\nsecond line")
    text = path.read_text()
    assert text.startswith("# found by a test\n# second line\n")
    assert StrategyDefaults.load(path) == defaults
    assert not list(path.parent.glob("*.tmp"))


def test_an_integer_alpha_is_written_as_a_float(tmp_path):
    defaults = StrategyDefaults(50, StrategyParams(7, 2, 1, 37, 25, "paper", 0.0))
    assert "alpha = 1.0\n" in defaults.to_toml("")


# --- the frontier: the ladder of cheaper EC-Diff points (load-adaptive quality) --------------------

LADDER = """num_steps = 50
cloud_model = "toyworld-cloud"
edge_model = "toyworld-edge"
[[point]]
pre_steps = 4
k = 5
alpha = 0.5
switch_step = 36
rule = "lsq"
beta = 0.3
cloud_calls = 9
ssim = 0.97
fidelity = 95.0
[[point]]
pre_steps = 4
k = 5
alpha = 0.5
switch_step = 18
rule = "lsq"
beta = 0.3
cloud_calls = 6
ssim = 0.95
"""


def ladder(tmp_path, text=LADDER):
    path = tmp_path / "frontier.toml"
    path.write_text(text)
    return Frontier.load(path)


def test_the_shipped_frontier_loads_and_every_point_is_cheaper_than_the_shipped_point():
    frontier, defaults = Frontier.load(), StrategyDefaults.load()
    assert frontier.num_steps == defaults.num_steps and frontier.cloud_model == "toyworld-cloud"
    ladder_ = frontier.cheaper_than(defaults.params, defaults.num_steps)
    assert [params.switch_step for _, params in ladder_] == [p.switch_step for p in frontier.points]
    shipped = PlanCounts.of(defaults.resolve("ecdiff", 50, {})[0].plan(50)).cloud
    assert all(p.cloud_calls < shipped for p in frontier.points)


def test_a_request_is_offered_the_points_cheaper_than_it_most_accurate_first(tmp_path):
    frontier = ladder(tmp_path)
    asked = StrategyParams(7, 5, 0.5, 36, 25, "lsq", 0.3)  # 11 cloud calls
    offered = frontier.cheaper_than(asked, 50)
    assert [(s.pre_steps, s.switch_step, p.cloud_steps) for s, p in offered] == [(4, 36, 25), (4, 18, 25)]
    assert all(isinstance(s, ECDiff) and s.rule == "lsq" for s, _ in offered)
    # A request already as cheap as the first point is offered only the second.
    assert [p.switch_step for _, p in frontier.cheaper_than(StrategyParams(4, 5, 0.5, 36, 25, "lsq", 0.3), 50)] == [18]
    # At 25 steps the points scale like the defaults: p 2, s 18 and 9 (4 and 3 calls, the request 6).
    asked_25 = StrategyParams(4, 5, 0.5, 18, 13, "lsq", 0.3)
    assert [(p.pre_steps, p.switch_step) for _, p in frontier.cheaper_than(asked_25, 25)] == [(2, 18), (2, 9)]
    # At 4 steps scaling leaves nothing cheaper than the request's own scaled plan.
    assert frontier.cheaper_than(StrategyParams(2, 5, 0.5, 3, 2, "lsq", 0.3), 4) == []


def test_a_frontier_reads_back_as_written(tmp_path):
    frontier = ladder(tmp_path)
    assert frontier.points[1].fidelity is None  # measured without a scorer
    assert frontier.write(tmp_path / "again.toml", "written\nby a test") and Frontier.load(tmp_path / "again.toml") == frontier
    assert (tmp_path / "again.toml").read_text().startswith("# written\n# by a test\n")


@pytest.mark.parametrize("change, fragment", [
    (("cloud_calls = 9", "cloud_calls = 8"), "cloud_calls 8 but its plan makes 9"),
    (("switch_step = 18\nrule = \"lsq\"\nbeta = 0.3\ncloud_calls = 6",
      "switch_step = 36\nrule = \"lsq\"\nbeta = 0.3\ncloud_calls = 9"), "cloud_calls must fall strictly"),
    (("ssim = 0.95", "ssim = 0.98"), "the point with 9 cloud calls is dominated by the one with 6"),
    (("ssim = 0.97", "ssim = 1.5"), "ssim must be a finite number <= 1"),
    (("fidelity = 95.0", "fidelity = 120.0"), r"fidelity must be in \[0, 100\]"),
    (("switch_step = 36", "switch_step = 3"), r"switch_step \(s=3\) must be >= pre_steps"),
    (("beta = 0.3\ncloud_calls = 9", "beta = 0.3\nbogus = 1\ncloud_calls = 9"), "unknown keys"),
    (('cloud_model = "toyworld-cloud"\n', ""), "missing key 'cloud_model'"),
    (("ssim = 0.97\n", ""), "missing 1 required positional argument: 'ssim'"),
])
def test_bad_frontiers_are_refused(tmp_path, change, fragment):
    with pytest.raises(ValueError, match=fragment):
        ladder(tmp_path, LADDER.replace(*change, 1))


def test_a_frontier_without_points_or_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no points"):
        ladder(tmp_path, LADDER.split("[[point]]")[0])
    with pytest.raises(FileNotFoundError, match="ecdiff ladder --install"):
        Frontier.load(tmp_path / "missing.toml")
