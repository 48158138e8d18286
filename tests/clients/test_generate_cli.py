"""`ecdiff generate` (its `main`) against edges that answer with a notice or not at all."""

import pytest
from PIL import Image

from ecdiff.cli import main
from ecdiff.loading import load_model
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
