"""The kernel microbenchmark's quick mode runs end to end and writes a consistent report."""

import csv

import pytest
import torch

from ecdiff.bench.kernels import approx_steps_bench


@pytest.mark.slow
def test_quick_mode_end_to_end(tmp_path, capsys):
    threads = torch.get_num_threads()
    assert approx_steps_bench.main(["--quick", "--out-dir", str(tmp_path),
                                    "--unet-config", str(tmp_path / "absent.json")]) == 0
    assert torch.get_num_threads() == threads  # the CPU clock's single-thread setting is undone
    printed = capsys.readouterr().out
    assert "stand-in UNet" in printed and "% of one cloud UNet call" in printed
    with (tmp_path / "kernels_approx_steps.csv").open() as f:
        rows = list(csv.DictReader(f))
    # 2 latents x batch 1 x k in (1, 4), each with the unfused, separate and fused columns (CPU)
    assert len(rows) == 12
    assert {r["method"] for r in rows} >= {"unfused", "separate", "fused"}
    for r in rows:
        assert 0 < float(r["us_per_step_min"]) <= float(r["us_per_step_median"])
        k, elements = int(r["k"]), int(r["elements"])
        # bytes are counted per step: the fused op's 11 fp32 passes shared by k steps
        if r["method"] == "fused":
            assert int(r["bytes_per_step"]) == 11 * 4 * elements // k
    assert (tmp_path / "kernels_approx_steps.md").read_text() in printed
