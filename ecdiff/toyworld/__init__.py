"""The toy world: a fixed, procedurally rendered image domain with captions and a parser.

64x64 images of one flat-coloured object (8 colours, 4 shapes, 2 sizes, 9 grid positions) on one
of 3 plain backgrounds. It gives the offline default models something real to draw and a way to
check what they drew.
"""

from ecdiff.toyworld.captions import TEMPLATES, canonical_caption, caption
from ecdiff.toyworld.palette import ATTRIBUTES, BACKGROUNDS, COLORS, IMAGE_SIZE, POSITIONS, SHAPES, SIZES
from ecdiff.toyworld.parser import parse_caption
from ecdiff.toyworld.render import Jitter, render, render_batch
from ecdiff.toyworld.scene import Scene, all_scenes, sample_scenes

__all__ = [
    "ATTRIBUTES", "BACKGROUNDS", "COLORS", "IMAGE_SIZE", "POSITIONS", "SHAPES", "SIZES",
    "TEMPLATES", "Jitter", "Scene", "all_scenes", "canonical_caption", "caption", "parse_caption",
    "render", "render_batch", "sample_scenes",
]
