import numpy as np
import pytest

from ecdiff.toyworld import BACKGROUNDS, COLORS, POSITIONS, Jitter, Scene, render, render_batch


def _scene(**kw):
    base = dict(background="white", color="red", shape="square", size="small", position="center")
    return Scene(**{**base, **kw})


def _object_mask(image, background):
    return np.any(image != np.array(BACKGROUNDS[background], dtype=np.uint8), axis=-1)


def test_exact_palette_and_pixel_aligned_square():
    # A small square at the centre spans [24, 40) exactly on pixel edges: 16x16 pixels of pure colour.
    image = render(_scene(background="gray", color="yellow"))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert (image[24:40, 24:40] == COLORS["yellow"]).all()
    mask = _object_mask(image, "gray")
    assert mask.sum() == 16 * 16
    assert (image[~mask] == BACKGROUNDS["gray"]).all()


@pytest.mark.parametrize("size,side", [("small", 16), ("large", 32)])
def test_shape_areas_match_geometry(size, side):
    # Coverage (anti-aliased fraction per pixel) sums to the shape's area, up to supersampling error.
    half = side / 2
    expected = {"circle": np.pi * half**2, "square": side**2, "triangle": side**2 / 2, "diamond": 2 * half**2}
    for shape, area in expected.items():
        image = render(_scene(shape=shape, size=size, background="black", color="blue")).astype(np.float64)
        bg, fg = np.array(BACKGROUNDS["black"], float), np.array(COLORS["blue"], float)
        coverage = ((image - bg) / (fg - bg)).mean(axis=-1)
        assert abs(coverage.sum() - area) <= 0.03 * area, shape


def test_triangle_points_up():
    image = render(_scene(shape="triangle", size="large"))
    mask = _object_mask(image, "white")
    rows = np.nonzero(mask.any(axis=1))[0]
    assert mask[rows[0]].sum() < mask[rows[-1]].sum() / 4


@pytest.mark.parametrize("position", list(POSITIONS))
def test_positions_on_the_grid(position):
    image = render(_scene(position=position, shape="circle"))
    ys, xs = np.nonzero(_object_mask(image, "white"))
    cx, cy = POSITIONS[position]
    # pixel i covers [i, i + 1): its centre is i + 0.5
    assert abs(xs.mean() + 0.5 - cx) < 0.5 and abs(ys.mean() + 0.5 - cy) < 0.5


def test_jitter_is_seeded_and_bounded():
    scenes = [_scene(shape="square", size="large")] * 50
    a = render_batch(scenes, seed=3, jitter=Jitter())
    b = render_batch(scenes, seed=3, jitter=Jitter())
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, render_batch(scenes, seed=4, jitter=Jitter()))
    for image in a:
        ys, xs = np.nonzero(_object_mask(image, "white"))
        side = xs.max() - xs.min() + 1
        assert 32 * 0.9 - 1 <= side <= 32 * 1.1 + 1
        assert abs((xs.min() + xs.max() + 1) / 2 - 32) <= 2 + 0.5


def test_render_argument_errors():
    with pytest.raises(ValueError):
        render(_scene(), rng=np.random.default_rng(0))
    with pytest.raises(ValueError):
        Jitter(max_shift_px=-1)
    with pytest.raises(ValueError):
        Jitter(max_scale=0.7)
