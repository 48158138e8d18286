"""`ecdiff bench refine-rules` on the tiny random pair: the grid, the plan counts, the cache, bad input."""

import json

import pytest

from ecdiff.bench import refine_rules
from ecdiff.bench.refine_rules import Candidate, candidates
from ecdiff.bench.rule_error import Variant
from ecdiff.cli import main
from ecdiff.diffusionx.prompts import PromptSession
from ecdiff.diffusionx.refine import RefineConfig
from ecdiff.img2img import img2img_start_step
from ecdiff.strategies import PlanCounts

SESSIONS = [PromptSession(5, ("a small red circle at the top on a white background",
                              "a small blue circle at the top on a white background"), ("color",)),
            PromptSession(9, ("a large green square at the left on a black background",
                              "a large green square at the right on a black background",
                              "a small green square at the right on a black background"), ("position", "size"))]
STEPS, STRENGTH = 10, 0.8


def bench(tmp_path, *grid):
    sessions = tmp_path / "s.jsonl"
    sessions.write_text("".join(s.to_json() + "\n" for s in SESSIONS))
    return main(["bench", "refine-rules", "--tiny", "--sessions", str(sessions), "--out", str(tmp_path / "out"),
                 "--steps", str(STEPS), "--preview-steps", "4", "--preview-strength", "0.5", "--strength", str(STRENGTH),
                 "--torch-threads", "1", "--no-progress", *grid])


def results(tmp_path) -> dict:
    return json.loads((tmp_path / "out" / "results.json").read_text())


def test_every_candidate_against_the_exact_refinement_and_resume(tmp_path, monkeypatch):
    assert bench(tmp_path, "--variant", "slope:0.5", "--k", "2", "--pre-steps", "3", "8") == 0
    r = results(tmp_path)["strengths"]["0.8"]
    start = img2img_start_step(STEPS, STRENGTH)  # 2: the refinement runs 8 steps
    assert r["exact"]["calls"] == STEPS - start and r["strengths"]["counts"] == {"0.8": 2}
    names = [row["candidate"] for row in r["candidates"]]
    assert names == ["paper:0.3 k1 p3", "slope:0.5 k2 p3", "slope:0.5 k2 p8"]  # the shipped default first
    assert results(tmp_path)["baseline"] == str(Candidate.of(RefineConfig()))
    for row in r["candidates"]:
        config = Candidate(Variant.parse(row["candidate"].split()[0]), int(row["candidate"].split()[1][1:]),
                           int(row["candidate"].split()[2][1:])).config(STEPS)
        counts = PlanCounts.of(config.strategy(start).plan(STEPS)[start:])
        assert row["per_session"]["calls"] == [counts.cloud] * 2 and row["per_session"]["approx"] == [counts.approx] * 2
        assert all(0 < s <= 1 for s in row["per_session"]["ssim"]) and row["cost"] == counts.cloud / (STEPS - start)
    by = {row["candidate"]: row for row in r["candidates"]}
    # pre_steps 8 covers the whole refinement: every step is a real call, the exact refinement's image
    assert by["slope:0.5 k2 p8"]["per_session"]["ssim"] == [1.0, 1.0]
    assert by["slope:0.5 k2 p8"]["fidelity"] == r["exact"]["fidelity"]
    assert by["slope:0.5 k2 p3"]["calls"] == 4  # real calls 2, 3, 4, then one per k + 1 = 3 steps: 7
    tables = (tmp_path / "out" / "tables.md").read_text()
    assert f"**chosen: {results(tmp_path)['chosen']}**" in tables and "baseline (shipped): paper:0.3 k1 p3" in tables

    measured, measure = [], refine_rules.measure_session

    def recorded(setup, final, strength, todo, entry):
        measured.append((strength, [str(c) for c in todo]))
        measure(setup, final, strength, todo, entry)

    monkeypatch.setattr(refine_rules, "measure_session", recorded)
    assert bench(tmp_path, "--variant", "slope:0.5", "--k", "2", "--pre-steps", "3", "8") == 0
    assert measured == [] and results(tmp_path)["strengths"]["0.8"] == r  # all from the cache
    # a wider grid measures only what is new; another strength measures everything, at that strength
    assert bench(tmp_path, "--variant", "slope:0.5", "--variant", "paper:0", "--k", "2", "--pre-steps", "3",
                 "--strength", str(STRENGTH), "0.5") == 0
    everything = ["paper:0.3 k1 p3", "slope:0.5 k2 p3", "paper:0 k2 p3"]
    assert measured == [(STRENGTH, ["paper:0 k2 p3"]), (0.5, everything)] * 2
    damaged = sorted((tmp_path / "out" / "cache").glob("*/*.json"))[0]
    damaged.write_text("[]")
    measured.clear()
    assert bench(tmp_path, "--variant", "slope:0.5", "--variant", "paper:0", "--k", "2", "--pre-steps", "3",
                 "--strength", str(STRENGTH), "0.5") == 0
    assert len(measured) == 1 and measured[0][1] == everything  # a damaged entry is measured again, whole
    both = results(tmp_path)
    assert [[row["candidate"] for row in s["candidates"]] for s in both["strengths"].values()] == [everything] * 2
    assert both["strengths"]["0.5"]["exact"]["calls"] == STEPS // 2
    assert both["chosen"] in everything


def test_bad_grids_and_strengths_are_refused(tmp_path):
    with pytest.raises(ValueError, match="pre_steps >= 3"):
        candidates([Variant.parse("lsq:0.5")], [1], [2], 10)
    assert candidates([Variant.parse("paper:0.3")], [1], [3], 10) == [Candidate.of(RefineConfig())]  # no repeats
    assert bench(tmp_path, "--variant", "quadratic:0.5", "--pre-steps", "2") == 2
    assert bench(tmp_path, "--variant", "slope:2") == 2
    assert bench(tmp_path, "--k", "-1") == 2
    sessions = tmp_path / "s.jsonl"
    for strength in ("0", "1.5", "often"):
        assert main(["bench", "refine-rules", "--tiny", "--sessions", str(sessions), "--strength", strength]) == 2
    assert main(["bench", "refine-rules", "--tiny", "--sessions", str(sessions),
                 "--predictors", str(tmp_path / "none")]) == 2  # the predictors choose the strengths by default


from support.one_thread import one_torch_thread  # noqa: F401,E402  (autouse fixture)
