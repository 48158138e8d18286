"""The evaluation's second reading (the rule-based reader) and how the cards show it."""

import dataclasses
import json

import numpy as np
import pytest

from ecdiff.models.training.evaluate import _reader_accuracy
from ecdiff.models.training.model_cards import unet_card, vae_card
from ecdiff.toyworld import ATTRIBUTES, all_scenes, render_batch


def test_reader_accuracy_counts_each_attribute_separately():
    scenes = all_scenes()[:4]
    drawn = list(scenes)
    drawn[1] = dataclasses.replace(scenes[1], color="blue" if scenes[1].color != "blue" else "red")
    acc = _reader_accuracy(render_batch(drawn, seed=0), scenes)
    assert acc == pytest.approx({"background": 1.0, "color": 0.75, "shape": 1.0, "size": 1.0, "position": 1.0,
                                 "mean": 0.95})


def _eval_accuracy(value):
    acc = {name: value for name in ATTRIBUTES}
    return acc | {"mean": value}


def test_cards_show_the_reader_table_only_when_it_was_measured(tmp_path):
    (tmp_path / "training.json").write_text(json.dumps({"config": {}, "latent_std": 1.0}))
    vae_eval = {"images": 10, "psnr_db_mean_over_images": 30.0, "psnr_db_of_mean_mse": 29.0,
                "scorer_accuracy_on_reconstructions": _eval_accuracy(1.0),
                "scorer_accuracy_on_originals": _eval_accuracy(1.0)}
    (tmp_path / "eval.json").write_text(json.dumps(vae_eval))
    assert "palette-and-geometry reader" not in vae_card(tmp_path)
    (tmp_path / "eval.json").write_text(json.dumps(vae_eval | {"reader_accuracy_on_reconstructions": _eval_accuracy(0.875)}))
    card = vae_card(tmp_path)
    assert "palette-and-geometry reader" in card and "87.5 %" in card

    unet_eval = {"prompts": 10, "steps": 50, "guidance": 7.0, "accuracy": _eval_accuracy(0.9),
                 "reader_accuracy": _eval_accuracy(0.625),
                 "seconds_per_image_single_call": {"min": 1.0, "median": 1.1, "calls": 8}, "machine": "cpu"}
    (tmp_path / "eval.json").write_text(json.dumps(unet_eval))
    card = unet_card("toyworld-cloud", tmp_path)
    assert "palette-and-geometry reader" in card and "62.5 %" in card
