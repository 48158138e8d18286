"""The shipped prompt sets are what their generator writes, and held out from training."""

from ecdiff.bench.heldout_prompts import SETS, write_sets
from ecdiff.bench.heldout_prompts import HERE as BENCH_DIR
from ecdiff.search.prompts import read_prompts
from ecdiff.toyworld import TEMPLATES, Scene, all_scenes, caption, parse_caption


def scenes_of(path):
    rows = [line.split("\t") for line in path.read_text().splitlines()[2:]]
    return [Scene(*row[2].split("/")) for row in rows]


def test_shipped_files_are_the_generators_output(tmp_path):
    write_sets(tmp_path)
    for filename, *_ in SETS.values():
        assert (tmp_path / filename).read_text() == (BENCH_DIR / filename).read_text(), filename


def test_prompts_are_unseen_wordings_of_their_scenes_with_fresh_seeds():
    training = {caption(s, t) for s in all_scenes() for t in range(len(TEMPLATES))}
    seen_scenes, seen_seeds = set(), set()
    for filename, *_ in SETS.values():
        items = read_prompts(BENCH_DIR / filename)
        scenes = scenes_of(BENCH_DIR / filename)
        assert len(items) == len(scenes) >= 12
        for item, scene in zip(items, scenes):
            assert parse_caption(item.prompt) == scene  # the scorer reads what the prompt asks for
            assert item.prompt not in training
            # Model evaluations used seeds 0..N (N < 1000); training draws its own noise.
            assert item.seed >= 1000
        assert not seen_scenes & set(scenes) and not seen_seeds & {i.seed for i in items}  # bench vs search
        seen_scenes |= set(scenes)
        seen_seeds |= {i.seed for i in items}
