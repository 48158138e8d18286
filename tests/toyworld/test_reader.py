"""The rule-based reader reads back what the renderer drew, without any learned weights."""

import dataclasses

import numpy as np
import pytest

from ecdiff.toyworld import ATTRIBUTES, BACKGROUNDS, Jitter, all_scenes, render_batch
from ecdiff.toyworld.reader import read_image, read_images


def _attributes(scene):
    return {name: getattr(scene, name) for name in ATTRIBUTES}


@pytest.mark.parametrize("jitter", [None, Jitter()], ids=["exact", "jittered"])
def test_reads_every_scene_back(jitter):
    scenes = all_scenes()
    images = render_batch(scenes, seed=11, jitter=jitter)
    assert read_images(images) == [_attributes(s) for s in scenes]


def test_mild_pixel_noise_does_not_change_the_reading():
    # Generated images are not flat: noise of 8 levels per channel must not move any attribute.
    scenes = all_scenes()[::7]
    images = render_batch(scenes, seed=12, jitter=Jitter()).astype(np.float64)
    noisy = np.clip(images + np.random.default_rng(0).normal(0, 8, images.shape), 0, 255).round().astype(np.uint8)
    assert read_images(noisy) == [_attributes(s) for s in scenes]


def test_an_empty_background_reads_no_object():
    image = np.broadcast_to(np.asarray(BACKGROUNDS["gray"], np.uint8), (64, 64, 3)).copy()
    assert read_image(image) == {"background": "gray", "color": None, "shape": None, "size": None, "position": None}


def test_a_wrong_colour_is_read_as_the_nearest_palette_colour():
    scene = dataclasses.replace(all_scenes()[0], color="red", background="white")
    image = render_batch([scene], seed=0)[0].astype(np.int16)
    image[np.all(image == (220, 40, 40), axis=-1)] = (250, 110, 15)  # between red and orange, nearer orange
    assert read_image(image.astype(np.uint8))["color"] == "orange"


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="expected a \\(64, 64, 3\\) image"):
        read_image(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="batch"):
        read_images(np.zeros((64, 64, 3), np.uint8))
