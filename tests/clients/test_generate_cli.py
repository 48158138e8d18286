"""`ecdiff generate` (its `main`) against edges that answer with a notice or not at all."""

import pytest
from PIL import Image

from ecdiff.cli import main
from ecdiff.clients import generate_cli
from ecdiff.clients.sdk import GenerateResult
from ecdiff.loading import load_model
from ecdiff.v1 import edge_pb2, strategy_pb2
from support.edges import extra_edge, toy_world_named


def generate(capsys, edge, out, *extra, prompt="a small red circle at the top left on a white background"):
    code = main(["generate", prompt, "--out", str(out), "--edge", edge, "--steps", "4", *extra])
    return code, capsys.readouterr().out


def test_a_toy_world_edge_that_cannot_draw_the_prompt_prints_a_notice(services, tmp_path, capsys):
    with extra_edge(services, toy_world_named(load_model("edge", "tiny"))) as edge:
        code, printed = generate(capsys, edge.target, tmp_path / "img.png", "--strategy", "edge",
                                 prompt="a purple elephant")
        assert code == 0 and Image.open(tmp_path / "img.png").size == (64, 64)
        (notice,) = [line for line in printed.splitlines() if line.startswith("notice: ")]
        assert "the toy world cannot draw this prompt" in notice and "8 colors: red, orange" in notice
        code, printed = generate(capsys, edge.target, tmp_path / "ok.png", "--strategy", "edge")
        assert code == 0 and "notice:" not in printed


def hints(printed):
    return [line for line in printed.splitlines() if line.startswith("hint: ")]


def test_no_edge_suggests_starting_one_or_pointing_at_one(tmp_path, capsys, dead_target):
    code, printed = generate(capsys, dead_target, tmp_path / "img.png")
    assert code == 1 and "error: UNAVAILABLE" in printed and not (tmp_path / "img.png").exists()
    (hint,) = hints(printed)
    assert dead_target in hint and "make serve-edge" in hint and "--edge HOST:PORT" in hint and "$ECDIFF_EDGE" in hint


@pytest.mark.parametrize("require_cloud", [True, False])
def test_a_missing_cloud_with_require_cloud_suggests_starting_one(services, tmp_path, capsys, dead_target, require_cloud):
    with extra_edge(services, load_model("edge", "tiny"), cloud=dead_target) as edge:
        code, printed = generate(capsys, edge.target, tmp_path / "img.png", "--strategy", "hybrid", "--cloud-steps", "2",
                                 *(["--require-cloud"] if require_cloud else []))
    if require_cloud:
        assert code == 1 and "error: UNAVAILABLE" in printed and "require_cloud" in printed
        (hint,) = hints(printed)
        assert "make serve-cloud" in hint and "make serve-edge" not in hint
    else:  # edge-only, with the degraded notice: nothing to hint
        assert code == 0 and hints(printed) == [] and "notice: " in printed and "DEGRADED" in printed


def test_exact_strategy_is_forwarded_and_a_downgraded_result_says_what_was_served(monkeypatch, tmp_path, capsys):
    asked = []

    class FakeClient:
        def __init__(self, target, **security):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def generate(self, prompt, **options):
            asked.append(options["exact_strategy"])
            return GenerateResult(b"png", edge_pb2.Summary(
                strategy="ecdiff", num_steps=50, handoff_step=24, cloud_queue_seconds=1.5, downgraded=True,
                served_params=strategy_pb2.StrategyParams(pre_steps=4, k=5, switch_step=24),
                downgrade_reason="cloud engine under load: 9 requests queued (adaptive_queue 8)"))

    monkeypatch.setattr(generate_cli, "EdgeClient", FakeClient)
    code, printed = generate(capsys, "edge:1", tmp_path / "img.png")
    assert code == 0 and asked == [False]
    assert "cloud queue        1.500 s" in printed
    assert "DOWNGRADED         served p 4, k 5, s 24: cloud engine under load: 9 requests queued" in printed
    code, printed = generate(capsys, "edge:1", tmp_path / "img.png", "--exact-strategy")
    assert code == 0 and asked == [False, True]
