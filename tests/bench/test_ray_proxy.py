"""`ecdiff bench ray-proxy` end to end on the tiny cloud: one Ray replica behind both fronts."""

import json

import pytest

from ecdiff.cli import main


@pytest.mark.slow
@pytest.mark.heavy  # its own Ray instance with Ray's proxy: over a minute; `-m heavy` runs it
def test_both_fronts_serve_every_request_of_every_round(tmp_path):
    out = tmp_path / "ray-proxy"
    args = ["bench", "ray-proxy", "--tiny", "--steps", "6", "--clients", "2", "--requests-per-client", "2",
            "--rounds", "2", "--max-batch", "4", "--out", str(out)]
    assert main(args) == 0
    rounds = json.loads((out / "results.json").read_text())["rounds"]
    # Rounds alternate which front goes first; each sent 4 requests, all served.
    assert [r["front"] for r in rounds] == ["ours", "ray-proxy", "ray-proxy", "ours"]
    assert all(r["ok"] == r["requests"] == 4 and r["errors"] == {} and r["throughput"] > 0 for r in rounds)
    table = (out / "table.md").read_text()
    assert "| ours | 2 | 2 | 8 / 8 |" in table and "| ray-proxy | 2 | 2 | 8 / 8 |" in table


def test_bad_arguments_are_refused_before_anything_starts(capsys):
    assert main(["bench", "ray-proxy", "--tiny", "--clients", "0"]) == 2
    assert "need --clients values" in capsys.readouterr().err
    assert main(["bench", "ray-proxy", "--tiny", "--strategies", "edge"]) == 2
    assert "unknown strategy 'edge'" in capsys.readouterr().err
