import json
import shlex

import pytest

from ecdiff.cli import main
from ecdiff.loading import load_pair
from ecdiff.metrics import ssim, stack_images
from ecdiff.search import ECDiffParams, SearchConfig
from ecdiff.search.evaluator import PipelineEvaluator
from ecdiff.search.generate import generate
from ecdiff.search.prompts import PromptItem
from ecdiff.search.runner import run_search
from ecdiff.strategies import CloudOnly
from ecdiff.strategy_config import StrategyDefaults


def test_search_end_to_end_on_tiny_models(tmp_path):
    pair = load_pair(tiny=True)
    items = [PromptItem("a red circle", 0), PromptItem("a blue square", 1)]
    config = SearchConfig(num_steps=8, pre_steps=2, k_grid=(1, 2), alpha_grid=(0.4, 0.5, 0.6), alpha_start=0.5,
                          stage1_switch=5, s_grid=(5, 6, 7), s_start=6)
    evaluator = PipelineEvaluator(pair, items, 8, progress=False)
    outcome = run_search(config, evaluator, tmp_path / "cache", tmp_path / "out")
    assert ECDiffParams.from_defaults(StrategyDefaults.load(tmp_path / "out" / "strategy.toml")) == outcome.best
    points = [json.loads(line) for line in (tmp_path / "out" / "points.jsonl").read_text().splitlines()]
    assert outcome.best.as_dict() in [p["params"] for p in points]
    for p in points:
        m = p["measurement"]
        assert 0.0 < m["ssim"] <= 1.0 and m["latency_s"] > 0 and m["num_steps"] == 8
        assert m["cloud_calls"] + m["approx_steps"] + m["edge_steps"] == 8
    costs = json.loads((tmp_path / "out" / "path.json").read_text())["step_costs"]["seconds"]
    assert all(v > 0 for v in costs.values())  # every kind of step was timed in calibration

    # One point's SSIM, recomputed from independently generated images.
    point = next(p for p in points if p["params"] == outcome.best.as_dict())
    ref = stack_images([generate(pair, CloudOnly(), i.prompt, i.seed, 8).image for i in items])
    got = stack_images([generate(pair, outcome.best.strategy(), i.prompt, i.seed, 8).image for i in items])
    assert abs(float(ssim(got, ref).mean()) - point["measurement"]["ssim"]) < 1e-12

    # Same pair, prompts and steps: everything comes from the cache, nothing is generated.
    again = PipelineEvaluator(pair, items, 8, progress=False)
    assert run_search(config, again, tmp_path / "cache", tmp_path / "out2").best == outcome.best
    assert again._reference is None


def test_search_command_writes_and_installs_a_strategy_config(tmp_path):
    (tmp_path / "prompts.txt").write_text("a red circle\na blue square\n")
    (tmp_path / "search.toml").write_text("[search]\nnum_steps = 8\npre_steps = 2\nk_grid = [1, 2]\nalpha_grid = [0.4, 0.5]\n"
                                          "alpha_start = 0.5\nstage1_switch = 5\ns_grid = [5, 6]\ns_start = 5\n")
    installed = tmp_path / "configs" / "strategy.toml"
    installed.parent.mkdir()
    args = ["search", "--tiny", "--threads", "1", "--prompts", str(tmp_path / "prompts.txt"), "--config",
            str(tmp_path / "search.toml"), "--weights", "0.2", "0.3", "0.5", "--out", str(tmp_path / "out"),
            "--install", str(installed)]
    assert main(args) == 0
    assert installed.read_text() == (tmp_path / "out" / "strategy.toml").read_text()
    header = [line for line in installed.read_text().splitlines() if line.startswith("#")]
    assert "ecdiff search" in header[0] and any("tiny-random-seed0" in line and "prompts.txt" in line for line in header)
    # The command that runs this search again: every option given, in its documented spelling, but
    # not where the output went (the result outlives that folder).
    command = shlex.join(["ecdiff", "search", "--tiny", "--torch-threads", "1", "--prompts", str(tmp_path / "prompts.txt"),
                          "--config", str(tmp_path / "search.toml"), "--weights", "0.2", "0.3", "0.5"])
    assert any(f"Reproduce: `{command}`" in line for line in header), header
    assert not any(str(tmp_path / "out") in line for line in header)
    result = json.loads((tmp_path / "out" / "path.json").read_text())["result"]["params"]
    loaded = StrategyDefaults.load(installed)
    assert ECDiffParams.from_defaults(loaded).as_dict() == result
    # HybridSD is not searched: its value comes from the shipped config, scaled to 8 steps.
    assert loaded.params.cloud_steps == StrategyDefaults.load().scaled(8).cloud_steps


@pytest.mark.parametrize("family", ["sd1", "sdxl", "cogvideox"])
def test_search_command_on_a_family_folder_pair(tmp_path, family_folders, family):
    """SD-1.x folders (CLIP, a BK-SDM-style edge), SDXL-class folders (two encoders, added
    conditioning, Euler) and CogVideoX-class video folders (SSIM per frame, averaged) by path go
    through the same search command."""
    (tmp_path / "prompts.txt").write_text("a red circle\nthe blue\n")
    (tmp_path / "search.toml").write_text("[search]\nnum_steps = 6\npre_steps = 2\nk_grid = [1]\nalpha_grid = [0.5]\n"
                                          "alpha_start = 0.5\nstage1_switch = 4\ns_grid = [4, 5]\ns_start = 4\n")
    folders = family_folders[family]
    args = ["search", "--cloud-model", str(folders["cloud"]), "--edge-model", str(folders["edge"]), "--torch-threads",
            "1", "--prompts", str(tmp_path / "prompts.txt"), "--config", str(tmp_path / "search.toml"), "--out",
            str(tmp_path / "out")]
    assert main(args) == 0
    points = [json.loads(line) for line in (tmp_path / "out" / "points.jsonl").read_text().splitlines()]
    assert {p["params"]["switch_step"] for p in points} == {4, 5}
    assert all(0.0 < p["measurement"]["ssim"] <= 1.0 for p in points)
    header = (tmp_path / "out" / "strategy.toml").read_text().splitlines()[:3]
    assert any(f"{family}-cloud+" in line for line in header)
