"""The prepared GPU check runs unchanged on the CPU (a smoke run: its figures mean nothing here)."""

import json

from ecdiff.cli import main


def test_the_check_runs_on_the_cpu_and_compares_every_strategy(tmp_path, capsys):
    code = main(["bench", "gpu", "--device", "cpu", "--tiny", "--quick", "--parts", "e2e", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert code == 0, capsys.readouterr()
    rows = summary["e2e"]["rows"]
    assert {r["strategy"] for r in rows} == {"cloud", "edge", "hybrid", "ecdiff"}
    # On the CPU in float32 the services compute the in-process picture exactly.
    assert all(r["rel_error"] == 0.0 and r["ok"] for r in rows)
    assert "GPU check on no GPU (cpu float32)" in capsys.readouterr().out


def test_unknown_parts_are_refused(tmp_path, capsys):
    assert main(["bench", "gpu", "--device", "cpu", "--parts", "e2e,speed", "--out", str(tmp_path)]) == 2
    assert "unknown --parts ['speed']" in capsys.readouterr().err
