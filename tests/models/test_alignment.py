"""The shipped alignment scorer behind the metrics' Scorer protocol (what the bench reports)."""

import numpy as np
import pytest
import torch

from ecdiff.metrics import Scorer, scorer_fid
from ecdiff.models import load_scorer
from ecdiff.models.registry import models_dir
from ecdiff.loading import load_scorer as bench_scorer
from ecdiff.toyworld import ATTRIBUTES, Scene, all_scenes, canonical_caption, parse_caption, render

pytestmark = pytest.mark.skipif(not (models_dir() / "toyworld-scorer" / "scorer.safetensors").is_file(),
                                reason="shipped scorer absent")


def as_metric_images(arrays: list[np.ndarray]) -> torch.Tensor:
    """uint8 [H, W, 3] pictures as the metrics hold them: float [N, 3, H, W] = uint8 / 255."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def test_the_bench_finds_the_shipped_scorer_and_it_is_a_metrics_scorer():
    scorer = bench_scorer()
    assert scorer is not None and isinstance(scorer, Scorer)


def test_fidelity_is_the_share_of_attributes_read_from_the_raw_logits():
    scorer = load_scorer()
    scenes = all_scenes()[::61]
    images = as_metric_images([render(s) for s in scenes])
    # Prompts: each scene's caption, then with 0..4 attributes swapped for another value.
    prompts, expected = [], []
    with torch.no_grad():
        logits = scorer.network(images * 2 - 1)  # reference: the network reads [-1, 1]
    for j, scene in enumerate(scenes):
        wanted = {name: getattr(scene, name) for name in ATTRIBUTES}
        for name in list(ATTRIBUTES)[: j % 5]:
            classes = ATTRIBUTES[name]
            wanted[name] = classes[(classes.index(wanted[name]) + 1) % len(classes)]
        prompts.append(canonical_caption(Scene(**wanted)))
        read = {name: ATTRIBUTES[name][int(logits[name][j].argmax())] for name in ATTRIBUTES}
        expected.append(100.0 * sum(read[n] == wanted[n] for n in ATTRIBUTES) / len(ATTRIBUTES))
    got = scorer.fidelity(images, prompts)
    assert got == expected
    # The shipped scorer reads exact renders (>= 99 % in its own test): true captions score 100.
    true = scorer.fidelity(images, [canonical_caption(s) for s in scenes])
    assert sum(v == 100.0 for v in true) >= len(scenes) - 1
    assert parse_caption(prompts[1]) != scenes[1]


def test_soft_fidelity_is_the_mean_probability_of_the_prompts_values():
    scorer = load_scorer()
    scenes = all_scenes()[::97]
    images = as_metric_images([render(s) for s in scenes])
    wrong = [canonical_caption(Scene(**{**s.as_dict(), "color": "red" if s.color != "red" else "blue"})) for s in scenes]
    with torch.no_grad():
        probs = {name: p.softmax(1) for name, p in scorer.network(images * 2 - 1).items()}
    expected = [100 * sum(float(probs[n][j, ATTRIBUTES[n].index(getattr(parse_caption(c), n))]) for n in ATTRIBUTES) / 5
                for j, c in enumerate(wrong)]
    assert scorer.soft_fidelity(images, wrong) == pytest.approx(expected, rel=1e-6)
    true = scorer.soft_fidelity(images, [canonical_caption(s) for s in scenes])
    # Renders of the true scene: near 100; one attribute wrong: near 80, below every true score.
    assert min(true) > 90 and max(expected) < min(true) and 70 < sum(expected) / len(expected) < 85
    with pytest.raises(ValueError, match="captions"):
        scorer.soft_fidelity(images, wrong[:-1])


def test_features_separate_scenes_and_feed_scorer_fid():
    scorer = load_scorer()
    scenes = all_scenes()
    reds = [s for s in scenes if s.color == "red"][:40]
    blues = [s for s in scenes if s.color == "blue"][:40]
    x_red, x_blue = as_metric_images([render(s) for s in reds]), as_metric_images([render(s) for s in blues])
    f = scorer.features(x_red)
    assert f.shape == (40, scorer.network.trunk[0].out_features) and bool((f >= 0).all())  # after a ReLU
    torch.testing.assert_close(scorer.features(x_red), f, rtol=0, atol=0)  # eval mode: deterministic
    cross = scorer_fid(scorer, x_red, x_blue)
    # 40 images < 256 features: the covariances are singular and sqrtm is only approximate, so the
    # distance of a set to itself is ~0 relative to the distance between colours, not exactly 0.
    assert abs(scorer_fid(scorer, x_red, x_red)) < 1e-3 * cross and cross > 1.0


def test_bad_images_are_a_clear_error():
    scorer = load_scorer()
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        scorer.features(torch.zeros(3, 64, 64))
