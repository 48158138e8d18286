import http.server
import json
import threading

import pytest

from ecdiff.bench.load import settled_scrape
from ecdiff.cli import main
from ecdiff.strategy_config import Frontier, FrontierPoint, StrategyDefaults, StrategyParams


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
        # Where the cores went: the cloud process computed, and the clients here spent some too.
        assert set(run["cpu_seconds"]) == {"cloud", "clients"} and sum(run["cpu_seconds"]["cloud"].values()) > 0
        assert run["cpu_seconds"]["clients"]["bench (this process)"] > 0
    assert runs[0]["batch_occupancy"] == 1.0  # one request per UNet call
    assert "CPU seconds per request served" in (out / "table.md").read_text()
    assert runs[1]["batch_occupancy"] >= 1.0
    assert "| max batch |" in (out / "table.md").read_text()


def test_a_short_soak_through_the_edge_with_hostile_traffic_serves_every_valid_request(tmp_path):
    """The CI version of the 10-minute soak (docs/evaluation.md): malformed requests, garbage bytes,
    cancellations, deadline expiries and abrupt disconnects mixed in; the valid ones all succeed."""
    out = tmp_path / "soak"
    args = ["bench", "load", "--tiny", "--target", "edge", "--steps", "4", "--clients", "4", "--duration", "8",
            "--hostile", "0.5", "--max-batch", "4", "--service-threads", "1", "--out", str(out)]
    assert main(args) == 0
    [run] = json.loads((out / "results.json").read_text())["runs"]
    assert run["requests"] > 0 and run["ok"] == run["requests"] and run["errors"] == {} and run["degraded"] == {}
    assert set(run["hostile"]) == {"malformed", "garbage", "cancel", "deadline", "disconnect"}
    assert run["hostile_unexpected"] == 0
    assert run["hostile"]["garbage"] == {"INVALID_ARGUMENT": sum(run["hostile"]["garbage"].values())}
    for role in ("cloud", "edge"):
        figures = run["processes"][role]
        assert figures["rss_drift_mb"] < 50, figures
        assert figures["threads"]["max"] - figures["threads"]["first"] <= 2, figures
        assert figures["fds"]["max"] - figures["fds"]["first"] <= 4, figures
    assert "hostile requests with an unexpected status: 0" in (out / "table.md").read_text()


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
    # The replicas are the front end's grandchildren (through Ray's raylet): their CPU is counted.
    assert any(name.startswith("ray::ServeReplica") for name in run["cpu_seconds"]["cloud"])
    assert "| ray:2 | 4 | off | 4 clients |" in (out / "table.md").read_text()


def test_load_bench_compares_adaptive_quality_on_and_off(tmp_path):
    """With one request running at a time and adaptive_queue 1, requests that find one waiting are
    served with the frontier's cheaper point; with it off, none is."""
    config, frontier = tmp_path / "strategy.toml", tmp_path / "frontier.toml"
    StrategyDefaults(10, StrategyParams(4, 2, 0.5, 9, 5, "lsq", 0.3)).write(config, "5 cloud calls at 10 steps")
    Frontier(10, "tiny-cloud", "tiny-edge", (FrontierPoint(2, 2, 0.5, 8, "lsq", 0.3, 4, 0.99),)).write(frontier, "tiny")
    out = tmp_path / "load"
    args = ["bench", "load", "--tiny", "--steps", "10", "--clients", "4", "--requests-per-client", "2",
            "--max-batch", "1", "--adaptive", "on,off", "--adaptive-queue", "1", "--frontier-config", str(frontier),
            "--strategy-config", str(config), "--service-threads", "1", "--out", str(out)]
    assert main(args) == 0
    on, off = json.loads((out / "results.json").read_text())["runs"]
    assert (on["adaptive"], off["adaptive"]) == (True, False)
    for run in (on, off):
        assert run["ok"] == run["requests"] == 8 and run["errors"] == {}
    assert on["downgraded"] >= 1 and on["served"] == {"p 2, k 2, s 8": on["downgraded"]}
    assert off["downgraded"] == 0 and off["served"] == {}
    assert "| plain | 1 | on | 4 clients |" in (out / "table.md").read_text()


def test_settled_scrape_waits_for_late_published_figures():
    """A Ray cloud's replicas publish their engines' figures periodically: the count read right after a
    run may lack the last calls, so the bench scrapes again until it holds still."""
    published = iter([3, 3, 4, 5, 5])  # the first call reads the first; the second waits out 3 and 4

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"# TYPE ecdiff_unet_calls counter\necdiff_unet_calls_total {next(published)}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        assert settled_scrape(port, 0.0)["ecdiff_unet_calls_total"] == 3  # a plain cloud's are current
        assert settled_scrape(port, 0.01)["ecdiff_unet_calls_total"] == 5
        server.shutdown()
