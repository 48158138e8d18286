"""The toy world's fixed vocabulary: image size, RGB palette, shapes, sizes and grid positions.

These values are part of the project's contract (outside checks read images by them), so they
live in one place and nothing else hard-codes them.
"""

from __future__ import annotations

IMAGE_SIZE = 64

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
}

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 170, 70),
    "blue": (40, 90, 230),
    "purple": (140, 60, 200),
    "pink": (245, 120, 190),
    "brown": (125, 75, 35),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")

# Side of the square box the object fits in, in pixels.
SIZES: dict[str, int] = {"small": 16, "large": 32}

# Object centre (x, y) in pixels on the 3x3 grid.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (16, 16),
    "top": (32, 16),
    "top right": (48, 16),
    "left": (16, 32),
    "center": (32, 32),
    "right": (48, 32),
    "bottom left": (16, 48),
    "bottom": (32, 48),
    "bottom right": (48, 48),
}

# Attribute name -> ordered class names; the order fixes class indices everywhere (scorer heads).
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "background": tuple(BACKGROUNDS),
    "color": tuple(COLORS),
    "shape": SHAPES,
    "size": tuple(SIZES),
    "position": tuple(POSITIONS),
}
