from pathlib import Path

import pytest

from ecdiff.diffusionx.prompts import (ATTRIBUTE_EDITS, EDITS, SessionDataConfig, generate_sessions, main,
                                     read_sessions)
from ecdiff.toyworld import parse_caption

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "sessions"


def test_the_command_regenerates_the_shipped_files_byte_for_byte(tmp_path):
    assert main(["--out", str(tmp_path)]) == 0
    for name in ("train.jsonl", "heldout.jsonl"):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name


def test_shipped_split_sizes_and_no_seed_shared_between_splits():
    train, heldout = read_sessions(SHIPPED / "train.jsonl"), read_sessions(SHIPPED / "heldout.jsonl")
    assert (len(train), len(heldout)) == (320, 80)
    assert not {s.seed for s in train} & {s.seed for s in heldout}


def test_every_edit_does_what_it_says():
    for session in generate_sessions(SessionDataConfig(sessions=200, heldout=0, seed=3)):
        assert 2 <= len(session.prompts) <= 4 and len(session.edits) == len(session.prompts) - 1
        scenes = [parse_caption(p) for p in session.prompts]
        for before, after, edit in zip(scenes, scenes[1:], session.edits):
            changed = {k for k, v in before.as_dict().items() if after.as_dict()[k] != v}
            assert edit in EDITS
            if edit in ATTRIBUTE_EDITS:
                assert changed == {edit}
            elif edit == "paraphrase":
                assert not changed
            else:
                assert before != after


def test_different_seeds_give_different_data():
    a = generate_sessions(SessionDataConfig(sessions=20, heldout=0, seed=0))
    b = generate_sessions(SessionDataConfig(sessions=20, heldout=0, seed=1))
    assert a != b


def test_bad_files_and_configs_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seed": 1, "prompts": []}\n')
    with pytest.raises(ValueError, match="non-empty list"):
        read_sessions(bad)
    bad.write_text('{"prompts": ["a"]}\n')
    with pytest.raises(ValueError, match="seed and prompts"):
        read_sessions(bad)
    with pytest.raises(ValueError, match="min_rounds"):
        SessionDataConfig(min_rounds=1)
