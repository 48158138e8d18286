"""The wording generator: every wording reads back to its scene, it is seeded, varied, and never
writes a line of the benchmark's held-out prompt files (this test reads them; the generator does not)."""

import csv
import itertools
import re
from pathlib import Path

import pytest

from ecdiff.toyworld import parser

from ecdiff.toyworld import COLORS, SHAPES, TEMPLATES, all_scenes, caption, parse_caption
from ecdiff.toyworld.wordings import (BACKGROUND_FORMS, BACKGROUND_NOUNS, CENTER_PHRASES, COLOR_FORMS, CORNER_PHRASES,
                                      FRAMES, OBJECT_PHRASES, SHAPE_FORMS, SIDE_PHRASES_H, SIDE_PHRASES_V,
                                      WordingGenerator, wordings)

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z]+|[^a-z\s]", text.lower()))


def _bench_prompts() -> dict[str, str]:
    """normalised prompt -> scene string, over both held-out files."""
    out = {}
    for name in ("quality_prompts.tsv", "search_prompts.tsv"):
        lines = [line for line in (BENCH / name).read_text().splitlines() if line and not line.startswith("#")]
        for row in csv.DictReader(lines, delimiter="\t"):
            out[_normal(row["prompt"])] = row["scene"]
    return out


def test_every_wording_parses_back_to_its_scene():
    for i, scene in enumerate(all_scenes()):
        for text in wordings(scene, 12, seed=i):
            assert parse_caption(text) == scene, text


def test_frame_words_name_no_attribute_and_wordings_parse():
    """Frames, phrases and modifiers add no attribute word; 6000 wordings of 200 scenes read back."""
    scenes = [s for s in all_scenes() if s.position in ("top left", "top", "left", "center")][:200]
    gen = WordingGenerator(0)
    for scene, _ in itertools.product(scenes, range(30)):
        text = gen.sample(scene)
        assert parse_caption(text) == scene, text
    pieces = [p for p in FRAMES + OBJECT_PHRASES + CORNER_PHRASES + SIDE_PHRASES_V + SIDE_PHRASES_H + CENTER_PHRASES
              + COLOR_FORMS + SHAPE_FORMS + BACKGROUND_FORMS]
    assert len(pieces) > 80 and len(BACKGROUND_NOUNS) >= 4
    # every word a frame or phrase adds (not a slot) must be none of the words the parser reads
    vocabulary = (set(parser._BACKGROUND_WORDS) | set(parser._SIZE_WORDS) | set(parser._VERTICAL)
                  | set(parser._HORIZONTAL) | parser._CENTER | set(COLORS) | set(SHAPES) | {s + "s" for s in SHAPES})
    for piece in pieces:
        filler = set(re.findall(r"[a-z]+", re.sub(r"\{[a-z]\}", " ", piece)))
        assert not filler & vocabulary, piece


def test_seeded_and_varied():
    scene = all_scenes()[777]
    assert wordings(scene, 50, seed=3) == wordings(scene, 50, seed=3)
    assert wordings(scene, 50, seed=3) != wordings(scene, 50, seed=4)
    assert len(set(wordings(scene, 200, seed=0))) >= 180
    templates = {caption(scene, t) for t in range(len(TEMPLATES))}
    assert len(templates & set(wordings(scene, 500, seed=1))) <= 2


def test_never_writes_a_benchmark_prompt():
    bench = _bench_prompts()
    assert len(bench) == 60
    # All scenes, 40 wordings each, plus 3000 wordings of every benchmark scene.
    for i, scene in enumerate(all_scenes()):
        for text in wordings(scene, 40, seed=10_000 + i):
            assert _normal(text) not in bench, text
    by_key = {f"{s.background}/{s.color}/{s.shape}/{s.size}/{s.position}": s for s in all_scenes()}
    for j, key in enumerate(sorted(set(bench.values()))):
        for text in wordings(by_key[key], 3000, seed=j):
            assert _normal(text) not in bench, text


def test_rejects_negative_count():
    with pytest.raises(ValueError):
        wordings(all_scenes()[0], -1, seed=0)
