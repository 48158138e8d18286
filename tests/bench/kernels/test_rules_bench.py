"""The rule-kernel microbenchmark's quick mode runs end to end and writes its report."""

import torch

from ecdiff.bench.kernels import rules_bench


def test_quick_mode_end_to_end(tmp_path, capsys):
    threads = torch.get_num_threads()
    assert rules_bench.main(["--quick", "--out-dir", str(tmp_path), "--unet-config", str(tmp_path / "absent.json")]) == 0
    assert torch.get_num_threads() == threads
    report = (tmp_path / "kernels_rules.md").read_text()
    assert report in capsys.readouterr().out
    table = [line for line in report.splitlines() if line.startswith("| default pair")]
    assert len(table) == 1
    cells = table[0].strip("|").split("|")[2:]
    assert len(cells) == 2 + 3 * len(rules_bench.KS)
    for cell in cells:
        median, minimum = (float(v) for v in cell.split("/"))
        assert 0 < minimum <= median
    assert "% of one cloud UNet call" in report
