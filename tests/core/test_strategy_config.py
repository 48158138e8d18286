import pytest

from ecdiff.strategies import ECDiff, HybridSD
from ecdiff.strategy_config import StrategyDefaults, StrategyParams


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
