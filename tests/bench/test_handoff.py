"""`ecdiff bench handoff` on the tiny pair: every transfer encoding measured against the float32
handoff, with the bytes each puts on the wire."""

import json

from ecdiff.cli import main

ARGS = ["bench", "handoff", "--tiny", "--steps", "8", "--pre-steps", "2", "--k", "1", "--alpha", "0.5",
        "--switch-step", "6", "--no-progress", "--torch-threads", "1"]
FLOAT32_SD_LATENT = 4 * 64 * 64 * 4  # bytes of a 1x4x64x64 float32 latent's values


def test_every_encoding_is_measured_against_the_float32_handoff(tmp_path):
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("id\tprompt\tseed\n1\ta small red circle at the top left\t3\n2\ta big blue square\t5\n")
    out = tmp_path / "out"
    assert main([*ARGS, "--prompts", str(prompts), "--checkpoint-every", "2", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {r["encoding"]: r for r in results["rows"]}
    assert list(rows) == ["float32", "float16", "bfloat16", "int8"] and results["latent_shape"] == [1, 4, 8, 8]
    exact = rows["float32"]
    assert exact["ssim_min"] == 1.0 and exact["identical_images"] == 2 and exact["psnr_median_db"] is None
    # The handoff and its checkpoints (every 2 of the 6 cloud steps) are latents of one size each.
    assert exact["bytes_per_image"] >= 3 * exact["handoff_bytes"]
    assert exact["bytes_per_image"] % exact["handoff_bytes"] == 0
    for name in ("float16", "bfloat16", "int8"):
        lossy = rows[name]
        assert lossy["ssim_min"] >= 0.99, lossy
        assert lossy["bytes_per_image"] < exact["bytes_per_image"] and lossy["handoff_bytes"] < exact["handoff_bytes"]
    int8 = rows["int8"]
    assert int8["identical_images"] == 0 and int8["psnr_min_db"] > 30  # lossy, and close
    # int8: a byte a value plus a float32 scale per channel; about a quarter of float32's bytes.
    assert int8["handoff_bytes"] < 0.3 * exact["handoff_bytes"]
    assert FLOAT32_SD_LATENT // 4 < int8["sd_handoff_bytes"] < FLOAT32_SD_LATENT // 4 + 64
    assert FLOAT32_SD_LATENT < exact["sd_handoff_bytes"] < FLOAT32_SD_LATENT + 32
    assert "| int8 |" in (out / "table.md").read_text()


def test_a_negative_checkpoint_interval_is_refused(tmp_path, capsys):
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("a small red circle\n")
    assert main([*ARGS, "--prompts", str(prompts), "--checkpoint-every", "-1", "--out", str(tmp_path / "out")]) == 2
    assert "--checkpoint-every must be >= 0" in capsys.readouterr().err
