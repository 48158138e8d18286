"""A rule-based palette-and-geometry reader: the attributes of a toy-world image, no learning.

It reads images the way an outside check would (by the world's palette and geometry, see
`palette.py`), so the evaluation does not rest on the trained alignment scorer alone:

1. background: the palette background nearest to the median colour of the image's border;
2. colour: the palette colour nearest to the median of the object's core, the pixels at least
   80 % as far from the background as the farthest one (edge pixels are blends with the
   background, and a blurred small object has few interior pixels);
3. object mask: pixels at least half-way from the background towards that colour (so an
   anti-aliased edge counts by its coverage, as the renderer blends it);
4. size: mask area against the geometric mean of the largest small and smallest large object
   area (small squares cover 256 px, large triangles and diamonds 512);
5. shape: the shape whose ideal outline, placed and scaled to the mask's centroid and area,
   overlaps the mask best (intersection over union);
6. position: the grid point nearest to that shape's box centre (a triangle's centroid sits a
   third of its half-height below the centre of its box).

An image with no pixel off the background reads `None` for every object attribute.
"""

from __future__ import annotations

import math

import numpy as np

from ecdiff.toyworld.palette import BACKGROUNDS, COLORS, IMAGE_SIZE, POSITIONS, SHAPES, SIZES
from ecdiff.toyworld.render import inside

_BORDER_PX = 2
# Half the smallest colour-to-background distance of the palette (purple on gray, ~100).
_OFF_BACKGROUND = 50.0
_CORE_FRACTION = 0.8
_SIZE_AREA_THRESHOLD = math.sqrt(SIZES["small"] ** 2 * (SIZES["large"] ** 2 / 2))
# Area of each shape per (half side)^2 of its box: the renderer's inside tests.
_AREA_PER_HALF_SQUARED = {"circle": math.pi, "square": 4.0, "triangle": 2.0, "diamond": 2.0}

_BG_NAMES, _BG_RGB = list(BACKGROUNDS), np.asarray(list(BACKGROUNDS.values()), dtype=np.float64)
_COLOR_NAMES, _COLOR_RGB = list(COLORS), np.asarray(list(COLORS.values()), dtype=np.float64)
_POS_NAMES, _POS_XY = list(POSITIONS), np.asarray(list(POSITIONS.values()), dtype=np.float64)
_PIXEL_CENTRES = np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5


def _nearest(value: np.ndarray, table: np.ndarray) -> int:
    return int(np.argmin(((table - value) ** 2).sum(axis=1)))


def _box_centre(shape: str, cx: float, cy: float, half: float) -> tuple[float, float]:
    """Centre of the shape's box given its centroid (only the triangle's differ)."""
    return (cx, cy - half / 3) if shape == "triangle" else (cx, cy)


def read_image(image: np.ndarray) -> dict[str, str | None]:
    """Attributes of one (64, 64, 3) uint8 image, as attribute name -> class name (or None)."""
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f"expected a ({IMAGE_SIZE}, {IMAGE_SIZE}, 3) image, got shape {image.shape}")
    pixels = image.astype(np.float64)
    border = np.concatenate([pixels[:_BORDER_PX].reshape(-1, 3), pixels[-_BORDER_PX:].reshape(-1, 3),
                             pixels[:, :_BORDER_PX].reshape(-1, 3), pixels[:, -_BORDER_PX:].reshape(-1, 3)])
    background_index = _nearest(np.median(border, axis=0), _BG_RGB)
    background = _BG_RGB[background_index]
    read: dict[str, str | None] = {"background": _BG_NAMES[background_index]}
    distance = np.linalg.norm(pixels - background, axis=2)
    if not (distance > _OFF_BACKGROUND).any():
        return read | {"color": None, "shape": None, "size": None, "position": None}
    core = distance >= _CORE_FRACTION * distance.max()
    color_index = _nearest(np.median(pixels[core], axis=0), _COLOR_RGB)
    read["color"] = _COLOR_NAMES[color_index]
    direction = _COLOR_RGB[color_index] - background
    progress = (pixels - background) @ direction / (direction @ direction)
    mask = progress >= 0.5
    area = float(mask.sum())
    if area == 0:
        return read | {"shape": None, "size": None, "position": None}
    read["size"] = "small" if area < _SIZE_AREA_THRESHOLD else "large"
    ys, xs = np.nonzero(mask)
    cx, cy = float(xs.mean() + 0.5), float(ys.mean() + 0.5)
    best_shape, best_iou, best_centre = SHAPES[0], -1.0, (cx, cy)
    for shape in SHAPES:
        half = math.sqrt(area / _AREA_PER_HALF_SQUARED[shape])
        centre = _box_centre(shape, cx, cy, half)
        outline = inside(shape, _PIXEL_CENTRES, *centre, half)  # pixel centres: the renderer's test, not supersampled
        iou = float((outline & mask).sum() / (outline | mask).sum())
        if iou > best_iou:
            best_shape, best_iou, best_centre = shape, iou, centre
    read["shape"] = best_shape
    read["position"] = _POS_NAMES[_nearest(np.asarray(best_centre), _POS_XY)]
    return read


def read_images(images: np.ndarray) -> list[dict[str, str | None]]:
    """`read_image` over an (N, 64, 64, 3) uint8 batch."""
    if images.ndim != 4:
        raise ValueError(f"expected an (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) batch, got shape {images.shape}")
    return [read_image(image) for image in images]
