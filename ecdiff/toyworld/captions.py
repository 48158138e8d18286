"""Captions for scenes: the canonical form plus paraphrase templates for training.

Canonical: `a {size} {color} {shape} at the {position} on a {background} background`, with
`in the center` for the centre. The paraphrases vary word order, position phrasing and a few
synonyms (big/tiny, grey, backdrop) so prompts written by people still land on the grammar the
models were trained on; `ecdiff.toyworld.parser` reads all of them back.
"""

from __future__ import annotations

from ecdiff.toyworld.scene import Scene

_SIZE_SYNONYM = {"small": "tiny", "large": "big"}
_BACKGROUND_SYNONYM = {"white": "white", "black": "black", "gray": "grey"}


def _at_position(position: str) -> str:
    return "in the center" if position == "center" else f"at the {position}"


def _fields(scene: Scene) -> dict[str, str]:
    return {
        "size": scene.size,
        "color": scene.color,
        "shape": scene.shape,
        "background": scene.background,
        "position": scene.position,
        "at_position": _at_position(scene.position),
        "size_syn": _SIZE_SYNONYM[scene.size],
        "background_syn": _BACKGROUND_SYNONYM[scene.background],
    }


# Template 0 is the canonical caption; the rest are paraphrases used in training.
TEMPLATES: tuple[str, ...] = (
    "a {size} {color} {shape} {at_position} on a {background} background",
    "{size} {color} {shape}, {position}, {background} background",
    "a {background} background with a {size} {color} {shape} {at_position}",
    "there is a {color} {shape} {at_position}. it is {size}. the background is {background}",
    "a {size_syn} {color} {shape} on {background_syn}, {at_position}",
    "{color} {shape} ({size}) {at_position}, {background} backdrop",
)


def caption(scene: Scene, template: int = 0) -> str:
    """The caption of `scene` in template `template` (0 = canonical)."""
    if not 0 <= template < len(TEMPLATES):
        raise ValueError(f"template must be in [0, {len(TEMPLATES)}), got {template}")
    return TEMPLATES[template].format(**_fields(scene))


def canonical_caption(scene: Scene) -> str:
    return caption(scene, 0)
