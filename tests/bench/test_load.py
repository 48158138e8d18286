import json

import pytest

from ecdiff.cli import main


def test_load_bench_compares_engine_settings_on_tiny_models(tmp_path):
    out = tmp_path / "load"
    args = ["bench", "load", "--tiny", "--steps", "6", "--clients", "3", "--requests-per-client", "2",
            "--max-batch", "1,4", "--strategies", "ecdiff,cloud", "--service-threads", "1", "--out", str(out)]
    assert main(args) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [(r["max_batch"], r["load"]) for r in runs] == [(1, 3.0), (4, 3.0)]
    for run in runs:
        assert run["ok"] == run["requests"] == 6 and run["errors"] == {}
        assert run["p50"] <= run["p95"] <= run["p99"]
        assert run["peak_rss_mb"] > 0 and run["peak_threads"] > 0
    assert runs[0]["batch_occupancy"] == 1.0  # one request per UNet call
    assert runs[1]["batch_occupancy"] >= 1.0
    assert "| max batch |" in (out / "table.md").read_text()


@pytest.mark.slow
@pytest.mark.heavy  # its own Ray instance and two replicas: over a minute; `-m heavy` runs it
def test_load_bench_against_ray_serve_replicas_sums_their_metrics(tmp_path):
    out = tmp_path / "load"
    args = ["bench", "load", "--tiny", "--steps", "6", "--clients", "4", "--requests-per-client", "2",
            "--max-batch", "4", "--clouds", "ray:2", "--service-threads", "1", "--out", str(out)]
    assert main(args) == 0
    (run,) = json.loads((out / "results.json").read_text())["runs"]
    assert run["cloud"] == "ray:2" and run["ok"] == run["requests"] == 8 and run["errors"] == {}
    # The replicas' engines report through the front end's exporter (one series per replica).
    assert run["unet_calls"] > 0 and run["batch_occupancy"] >= 1.0
    assert "| ray:2 | 4 | 4 clients |" in (out / "table.md").read_text()
