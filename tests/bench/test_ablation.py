import json

from ecdiff.cli import main


def test_ablation_tiny(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\na blue square\n")
    out = tmp_path / "out"
    args = ["bench", "ablation", "--tiny", "--prompts", str(prompts), "--out", str(out), "--steps", "8", "--pre-steps", "2",
            "--k", "2", "--alpha", "0.5", "--switch-step", "7", "--no-progress", "--no-warmup", "--torch-threads", "1"]
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
