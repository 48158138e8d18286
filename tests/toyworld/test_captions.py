import numpy as np
import pytest

from ecdiff.toyworld import TEMPLATES, Scene, all_scenes, canonical_caption, caption, parse_caption, sample_scenes


def test_canonical_form():
    scene = Scene(background="black", color="purple", shape="diamond", size="large", position="bottom left")
    assert canonical_caption(scene) == "a large purple diamond at the bottom left on a black background"
    center = Scene(background="gray", color="pink", shape="circle", size="small", position="center")
    assert canonical_caption(center) == "a small pink circle in the center on a gray background"


def test_every_template_parses_back_for_every_scene():
    assert len(TEMPLATES) >= 4
    for scene in all_scenes():
        for t in range(len(TEMPLATES)):
            assert parse_caption(caption(scene, t)) == scene


def test_templates_differ():
    scene = all_scenes()[500]
    assert len({caption(scene, t) for t in range(len(TEMPLATES))}) == len(TEMPLATES)


@pytest.mark.parametrize("text,expected", [
    ("A BIG Green Triangle in the middle, grey backdrop", ("gray", "green", "triangle", "large", "center")),
    ("tiny brown squares upper-right on white", ("white", "brown", "square", "small", "top right")),
    ("small orange circle at the lower left on a black background", ("black", "orange", "circle", "small", "bottom left")),
])
def test_synonyms(text, expected):
    assert parse_caption(text) == Scene(*expected)


@pytest.mark.parametrize("text", [
    "a small red circle at the top",                          # no background
    "a small red blue circle at the top on a white background",  # two colours
    "a small red circle at the top left in the center on a white background",  # conflicting positions
    "a red circle at the top on a white background",          # no size
    "",
])
def test_parser_rejects_missing_or_conflicting(text):
    with pytest.raises(ValueError):
        parse_caption(text)


def test_caption_template_out_of_range():
    with pytest.raises(ValueError):
        caption(all_scenes()[0], len(TEMPLATES))


def test_scene_validation_and_sampling():
    with pytest.raises(ValueError):
        Scene(background="white", color="cyan", shape="circle", size="small", position="center")
    scenes = all_scenes()
    assert len(scenes) == len(set(scenes)) == 3 * 8 * 4 * 2 * 9
    a = sample_scenes(20, np.random.default_rng(0))
    assert a == sample_scenes(20, np.random.default_rng(0))
    with pytest.raises(ValueError):
        sample_scenes(-1, np.random.default_rng(0))
