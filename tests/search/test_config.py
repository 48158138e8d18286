import pytest

from ecdiff.search import ECDiffParams, SearchConfig
from ecdiff.search.prompts import PromptItem, parse_prompts, read_prompts
from ecdiff.strategy_config import StrategyDefaults, StrategyParams


def test_defaults_are_the_papers():
    c = SearchConfig()
    assert c.k_grid == (1, 2, 3, 4, 5) and c.alpha_start == 0.5 and c.s_grid == tuple(range(30, 41))
    assert (c.s_start, c.stage1_switch, c.weights, c.num_steps) == (35, 30, (0.3, 0.3, 0.4), 50)


@pytest.mark.parametrize("kwargs,match", [
    ({"alpha_start": 0.55}, "alpha_start"),
    ({"alpha_grid": (0.5, 0.3)}, "strictly increasing"),
    ({"alpha_grid": (0.5, 1.5)}, r"\[0, 1\]"),
    ({"beta_grid": (-0.1, 0.5)}, r"\[0, 1\]"),
    ({"beta_start": 0.55}, "beta_start"),
    ({"rules": ("paper", "cubic")}, "rules"),
    ({"rules": ()}, "rules"),
    ({"k_grid": ()}, "must not be empty"),
    ({"k_grid": (0, 1)}, ">= 1"),
    ({"s_grid": (30, 60), "s_start": 30}, "s_grid value 60"),
    ({"stage1_switch": 3}, "stage1_switch"),
    ({"weights": (0.3, 0.3)}, "three"),
    ({"weights": (0, 0, 0)}, "all be zero"),
    ({"k_patience": 0}, "k_patience"),
    ({"pre_steps": 1}, "pre_steps"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchConfig(**kwargs)


def test_config_from_toml(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[search]\nnum_steps = 20\npre_steps = 3\nstage1_switch = 10\ns_grid = [10, 12, 14]\ns_start = 12\n")
    c = SearchConfig.from_toml(path, k_patience=2)
    assert (c.num_steps, c.s_grid, c.k_patience) == (20, (10, 12, 14), 2)
    path.write_text("[search]\nspeed = 3\n")
    with pytest.raises(ValueError, match="unknown keys"):
        SearchConfig.from_toml(path)


def test_params_go_through_the_strategy_config_format(tmp_path):
    params = ECDiffParams(num_steps=50, pre_steps=7, k=3, alpha=0.45, switch_step=33)
    base = StrategyDefaults(50, StrategyParams(7, 2, 0.5, 37, 25, "paper", 0.2))
    params.to_defaults(base).write(tmp_path / "strategy.toml", "found by a test")
    loaded = StrategyDefaults.load(tmp_path / "strategy.toml")
    # HybridSD's value and beta (the paper's rule sets none) kept from the base
    assert loaded.params == StrategyParams(7, 3, 0.45, 33, 25, "paper", 0.2)
    assert ECDiffParams.from_defaults(loaded) == params
    # At another step count the config's values are scaled as the services scale them: p = max(2, round(1.4)),
    # s = round(6.6).
    assert ECDiffParams.from_defaults(loaded, 10) == ECDiffParams(10, 2, 3, 0.45, 7)
    slope = params.replace(rule="slope", beta=0.1)
    slope.to_defaults(base).write(tmp_path / "slope.toml", "found by a test")
    assert ECDiffParams.from_defaults(StrategyDefaults.load(tmp_path / "slope.toml")) == slope
    with pytest.raises(ValueError, match="switch_step"):
        ECDiffParams(num_steps=20, pre_steps=7, k=2, alpha=0.5, switch_step=37)


def test_prompt_files(tmp_path):
    assert parse_prompts("a cat\n\n# note\na dog\n", base_seed=5) == [PromptItem("a cat", 5), PromptItem("a dog", 6)]
    tsv = "id\tprompt\tseed\textra\n1\ta cat\t42\tx\n2\ta dog\t7\ty\n"
    assert parse_prompts(tsv) == [PromptItem("a cat", 42), PromptItem("a dog", 7)]
    assert parse_prompts("prompt\tother\na cat\tq\n") == [PromptItem("a cat", 0)]
    with pytest.raises(ValueError, match="seed must be an integer"):
        parse_prompts("prompt\tseed\na cat\tx\n")
    with pytest.raises(ValueError, match="no prompts"):
        parse_prompts("\n# only a comment\n")
    with pytest.raises(ValueError, match="cannot read"):
        read_prompts(tmp_path / "missing.txt")
