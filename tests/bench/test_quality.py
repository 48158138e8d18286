import csv
import json

import pytest
import torch

from ecdiff.cli import main
from ecdiff.images import open_picture
from ecdiff.loading import load_pair
from ecdiff.metrics import scorer_fid, ssim, stack_images
from ecdiff.search.generate import generate
from ecdiff.strategies import CloudOnly, EdgeOnly, HybridSD, PlanCounts

ROW_KEYS = {"method", "psnr", "ssim", "lpips", "fidelity", "latency_s", "speedup", "cloud_calls", "edge_calls",
            "transfer_bytes", "params"}
TINY = ["--tiny", "--steps", "6", "--pre-steps", "2", "--k", "1", "--alpha", "0.5", "--switch-step", "4", "--no-progress", "--torch-threads", "1"]


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.tsv"
    path.write_text("id\tprompt\tseed\n1\ta red circle\t11\n2\ta blue square\t12\n")
    return path


def test_quality_tiny_end_to_end_and_resume(tmp_path, prompts, monkeypatch):
    monkeypatch.setattr("ecdiff.bench.quality.load_scorer", lambda: None)
    out = tmp_path / "out"
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), "--no-warmup", *TINY]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"rows", "machine"}
    rows = {r["method"]: r for r in results["rows"]}
    assert list(rows) == ["cloud", "edge", "hybrid-10", "hybrid-25", "ecdiff"]
    assert all(set(r) == ROW_KEYS for r in rows.values())

    assert rows["cloud"]["ssim"] == 1.0 and rows["cloud"]["psnr"] is None and rows["cloud"]["speedup"] == 1.0
    assert rows["cloud"]["lpips"] is None and rows["cloud"]["fidelity"] is None  # no weights, no scorer here
    # HybridSD-n: the last round(n * 6 / 50) steps on the edge -> 1 and 3 of 6.
    assert rows["hybrid-10"]["params"]["cloud_steps"] == 5 and rows["hybrid-25"]["params"]["cloud_steps"] == 3
    expected_counts = {"cloud": CloudOnly(), "edge": EdgeOnly(), "hybrid-10": HybridSD(5), "hybrid-25": HybridSD(3)}
    for name, strategy in expected_counts.items():
        counts = PlanCounts.of(strategy.plan(6))
        assert (rows[name]["cloud_calls"], rows[name]["edge_calls"]) == (counts.cloud, counts.edge)
    assert (rows["ecdiff"]["cloud_calls"], rows["ecdiff"]["edge_calls"]) == (3, 2)  # p=2,k=1,s=4: C C A C | E E
    latent_bytes = 1 * 4 * 8 * 8 * 4  # one float32 [1, 4, 8, 8] handoff latent
    assert [rows[m]["transfer_bytes"] for m in rows] == [0, 0, latent_bytes, latent_bytes, latent_bytes]
    for r in rows.values():
        assert r["speedup"] == pytest.approx(rows["cloud"]["latency_s"] / r["latency_s"])
        assert r["params"]["transfer_s_model"] == pytest.approx(r["transfer_bytes"] * 8 / 18.88e6)

    # The edge row's SSIM, recomputed from independently generated images.
    pair = load_pair(tiny=True)
    items = [("a red circle", 11), ("a blue square", 12)]
    ref = stack_images([generate(pair, CloudOnly(), p, s, 6).image for p, s in items])
    edge = stack_images([generate(pair, EdgeOnly(), p, s, 6).image for p, s in items])
    assert rows["edge"]["ssim"] == pytest.approx(float(ssim(edge, ref).mean()), abs=1e-12)
    assert rows["edge"]["ssim"] < 1.0

    with open(out / "results.csv") as f:
        assert [r["method"] for r in csv.DictReader(f)] == list(rows)
    table = (out / "table.md").read_text()
    assert sum(line.startswith("| ") for line in table.splitlines()) == 6 and "| ecdiff |" in table
    assert (out / "quality_vs_latency.png").stat().st_size > 1000

    # Resume: every image comes from the cache, with the latencies recorded the first time.
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), "--no-warmup", *TINY]) == 0
    again = json.loads((out / "results.json").read_text())
    assert all(r["params"]["images_from_cache"] == 2 for r in again["rows"])
    assert [r["latency_s"] for r in again["rows"]] == [r["latency_s"] for r in results["rows"]]

    # A lost entry is regenerated alone.
    next((out / "images").glob("edge-*/*.json")).unlink()
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), "--no-warmup", *TINY]) == 0
    cached = {r["method"]: r["params"]["images_from_cache"] for r in json.loads((out / "results.json").read_text())["rows"]}
    assert cached == {"cloud": 2, "edge": 1, "hybrid-10": 2, "hybrid-25": 2, "ecdiff": 2}


def test_e2e_through_the_services_matches_in_process(tmp_path, prompts, monkeypatch):
    monkeypatch.setattr("ecdiff.bench.quality.load_scorer", lambda: None)
    out, link = tmp_path / "out", ["--bandwidth-mbps", "0.5"]
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), "--latency", "both", *link, *TINY]) == 0
    both = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert all(set(r) == ROW_KEYS | {"latency_e2e_s", "speedup_e2e"} for r in both.values())
    for name, r in both.items():
        e2e = r["params"]["e2e"]
        assert e2e["images_equal_in_process"] == 2, name  # float32 handoff: bit-identical pictures
        assert r["speedup_e2e"] == pytest.approx(both["cloud"]["latency_e2e_s"] / r["latency_e2e_s"])
        assert e2e["bandwidth_mbps"] == 0.5 and e2e["server_total_s"] <= r["latency_e2e_s"]
        if name == "edge":
            assert e2e["transfer_s"] == 0 and e2e["bytes_from_cloud"] == 0
        else:  # the last message (the handoff, >= one float32 [1, 4, 8, 8] latent) serialises after the cloud's compute
            assert e2e["transfer_s"] >= 4 * 8 * 8 * 4 * 8 / 0.5e6
    assert "E2E latency" in (out / "table.md").read_text()

    # e2e alone: the pictures come from the same cache, and the metrics from them equal the in-process ones.
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), "--latency", "e2e", *link, *TINY]) == 0
    e2e = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    for name, r in e2e.items():
        assert set(r) == ROW_KEYS and r["params"]["images_from_cache"] == 2
        assert r["latency_s"] == both[name]["latency_e2e_s"]
        assert (r["ssim"], r["psnr"], r["cloud_calls"], r["edge_calls"]) == (
            both[name]["ssim"], both[name]["psnr"], both[name]["cloud_calls"], both[name]["edge_calls"])
        # Bytes on the wire, median over the two prompts (= their mean), both directions.
        wire = r["params"]["e2e"]["bytes_to_cloud"] + r["params"]["e2e"]["bytes_from_cloud"]
        assert abs(r["transfer_bytes"] - wire) <= 0.5 and (wire > 1024) == (name != "edge")


def test_ablation_offers_no_latency_mode(tmp_path, prompts, capsys):
    """The services run only the models' own scheduler with one correction, so the ablation never offers e2e latency."""
    with pytest.raises(SystemExit):
        main(["bench", "ablation", "--prompts", str(prompts), "--out", str(tmp_path), "--latency", "e2e", *TINY])
    assert "unrecognized arguments: --latency e2e" in capsys.readouterr().err


def test_without_trained_pair_asks_for_tiny(tmp_path, prompts, capsys, monkeypatch):
    def missing(name, **placement):
        raise FileNotFoundError(f"no model folder models/{name}")

    monkeypatch.setattr("ecdiff.models.load_pipeline", missing)
    args = ["bench", "quality", "--prompts", str(prompts), "--out", str(tmp_path), "--pre-steps", "2", "--k", "1",
            "--alpha", "0.5", "--switch-step", "4", "--steps", "6"]
    assert main(args) == 2
    assert "--tiny" in capsys.readouterr().err


def test_ecdiff_parameters_come_from_the_strategy_config(tmp_path, prompts, capsys, monkeypatch):
    monkeypatch.setattr("ecdiff.bench.quality.load_scorer", lambda: None)
    config = tmp_path / "strategy.toml"
    config.write_text("num_steps = 50\n[ecdiff]\npre_steps = 7\nk = 3\nalpha = 0.3\nswitch_step = 40\n"
                      "rule = \"slope\"\nbeta = 0.2\n[hybrid]\ncloud_steps = 25\n")
    monkeypatch.setenv("ECDIFF_STRATEGY_CONFIG", str(config))  # the services' variable: one file for both
    out = tmp_path / "out"
    tiny = ["--tiny", "--steps", "10", "--no-progress", "--no-warmup", "--torch-threads", "1"]
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), *tiny]) == 0
    ecdiff = json.loads((out / "results.json").read_text())["rows"][-1]["params"]
    # Scaled to 10 steps as the services scale them: p = max(2, round(1.4)) = 2, s = round(8.0) = 8.
    assert (ecdiff["num_steps"], ecdiff["pre_steps"], ecdiff["k"], ecdiff["alpha"], ecdiff["switch_step"]) == (10, 2, 3, 0.3, 8)
    assert (ecdiff["rule"], ecdiff["beta"]) == ("slope", 0.2)
    absent = ["--strategy-config", str(tmp_path / "none.toml")]
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), *tiny, *absent]) == 2
    assert "none.toml not found" in capsys.readouterr().err


def test_an_ecdiff_row_beside_the_configured_one(tmp_path, prompts, capsys, monkeypatch):
    monkeypatch.setattr("ecdiff.bench.quality.load_scorer", lambda: None)
    out = tmp_path / "out"
    row = ["--rule", "quadratic", "--beta", "0.5", "--ecdiff-row", "ecdiff-paper:rule=paper,k=2,alpha=0.0"]
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), "--no-warmup", *TINY, *row]) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert list(rows)[-2:] == ["ecdiff", "ecdiff-paper"]
    assert (rows["ecdiff"]["params"]["rule"], rows["ecdiff"]["params"]["k"]) == ("quadratic", 1)
    paper = rows["ecdiff-paper"]["params"]
    assert (paper["rule"], paper["k"], paper["alpha"], paper["beta"], paper["switch_step"]) == ("paper", 2, 0.0, None, 4)
    assert rows["ecdiff-paper"]["cloud_calls"] == 2  # p=2, k=2, s=4: C C A A | E E
    assert "| ecdiff-paper |" in (out / "table.md").read_text()
    for bad, message in (("ecdiff:k=2", "a new NAME"), ("x:gamma=1", "not key=value"), ("x:k=two", "k must be a int")):
        assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), *TINY, "--ecdiff-row", bad]) == 2
        assert message in capsys.readouterr().err


class FakeScorer:
    """Deterministic stand-in for the trained alignment scorer."""

    def features(self, images):
        return torch.cat([images.mean(dim=(2, 3)), images.std(dim=(2, 3))], dim=1)

    def fidelity(self, images, prompts):
        return [100.0 * float(img.mean()) + len(p) for img, p in zip(images, prompts)]


def test_fidelity_and_scorer_fid_come_from_the_scorer(tmp_path, prompts, monkeypatch):
    monkeypatch.setattr("ecdiff.bench.quality.load_scorer", FakeScorer)
    out = tmp_path / "out"
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), "--no-warmup", *TINY]) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    fid = json.loads((out / "scorer_fid.json").read_text())["fid"]
    pair = load_pair(tiny=True)
    items = [("a red circle", 11), ("a blue square", 12)]
    cloud = stack_images([generate(pair, CloudOnly(), p, s, 6).image for p, s in items])
    edge = stack_images([generate(pair, EdgeOnly(), p, s, 6).image for p, s in items])
    expected = sum(FakeScorer().fidelity(edge, [p for p, _ in items])) / 2
    assert rows["edge"]["fidelity"] == pytest.approx(expected, rel=1e-12)
    assert fid["edge"] == pytest.approx(scorer_fid(FakeScorer(), edge, cloud), rel=1e-9)
    assert fid["cloud"] == pytest.approx(0.0, abs=1e-9)
    assert "Scorer-FID" in (out / "table.md").read_text()


@pytest.mark.parametrize("family, scheduler, latency", [("sd1", "DDIMScheduler", "in-process"),
                                                         ("sdxl", "EulerDiscreteScheduler", "both")])
def test_a_family_folder_pair_in_process_and_through_the_services(tmp_path, family_folders, monkeypatch, family,
                                                                   scheduler, latency):
    """Folders by path, on the folder's own scheduler (as the services run it). SD-1.x (CLIP, a
    BK-SDM-style edge) in process; SDXL-class also through the services, whose pictures equal the
    in-process ones (SD-1.x through the services: tests/services/test_families.py)."""
    monkeypatch.setattr("ecdiff.bench.quality.load_scorer", lambda: None)
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("id\tprompt\tseed\n1\ta red circle on the blue\t11\n")
    folders = family_folders[family]
    args = [arg for arg in TINY if arg != "--tiny"]
    out = tmp_path / "out"
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), "--latency", latency, "--no-warmup",
                 "--cloud-model", str(folders["cloud"]), "--edge-model", str(folders["edge"]), *args]) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows["ecdiff"]["params"]["scheduler"] == scheduler
    assert (rows["ecdiff"]["cloud_calls"], rows["ecdiff"]["edge_calls"]) == (3, 2)
    if latency == "both":
        assert all(r["params"]["e2e"]["images_equal_in_process"] == 1 for r in rows.values())
    assert rows["edge"]["ssim"] < 1.0 == rows["cloud"]["ssim"]


def test_the_video_folder_pair_in_process_and_through_the_services_scores_every_frame(tmp_path, family_folders,
                                                                                     monkeypatch):
    """CogVideoX-class folders: each picture is a 9-frame video, stored as an animated PNG, PSNR/SSIM
    are per frame, averaged, and the videos through the services equal the in-process ones."""
    monkeypatch.setattr("ecdiff.bench.quality.load_scorer", lambda: None)
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("id\tprompt\tseed\n1\ta red circle on the blue\t11\n")
    folders = family_folders["cogvideox"]
    out = tmp_path / "out"
    assert main(["bench", "quality", "--prompts", str(prompts), "--out", str(out), "--latency", "both", "--no-warmup",
                 "--cloud-model", str(folders["cloud"]), "--edge-model", str(folders["edge"]),
                 *[a for a in TINY if a != "--tiny"]]) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows["ecdiff"]["params"]["scheduler"] == "CogVideoXDDIMScheduler"
    assert all(r["params"]["e2e"]["images_equal_in_process"] == 1 for r in rows.values())
    stored = {path.parent.name.rsplit("-", 1)[0]: open_picture(path) for path in (out / "images").glob("*/*.png")}
    assert all(len(video.frames) == 9 for video in stored.values())
    expected = float(ssim(stack_images([stored["edge"]]), stack_images([stored["cloud"]])))
    assert rows["edge"]["ssim"] == pytest.approx(expected) and rows["cloud"]["ssim"] == 1.0
