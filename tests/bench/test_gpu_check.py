"""The prepared GPU check runs unchanged on the CPU (a smoke run: its figures mean nothing here)."""

import json
import subprocess
import sys

import pytest

from ecdiff.bench import gpu_check
from ecdiff.cli import main


def test_the_check_runs_on_the_cpu_and_compares_every_strategy(tmp_path, capsys):
    code = main(["bench", "gpu", "--device", "cpu", "--tiny", "--quick", "--parts", "e2e", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert code == 0, capsys.readouterr()
    rows = summary["e2e"]["rows"]
    assert {r["strategy"] for r in rows} == {"cloud", "edge", "hybrid", "ecdiff"}
    # On the CPU in float32 the services compute the in-process picture exactly, and decode it so.
    assert all(r["rel_error"] == 0.0 and r["image_ssim"] == pytest.approx(1.0, abs=1e-12) and r["ok"] for r in rows)
    assert "GPU check on no GPU (cpu float32)" in capsys.readouterr().out


def test_unknown_parts_are_refused(tmp_path, capsys):
    assert main(["bench", "gpu", "--device", "cpu", "--parts", "e2e,speed", "--out", str(tmp_path)]) == 2
    assert "unknown --parts ['speed']" in capsys.readouterr().err


def test_a_failing_part_is_reported_and_the_next_still_runs(tmp_path, capsys, monkeypatch):
    def broken(*args):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(gpu_check, "end_to_end", broken)
    monkeypatch.setattr(gpu_check, "run_tests", lambda out, timeout: {"ok": True, "summary": "3 passed", "failed": []})
    code = main(["bench", "gpu", "--device", "cpu", "--parts", "e2e,tests", "--out", str(tmp_path)])
    assert code == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["e2e"]["ok"] is False and "illegal memory access" in summary["e2e"]["error"]
    assert summary["tests"]["ok"] is True
    assert "Traceback" in (tmp_path / "e2e.error.log").read_text()
    out = capsys.readouterr().out
    assert "- e2e: FAILED" in out and "error: RuntimeError: CUDA error" in out and "- tests: OK" in out


def test_a_subprocess_part_past_its_time_is_stopped_with_its_output_kept(tmp_path):
    log = tmp_path / "part.log"
    command = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    with pytest.raises(subprocess.TimeoutExpired):
        gpu_check.run_logged(command, log, timeout=3)
    assert "started" in log.read_text() and "[stopped after 3 s]" in log.read_text()
