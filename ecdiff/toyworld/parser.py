"""Caption -> Scene: reads the five attributes back from a free-form toy-world caption.

Each attribute has its own disjoint vocabulary (object colours never name a background colour),
so the parser looks for words, not templates; it accepts the canonical grammar, every training
paraphrase and common synonyms. A caption that names an attribute twice with different values,
or not at all, is rejected with a ValueError rather than guessed.
"""

from __future__ import annotations

import re

from ecdiff.toyworld.palette import COLORS, SHAPES
from ecdiff.toyworld.scene import Scene

_BACKGROUND_WORDS = {"white": "white", "black": "black", "gray": "gray", "grey": "gray"}
_SIZE_WORDS = {"small": "small", "tiny": "small", "little": "small", "large": "large", "big": "large"}
_VERTICAL = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
_HORIZONTAL = {"left": "left", "right": "right"}
_CENTER = {"center", "centre", "middle"}


def _single(found: set[str], attribute: str, text: str) -> str:
    if not found:
        raise ValueError(f"caption names no {attribute}: {text!r}")
    if len(found) > 1:
        raise ValueError(f"caption names several {attribute}s {sorted(found)}: {text!r}")
    return found.pop()


def _position(words: list[str], text: str) -> str:
    vertical = {_VERTICAL[w] for w in words if w in _VERTICAL}
    horizontal = {_HORIZONTAL[w] for w in words if w in _HORIZONTAL}
    center = any(w in _CENTER for w in words)
    if len(vertical) > 1 or len(horizontal) > 1 or (center and (vertical or horizontal)):
        raise ValueError(f"caption names conflicting positions: {text!r}")
    if not (vertical or horizontal or center):
        raise ValueError(f"caption names no position: {text!r}")
    return " ".join([*vertical, *horizontal]) or "center"


def parse_caption(text: str) -> Scene:
    """The scene a caption describes; ValueError when an attribute is missing or contradictory."""
    if not isinstance(text, str):
        raise ValueError(f"caption must be a string, got {type(text).__name__}")
    words = re.findall(r"[a-z]+", text.lower())
    background = _single({_BACKGROUND_WORDS[w] for w in words if w in _BACKGROUND_WORDS}, "background", text)
    color = _single({w for w in words if w in COLORS}, "color", text)
    shape = _single({w.removesuffix("s") for w in words if w.removesuffix("s") in SHAPES}, "shape", text)
    size = _single({_SIZE_WORDS[w] for w in words if w in _SIZE_WORDS}, "size", text)
    return Scene(background=background, color=color, shape=shape, size=size, position=_position(words, text))
