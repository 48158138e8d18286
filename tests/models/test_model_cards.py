"""Model cards: every statement comes from training.json / eval.json, and only when it was measured."""

import json

from ecdiff.models.training.model_cards import unet_card, vae_card
from ecdiff.toyworld import ATTRIBUTES


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


def test_unet_card_states_the_low_noise_phase_and_the_distillation_only_when_trained_with_them(tmp_path):
    plain = {"config": {"steps": 3900, "late_from_step": None}}
    (tmp_path / "training.json").write_text(json.dumps(plain))
    card = unet_card("toyworld-cloud", tmp_path)
    assert "No distillation." in card and "low-noise" not in card
    distilled = {"config": {"steps": 2600, "late_from_step": 1100, "late_max_timestep": 400},
                 "distillation": {"teacher": "toyworld-cloud", "wall_time_s": 450.0,
                                  "config": {"steps": 800, "max_timestep": 400, "batch_size": 32, "lr": 2e-4, "ema_decay": 0.995}}}
    (tmp_path / "training.json").write_text(json.dumps(distilled))
    card = unet_card("toyworld-edge", tmp_path)
    assert "from step 1100 on, only timesteps t < 400" in card
    assert "800 steps of distillation from toyworld-cloud on t < 400" in card and "No distillation" not in card
    assert "broad wordings" not in card
    distilled["distillation"]["config"].update(wordings=True, wording_steps=1500, wording_prob=0.7, focus_timestep=300,
                                                focus_prob=0.75, wording_max_timestep=500)
    distilled["distillation"]["wording_phase_wall_time_s"] = 1380.0
    (tmp_path / "training.json").write_text(json.dumps(distilled))
    card = unet_card("toyworld-edge", tmp_path)
    assert "1500 steps of the same distillation on broad wordings" in card and "70%" in card
    assert "t < 300 with probability 0.75, else t < 500; run from the shipped edge, wall time 23.0 min." in card


def test_vae_card_states_the_shape_term_only_when_it_was_trained_with(tmp_path):
    (tmp_path / "training.json").write_text(json.dumps({"config": {"shape_weight": 0.3}, "latent_std": 1.0}))
    assert "cross-entropy x 0.3" in vae_card(tmp_path)
    (tmp_path / "training.json").write_text(json.dumps({"config": {}, "latent_std": 1.0}))  # a VAE trained without it
    assert "Shape-coding" not in vae_card(tmp_path)
