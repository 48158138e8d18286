"""`ecdiff bench sessions` on the tiny random pair, a few seconds of work."""

import json

import pytest
import torch

from ecdiff.cli import main
from ecdiff.services.link import LinkConfig
from ecdiff.diffusionx.predictors import CANDIDATE_STRENGTHS, CloudPredictor, EdgePredictor, PredictorConfig, Predictors
from ecdiff.diffusionx.prompts import PromptSession

SESSIONS = [PromptSession(5, ("a small red circle at the top on a white background",
                              "a small blue circle at the top on a white background"), ("color",)),
            PromptSession(9, ("a large green square at the left on a black background",
                              "a large green square at the right on a black background",
                              "a small green square at the right on a black background"), ("position", "size"))]


@pytest.fixture(scope="module")
def predictors(tmp_path_factory):
    """Constant predictors: cloud 0.6 (bias only, predicted fidelity peaks there), edge its untrained mixture's
    (all-zero experts: 0.4)."""
    folder = tmp_path_factory.mktemp("predictors")
    config = PredictorConfig()
    weight = torch.zeros(5 + 1, len(CANDIDATE_STRENGTHS), dtype=torch.float64)  # [alignment, 1]
    weight[-1] = torch.tensor([100 - 100 * abs(s - 0.6) for s in CANDIDATE_STRENGTHS])
    torch.manual_seed(0)
    Predictors(config, EdgePredictor(config).eval(), CloudPredictor(weight)).save(folder)
    return folder


def bench(tmp_path, predictors, *extra):
    sessions = tmp_path / "s.jsonl"
    sessions.write_text("".join(s.to_json() + "\n" for s in SESSIONS))
    return main(["bench", "sessions", "--tiny", "--sessions", str(sessions), "--out", str(tmp_path / "out"),
                 "--steps", "4", "--preview-steps", "4", "--predictors", str(predictors), "--torch-threads", "1",
                 "--no-progress", "--no-warmup", *extra])


def test_results_schema_tables_and_resume(tmp_path, predictors, monkeypatch):
    assert bench(tmp_path, predictors) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results) == {"rows", "machine"}
    assert [r["method"] for r in results["rows"]] == ["cloud", "edge", "diffusionx-fixed", "diffusionx"]
    for row in results["rows"]:
        assert set(row) == {"method", "fidelity", "fid", "latency_s", "cloud_compute_s"}
        assert 0 <= row["fidelity"] <= 100 and row["latency_s"] > 0
    by = {r["method"]: r for r in results["rows"]}
    assert by["edge"]["cloud_compute_s"] == 0 and by["cloud"]["cloud_compute_s"] > 0
    details = json.loads((tmp_path / "out" / "details.json").read_text())["details"]
    assert details["diffusionx-fixed"]["edge_strength"] == pytest.approx(0.6)
    assert details["diffusionx"]["refine_strength"] == pytest.approx(0.6)
    # Per edit kind: one colour, one position and one size revision; each method's strengths on them.
    assert {k: v["revisions"] for k, v in details["diffusionx"]["by_edit"].items()} == {"color": 1, "position": 1, "size": 1}
    assert all(v["edge_strength"] == pytest.approx(0.6) for v in details["diffusionx-fixed"]["by_edit"].values())
    assert all(v["edge_strength"] == pytest.approx(0.4) for v in details["diffusionx"]["by_edit"].values())
    assert details["edge"]["transfer_s"] == 0 and details["diffusionx"]["transfer_s"] > 0
    tables = (tmp_path / "out" / "tables.md").read_text()
    assert all(f"## Table {n}" in tables for n in (1, 2, 3, 4, 5)) and "Preview fidelity" in tables
    assert "| diffusionx-fixed | 0.60 / " in tables
    assert "approximation in the refinement: yes (p 3 from the start step, k 1, alpha 0.3)" in tables  # the default
    # One round fidelity per round; for cloud and edge the last round's picture IS the final image.
    for method in by:
        folders = [d for d in (tmp_path / "out" / "sessions").iterdir() if d.name.rsplit("-", 1)[0] == method]
        metas = [json.loads(f.read_text()) for d in folders for f in d.glob("*.json")]
        assert sorted(len(m["round_fidelity"]) for m in metas) == [2, 3]
        if method in ("cloud", "edge"):
            assert sum(m["round_fidelity"][-1] for m in metas) / 2 == pytest.approx(by[method]["fidelity"])

    def fail(*args):
        raise AssertionError("ran a cached session again")

    monkeypatch.setattr("ecdiff.bench.sessions.run_session", fail)
    assert bench(tmp_path, predictors) == 0
    again = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["fidelity"] for r in again["rows"]] == [r["fidelity"] for r in results["rows"]]
    assert [r["latency_s"] for r in again["rows"]] == [r["latency_s"] for r in results["rows"]]


def test_session_latency_is_compute_plus_modelled_transfer():
    from ecdiff.bench.sessions_runner import SessionRecord

    record = SessionRecord(image=None, edge_compute_s=1.0, cloud_compute_s=2.0, decode_s=0.5, messages=[2500, 5000])
    # 20 Mbps: 2500 B = 1 ms, 5000 B = 2 ms; plus 10 ms one-way latency per message.
    assert record.latency_s(LinkConfig(20.0, 10.0)) == pytest.approx(3.5 + 0.001 + 0.002 + 0.020)


def test_bad_arguments_are_clear_errors(tmp_path, predictors, capsys):
    assert bench(tmp_path, predictors, "--methods", "cloud,magic") == 2
    assert "unknown methods" in capsys.readouterr().err
    assert bench(tmp_path, tmp_path / "nowhere", "--methods", "diffusionx") == 2
    assert "make predictors" in capsys.readouterr().err
