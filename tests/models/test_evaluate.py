"""The evaluation's second reading: the rule-based reader next to the scorer."""

import dataclasses

import pytest

from ecdiff.models.training.evaluate import _reader_accuracy
from ecdiff.toyworld import all_scenes, render_batch


def test_reader_accuracy_counts_each_attribute_separately():
    scenes = all_scenes()[:4]
    drawn = list(scenes)
    drawn[1] = dataclasses.replace(scenes[1], color="blue" if scenes[1].color != "blue" else "red")
    acc = _reader_accuracy(render_batch(drawn, seed=0), scenes)
    assert acc == pytest.approx({"background": 1.0, "color": 0.75, "shape": 1.0, "size": 1.0, "position": 1.0,
                                 "mean": 0.95})
