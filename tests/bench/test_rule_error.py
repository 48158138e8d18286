"""ecdiff bench rule-error on the tiny pair: the files, the zero error before approximation, the SSIM table."""

import csv

import pytest

from ecdiff.bench.rule_error import Variant
from ecdiff.cli import main


def test_writes_the_per_step_error_and_ssim_of_each_variant(tmp_path):
    prompts = tmp_path / "p.tsv"
    prompts.write_text("prompt\tseed\na small red circle at the top left on a white background\t3\n")
    out = tmp_path / "out"
    assert main(["bench", "rule-error", "--tiny", "--prompts", str(prompts), "--steps", "6", "--pre-steps", "2",
                 "--k", "2", "--variant", "paper:0", "--variant", "quadratic:1", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "rule_error.csv")))
    assert [(r["variant"], int(r["step"])) for r in rows] == [(v, i) for v in ("paper:0", "quadratic:1") for i in range(1, 7)]
    for r in rows:
        # steps 0 and 1 are real calls: the latents entering steps 1 and 2 are cloud-only's; the
        # first approximated step (2) moves the latent entering step 3 away from it
        assert (float(r["mean_rel_error"]) == 0.0) == (int(r["step"]) <= 2), r
    ssim_rows = list(csv.DictReader(open(out / "ssim.csv")))
    assert [(r["k"], r["variant"], r["cloud_calls"]) for r in ssim_rows] == [("2", "paper:0", "3"), ("2", "quadratic:1", "3")]
    assert all(0 < float(r["mean_ssim"]) <= 1 for r in ssim_rows)
    assert (out / "rule_error_k2.png").stat().st_size > 0


def test_bad_variants_are_refused():
    with pytest.raises(ValueError, match="RULE:DAMPING"):
        Variant.parse("cubic:0.3")
    with pytest.raises(ValueError, match="must be a number"):
        Variant.parse("slope:x")
    assert main(["bench", "rule-error", "--tiny", "--prompts", "x", "--variant", "slope:2"]) == 2
