"""`ecdiff demo` as a newcomer runs it (`make demo`), on the shipped pair with few steps: it serves,
generates every strategy, writes its outputs and prints no third-party warnings; and with --secure
(mutual TLS and tokens on every hop), on the tiny pair."""

import json
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


def test_the_secure_demo_runs_mutual_tls_and_tokens_on_every_hop(tmp_path):
    """`make demo DEMO_ARGS=--secure` on the tiny pair: fresh development credentials, both services
    started on mutual TLS with their token files from `ecdiff serve` flags, the edge reaching the cloud
    with its own certificate and token, the SDK with the user's; every strategy served by the cloud,
    and no secret in a log."""
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "ecdiff.cli", "demo", "--secure", "--steps", "2", "--cloud-model",
                           "tiny", "--edge-model", "tiny", "--out", str(out)], capture_output=True, text=True, timeout=600)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-3000:]
    assert "secure: mutual TLS and tokens on every hop" in printed and "services stopped cleanly" in printed
    assert len(list(out.glob("*-*.png"))) == 3 * 4
    # A cloud that refused the edge would leave every row edge-only (degraded): cloud-only made its calls.
    [cloud_row] = [line for line in (out / "latency.md").read_text().splitlines() if line.startswith("| cloud |")]
    assert cloud_row.split("|")[8].strip() == "2", cloud_row
    secrets = [(out / "credentials" / name).read_text().strip() for name in ("user.token", "edge-to-cloud.token")]
    for role, token_name in (("cloud", "edge"), ("edge", "user")):
        lines = [json.loads(line) for line in (out / f"{role}.log").read_text().splitlines() if line.startswith("{")]
        [mode] = [line for line in lines if line["msg"] == "security"]
        assert (mode["tls"], mode["mutual_tls"], mode["tokens"]) == (True, True, [token_name]), mode
        assert not any(secret in (out / f"{role}.log").read_text() for secret in secrets)
