"""The benchmark's and the search's prompt sets: held-out prompts for the toy-world pair.

The pair is trained on every one of the 1728 scenes, in every caption template of
`ecdiff.toyworld.captions.TEMPLATES`, with noise from seeds the training draws itself. A
held-out prompt therefore cannot be an unseen scene; it is an unseen *wording* with a fresh
seed: phrasings that appear in no training template (other word order, the synonyms
"little", "upper", "lower", "middle", "centre", "grey" that the parser reads but no template
writes) for scenes drawn at random, with seeds far from those any training or model evaluation
used (small integers). The search and the bench get disjoint scenes, wordings and seeds, so the
bench never measures the prompts the parameters were tuned on.

    python -m ecdiff.bench.heldout_prompts   # rewrites bench/quality_prompts.tsv and bench/search_prompts.tsv
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecdiff.toyworld import Scene, all_scenes

HERE = Path(__file__).resolve().parent
_SIZE = {"small": "little", "large": "big"}
_BACKGROUND = {"white": "white", "black": "black", "gray": "grey"}
_VERTICAL = {"top": "upper", "bottom": "lower"}


def _where(position: str, centre: str) -> str:
    if position == "center":
        return f"in the {centre}"
    words = [_VERTICAL.get(w, w) for w in position.split()]
    return f"in the {' '.join(words)} corner" if len(words) == 2 else f"along the {words[0]} edge"


# Wordings of no training template (checked by tests/bench/test_heldout_prompts.py).
WORDINGS = {
    "bench": (
        "{where}, a {size} {color} {shape} against a {background} background",
        "{background} background; {color} {shape}, {size}, {where}",
    ),
    "search": (
        "one {size} {color} {shape} placed {where} of a {background} canvas",
        "picture with a {background} backdrop and a {color} {shape} ({size}) {where}",
    ),
}
# name -> (file, slice of the shuffled scenes, first seed, word for the centre): disjoint scenes and seeds.
SETS = {"bench": ("quality_prompts.tsv", slice(0, 48), 7001, "centre"),
        "search": ("search_prompts.tsv", slice(48, 60), 5001, "middle")}
SCENE_SEED = 2026


def prompt(scene: Scene, wording: str, centre: str) -> str:
    return wording.format(size=_SIZE[scene.size], color=scene.color, shape=scene.shape,
                          background=_BACKGROUND[scene.background], where=_where(scene.position, centre))


def prompt_set(name: str) -> list[tuple[str, int, Scene]]:
    """(prompt, seed, scene it describes) of one set."""
    _, part, first_seed, centre = SETS[name]
    order = np.random.default_rng(SCENE_SEED).permutation(len(all_scenes()))
    scenes = [all_scenes()[int(i)] for i in order[part]]
    wordings = WORDINGS[name]
    return [(prompt(s, wordings[i % len(wordings)], centre), first_seed + i, s) for i, s in enumerate(scenes)]


def write_sets(folder: Path = HERE) -> None:
    for name, (filename, *_rest) in SETS.items():
        rows = ["prompt\tseed\tscene"] + [f"{p}\t{seed}\t{s.background}/{s.color}/{s.shape}/{s.size}/{s.position}"
                                          for p, seed, s in prompt_set(name)]
        (folder / filename).write_text(f"# {name} prompts, held out from training: see bench/heldout_prompts.py\n"
                                       + "\n".join(rows) + "\n")


if __name__ == "__main__":
    write_sets()
