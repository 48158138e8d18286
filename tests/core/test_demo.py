"""`ecdiff demo` as a newcomer runs it (`make demo`), on the shipped pair with few steps: it serves,
generates every strategy, writes its outputs and prints no third-party warnings."""

import subprocess
import sys


def test_the_demo_runs_on_the_shipped_pair_and_stays_quiet(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "ecdiff.cli", "demo", "--steps", "4", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-3000:]
    assert {"contact_sheet.png", "latency.md"} <= {p.name for p in out.iterdir()}
    assert len(list(out.glob("*-*.png"))) == 3 * 4  # three prompts, four strategies
    assert "models: cloud toyworld-cloud, edge toyworld-edge" in printed
    assert "services stopped cleanly" in printed
    for noise in ("Warning", "warn(", "accelerate", "LOAD REPORT", "torchvision"):
        assert noise not in printed, f"third-party noise in the demo's output: {noise!r}\n{printed[-3000:]}"
