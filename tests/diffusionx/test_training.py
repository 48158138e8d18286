"""`make predictors` at toy size on the tiny random pair: labels, resume, training, the choosers."""

import json
import shutil

import pytest
import torch

from ecdiff.diffusionx import labels, training
from ecdiff.diffusionx.choosers import load_choosers
from ecdiff.diffusionx.embeddings import preview_images
from ecdiff.diffusionx.engine import PreviewConfig, PreviewEngine
from ecdiff.diffusionx.predictors import CANDIDATE_STRENGTHS
from ecdiff.diffusionx.prompts import read_sessions
from ecdiff.diffusionx.refine import RefineConfig, Refiner
from ecdiff.diffusionx.store import SessionStore
from ecdiff.loading import load_pair

ARGS = ["--tiny", "--limit", "3", "--cloud-sessions", "2", "--batch", "2", "--seeds", "2", "--preview-steps", "3",
        "--refine-steps", "3", "--epochs", "3", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("predictors")
    out, cache = root / "out", root / "cache"
    assert training.main([*ARGS, "--out", str(out), "--cache", str(cache)]) == 0
    return out, cache


def test_training_writes_weights_card_and_measured_validation(trained):
    out, _ = trained
    meta = json.loads((out / "config.json").read_text())["training"]
    sessions = read_sessions(training.DEFAULT_SESSIONS)[:3]
    assert meta["edge_labels"] == sum(len(s.prompts) - 1 for s in sessions) and meta["cloud_labels"] == 2
    v = meta["edge_validation"]
    # The priced labels are within the tolerance of each example's best: no fixed strength beats them by more.
    assert v["examples"] >= 1
    assert all(v["oracle"]["soft"] >= f["soft"] - meta["edge_tolerance"] for f in v["fixed"].values())
    assert 0.4 <= v["predictor"]["strength"] <= 0.9 and meta["edge_kind"] in ("mixture", "mlp")
    assert set(meta["edge_cv_mse"]) == {"mixture", "mlp"} and meta["candidates"] == [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    # Reported per edit kind, on validation and out-of-fold on the training split.
    held = [s for i, s in enumerate(sessions) if i in training.held_out_sessions(3, 2, 0.2, 0)]
    assert set(v["by_edit"]) == {e for s in held for e in s.edits}
    assert sum(r["examples"] for r in meta["edge_cv_by_edit"].values()) == meta["edge_labels"] - v["examples"]
    assert {"edge.safetensors", "cloud.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    assert "Edge choices by edit kind" in (out / "README.md").read_text()


def test_labels_carry_every_seed_replica_and_their_mean(trained):
    _, cache = trained
    records = [r for f in sorted(cache.glob("*/edge-*.json")) for r in json.loads(f.read_text())]
    for r in records:
        assert len(r["replicas"]) == 2 and r["replicas"][0]["seed"] != r["replicas"][1]["seed"]
        for key in ("fidelity", "soft"):
            mean = [(a + b) / 2 for a, b in zip(r["replicas"][0][key], r["replicas"][1][key])]
            assert r[key] == pytest.approx(mean) and len(r[key]) == len(CANDIDATE_STRENGTHS)
        assert all(f in (0, 20, 40, 60, 80, 100) for x in r["replicas"] for f in x["fidelity"])
        assert all(0 <= f <= 100 for x in r["replicas"] for f in x["soft"])
    seeds = {s.seed for s in read_sessions(training.DEFAULT_SESSIONS)[:3]}
    assert {r["replicas"][0]["seed"] for r in records} <= seeds  # the first replica is the session itself


def test_a_rerun_reads_every_chunk_from_the_cache(trained, tmp_path, monkeypatch):
    _, cache = trained

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached chunk")

    monkeypatch.setattr(labels, "edge_chunk", fail)
    monkeypatch.setattr(labels, "cloud_chunk", fail)
    assert training.main([*ARGS, "--out", str(tmp_path / "again"), "--cache", str(cache)]) == 0
    # The first chunk of 2 sessions alone (a --limit at a multiple of --batch) is the longer run's chunk.
    shorter = list(ARGS)
    shorter[ARGS.index("--limit") + 1] = "2"
    assert training.main([*shorter, "--val-fraction", "0", "--out", str(tmp_path / "prefix"), "--cache", str(cache)]) == 0


def test_validation_holds_out_whole_sessions(trained):
    meta = json.loads((trained[0] / "config.json").read_text())["training"]
    sessions = read_sessions(training.DEFAULT_SESSIONS)[:3]
    held = training.held_out_sessions(3, 2, 0.2, 0)
    # round(3 * 0.2) = 1 session held out, none of the 2 cloud-labelled ones (round(0.4) = 0).
    assert meta["validation_sessions"] == len(held) == 1 and min(held) >= 2
    assert meta["edge_validation"]["examples"] == sum(len(sessions[s].prompts) - 1 for s in held)
    assert meta["cloud_validation"] == {} and meta["weight_decay"] in (0.01, 0.1, 1.0, 10.0, 30.0)


def test_a_cache_that_does_not_match_the_sessions_is_a_clear_error(trained, tmp_path, capsys):
    _, cache = trained
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    edge_file = sorted(copy.glob("*/edge-*.json"))[0]
    records = json.loads(edge_file.read_text())
    records[0]["prompt"] = "a prompt of another session"
    edge_file.write_text(json.dumps(records))
    assert training.main([*ARGS, "--out", str(tmp_path / "out"), "--cache", str(copy)]) == 2
    assert "do not match the sessions" in capsys.readouterr().err


def test_choosers_drive_the_engine(trained):
    edge_choice, cloud_choice = load_choosers(str(trained[0]))
    pair = load_pair(tiny=True)
    images = preview_images(pair.edge, torch.zeros(1, 4, 8, 8))
    red, blue = "a small red circle at the top on a white background", "a small blue circle at the top on a white background"
    assert edge_choice(red, blue, images) in CANDIDATE_STRENGTHS
    assert edge_choice(red, "a cat on a sofa", images) is None  # no alignment to read: abstains
    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(), PreviewConfig(num_steps=3), edge_choice)
    first = engine.start("a small red circle at the top on a white background", seed=3)
    second = engine.revise(first.session_id, "a small red square at the top on a white background")
    assert second.strength_source == "predictor" and second.strength in CANDIDATE_STRENGTHS
    refiner = Refiner(pair.cloud, pair.guidance, RefineConfig(num_steps=3), cloud_choice)
    final = engine.finalize_input(first.session_id)
    refined = refiner.refine(final.prompt, final.seed, final.round_index, final.latents)
    assert refined.strength_source == "predictor" and refined.strength in CANDIDATE_STRENGTHS
    # A prompt that names no toy-world scene has no alignment: the chooser abstains, the refiner's default.
    assert cloud_choice("a cat on a sofa", preview_images(pair.edge, final.latents)) is None
    other = refiner.refine("a cat on a sofa", final.seed, final.round_index, final.latents)
    assert (other.strength_source, other.strength) == ("default", RefineConfig().default_strength)


def test_bad_flags_are_clear_errors(capsys):
    assert training.main(["--tiny", "--val-fraction", "1.5"]) == 2
    assert "--val-fraction" in capsys.readouterr().err
    assert training.main(["--tiny", "--cv-folds", "1"]) == 2
    assert "--cv-folds" in capsys.readouterr().err


def test_smoke_runs_never_write_into_the_shipped_models(tmp_path):
    from ecdiff.models.training.paths import REPO_ROOT, models_dir

    assert training.output_dir(None, tiny=True) == REPO_ROOT / training.TINY_OUT
    assert training.output_dir(None, tiny=False) == models_dir().resolve() / "diffusionx-predictors"
    assert training.output_dir(tmp_path, tiny=True) == tmp_path
    with pytest.raises(ValueError, match="refusing to write"):
        training.output_dir(models_dir() / "diffusionx-predictors", tiny=True)
