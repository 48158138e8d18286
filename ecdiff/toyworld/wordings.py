"""Many wordings of one scene, from the world's grammar: synonyms, word orders and sentence frames.

The training templates (`captions.TEMPLATES`) give every scene six fixed wordings; prompts written
by people use others. This generator composes a caption from independent choices, so a few
hundred frames x phrasings x synonyms give thousands of wordings per scene:

- size: small / tiny / little, large / big, each optionally as "(size)", "of size", "sized";
- colour and shape: the palette's own names (the parser reads no other), in noun phrases with the
  size before or after the colour, after the shape ("a circle, red and small"), or as a clause;
- position: top / upper, bottom / lower, left, right, center / centre / middle, with several
  prepositions and nouns ("corner", "side", "area", "region", "part") and both word orders of a
  corner ("left top");
- background: white, black, gray / grey with background / backdrop / surface / field / ground;
- about 30 sentence frames that order object, position and background differently.

Every wording reads back to its scene with `ecdiff.toyworld.parser.parse_caption`: the word
lists below only use words the parser reads for their attribute, and no frame word is one of
the parser's attribute words (tests/toyworld/test_wordings.py checks every frame and synonym).
The generator never reads the benchmark's prompt files; a test checks that it never writes one
of their lines.

    wordings(scene, count, seed)   # `count` wordings, deterministic from `seed`
    WordingGenerator(seed).sample(scene)
"""

from __future__ import annotations

import random
from typing import Iterator

from ecdiff.toyworld.scene import Scene

SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "tiny", "little"), "large": ("large", "big")}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {"white": ("white",), "black": ("black",), "gray": ("gray", "grey")}
VERTICAL_WORDS: dict[str, tuple[str, ...]] = {"top": ("top", "upper"), "bottom": ("bottom", "lower")}
CENTER_WORDS: tuple[str, ...] = ("center", "centre", "middle")
BACKGROUND_NOUNS: tuple[str, ...] = ("background", "backdrop", "surface", "field", "ground")
# Modifiers that name no attribute: they vary the token sequence, not the scene.
COLOR_FORMS: tuple[str, ...] = ("{c}", "{c}", "{c}", "bright {c}", "solid {c}", "{c}-coloured", "{c}-colored", "plain {c}")
SHAPE_FORMS: tuple[str, ...] = ("{s}", "{s}", "{s}", "{s} shape", "{s}-shaped object", "flat {s}")
BACKGROUND_FORMS: tuple[str, ...] = ("{b} {n}", "{b} {n}", "plain {b} {n}", "solid {b} {n}", "{n} of {b}",
                                     "uniform {b} {n}")

# Noun phrases for the object: {z} size word, {c} colour phrase, {s} shape phrase.
OBJECT_PHRASES: tuple[str, ...] = (
    "a {z} {c} {s}", "a {z} {c} {s}", "one {z} {c} {s}", "the {z} {c} {s}", "a {c} {z} {s}",
    "a {c} {s} of {z} size", "a {z}-sized {c} {s}", "a {c} {s} that is {z}", "a {z} {s} in {c}",
    "a {z} {s} coloured {c}", "a {s}, {c} and {z},", "a {c} {s} ({z})", "a single {z} {c} {s}",
    "{z} {c} {s}", "{c} {s}, {z},",
)

# Position phrases: {where} is filled from one of these for the scene's position kind.
CORNER_PHRASES: tuple[str, ...] = (
    "in the {v} {h}", "at the {v} {h}", "in the {v}-{h} corner", "near the {v} {h} corner", "{v} {h}",
    "toward the {v} {h}", "in the {h} {v} corner", "at {v} {h}", "in the {v} {h} area", "over in the {v} {h}",
)
SIDE_PHRASES_V: tuple[str, ...] = (
    "at the {v}", "near the {v}", "at the {v} side", "toward the {v}", "in the {v} part", "{v}", "along the {v}",
    "at the {v} of the frame", "in the {v} region",
)
SIDE_PHRASES_H: tuple[str, ...] = (
    "on the {h}", "at the {h}", "on the {h} side", "toward the {h}", "in the {h} part", "{h}", "at the {h} side",
    "near the {h} border", "in the {h} region",
)
CENTER_PHRASES: tuple[str, ...] = (
    "in the {m}", "at the {m}", "in the {m} of the frame", "{m}", "near the {m}", "in the very {m}",
    "at the {m} of the image",
)

# Sentence frames: {o} object phrase, {w} where, {g} background phrase.
FRAMES: tuple[str, ...] = (
    "{o} {w} on a {g}", "{o} {w}, {g}", "{o} on a {g}, {w}", "{w}: {o} on a {g}", "a {g} with {o} {w}",
    "a {g}; {o} sits {w}", "an image of {o} {w} on a {g}", "a picture of {o} on a {g}, {w}",
    "draw {o} {w} on a {g}", "show {o} {w} over a {g}", "{o}, {w}, {g}", "{g}, {o} {w}",
    "on a {g}, {o} {w}", "{w} there is {o} on a {g}", "there is {o} {w} and the {g}",
    "{o} lies {w}; behind it a {g}", "a {g}. {o} {w}.", "{o} is {w}. {g}", "{o} shown {w} with a {g}",
    "a drawing: {g}, {o}, {w}", "{o} drawn {w} over a {g}", "{w}, on a {g}, {o}", "{g} and {o} {w}",
    "simple scene, {o} {w}, {g}", "{o} appears {w} on a {g}", "{o} located {w}, on a {g}",
    "an illustration with {o} {w}; {g}", "a {g} showing {o} {w}", "{o} to be seen {w} on a {g}",
    "{o} - {w} - {g}",
)


def _article_fix(text: str) -> str:
    """'a' before a vowel sound -> 'an' (one rule for every frame), and tidy spaces around punctuation."""
    words = text.split(" ")
    for i in range(len(words) - 1):
        following = words[i + 1].lower()
        if words[i] in ("a", "A") and following[:1] in "aeiou" and not following.startswith(("uni", "one")):
            words[i] = "an" if words[i] == "a" else "An"
    out = " ".join(words)
    for bad, good in ((",,", ","), (", .", "."), (",.", "."), (", ;", ";"), (",;", ";"), (", :", ":"),
                      (", -", " -"), ("  ", " ")):
        out = out.replace(bad, good)
    return out.strip().rstrip(",")


class WordingGenerator:
    """Draws wordings of scenes; the sequence is fixed by `seed`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def _where(self, position: str) -> str:
        r = self.rng
        if position == "center":
            return r.choice(CENTER_PHRASES).format(m=r.choice(CENTER_WORDS))
        parts = position.split()
        if len(parts) == 2:
            return r.choice(CORNER_PHRASES).format(v=r.choice(VERTICAL_WORDS[parts[0]]), h=parts[1])
        if parts[0] in VERTICAL_WORDS:
            return r.choice(SIDE_PHRASES_V).format(v=r.choice(VERTICAL_WORDS[parts[0]]))
        return r.choice(SIDE_PHRASES_H).format(h=parts[0])

    def sample(self, scene: Scene) -> str:
        r = self.rng
        obj = r.choice(OBJECT_PHRASES).format(z=r.choice(SIZE_WORDS[scene.size]),
                                              c=r.choice(COLOR_FORMS).format(c=scene.color),
                                              s=r.choice(SHAPE_FORMS).format(s=scene.shape))
        background = r.choice(BACKGROUND_FORMS).format(b=r.choice(BACKGROUND_WORDS[scene.background]),
                                                       n=r.choice(BACKGROUND_NOUNS))
        text = r.choice(FRAMES).format(o=obj, w=self._where(scene.position), g=background)
        return _article_fix(text)

    def stream(self, scene: Scene) -> Iterator[str]:
        while True:
            yield self.sample(scene)


def wordings(scene: Scene, count: int, seed: int) -> list[str]:
    """`count` wordings of `scene` (repeats possible), deterministic from `seed`."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    gen = WordingGenerator(seed)
    return [gen.sample(scene) for _ in range(count)]
