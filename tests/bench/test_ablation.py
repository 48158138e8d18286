import json

import pytest

from ecdiff.bench.ablation import ablation_methods
from ecdiff.cli import main
from ecdiff.search.params import ECDiffParams


def test_ablation_tiny(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\na blue square\n")
    out = tmp_path / "out"
    args = ["bench", "ablation", "--tiny", "--prompts", str(prompts), "--out", str(out), "--steps", "8", "--pre-steps", "2",
            "--k", "2", "--alpha", "0.5", "--switch-step", "7", "--rule", "paper", "--no-progress", "--no-warmup",
            "--torch-threads", "1"]
    assert main(args) == 0
    data = json.loads((out / "ablation.json").read_text())
    rows = {r["variant"]: r for r in data["rows"]}
    assert list(rows) == ["shipped", "correct-twice", "no-smoothing", "euler", "dpm++"]
    # p=2, k=2, s=7 of 8: C C A A C A A | E; correcting twice: C C A A C C A | E.
    assert (rows["shipped"]["cloud_calls"], rows["shipped"]["approx_steps"]) == (3, 4)
    assert (rows["correct-twice"]["cloud_calls"], rows["correct-twice"]["approx_steps"]) == (4, 3)
    assert rows["no-smoothing"]["params"]["alpha"] == 1.0
    assert [rows[v]["params"]["reference"] for v in rows] == ["cloud-ddim"] * 3 + ["cloud-euler", "cloud-dpm++"]
    assert all(0 < r["ssim"] < 1 for r in rows.values())  # approximation changes every variant's images
    assert "| correct-twice | ddim |" in (out / "ablation.md").read_text()


@pytest.mark.parametrize("rule, beta, changed", [("paper", None, {"alpha": 1.0}), ("lsq", 0.3, {"beta": 1.0}),
                                                 ("slope", 0.5, {"beta": 1.0}), ("quadratic", 0.2, {"beta": 1.0})])
def test_no_smoothing_removes_the_rules_own_smoothing(rule, beta, changed):
    # alpha does nothing under a damped rule: setting it there would make "no-smoothing" the shipped row again
    params = ECDiffParams(num_steps=50, pre_steps=7, k=5, alpha=0.5, switch_step=36, rule=rule, beta=beta)
    methods, _ = ablation_methods(params)
    rows = {m.name: m for m in methods}
    assert rows["no-smoothing"].params == {**rows["shipped"].params, **changed}
    assert rows["no-smoothing"].strategy != rows["shipped"].strategy
