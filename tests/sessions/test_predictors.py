import numpy as np
import pytest
import torch

from ecdiff.sessions.labels import best_strength
from ecdiff.sessions.predictors import (CANDIDATE_STRENGTHS, CloudPredictor, EdgePredictor, PredictorConfig, Predictors,
                                        load_predictors, snap_strength)


def test_candidates_and_snapping():
    assert CANDIDATE_STRENGTHS == (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
    assert [snap_strength(v) for v in (-1.0, 0.1, 0.42, 0.43, 0.674, 0.676, 0.9, 3.0)] == \
        [0.4, 0.4, 0.4, 0.45, 0.65, 0.7, 0.9, 0.9]


def test_best_strength_breaks_ties_toward_the_lower_strength():
    assert best_strength([40, 80, 80, 60, 80, 0, 0, 0, 0, 0, 0]) == 0.45
    assert best_strength([0] * 10 + [20]) == 0.9
    assert best_strength([100] * 11) == 0.4


def test_ridge_head_is_the_closed_form_solution():
    rng = np.random.default_rng(0)
    text, image = torch.tensor(rng.normal(size=(30, 4))), torch.tensor(rng.normal(size=(30, 3)))
    y = torch.tensor(rng.uniform(0.4, 0.9, size=30))
    x = CloudPredictor.inputs(text, image)
    lam = 2.5
    # Reference: least squares on x stacked over sqrt(lam) I (bias row left out), numpy.
    augmented = np.vstack([x.numpy(), np.sqrt(lam) * np.eye(8)[:7]])
    target = np.concatenate([y.numpy(), np.zeros(7)])
    expected = np.linalg.lstsq(augmented, target, rcond=None)[0]
    torch.testing.assert_close(CloudPredictor.fit(x, y, lam).weight, torch.tensor(expected), rtol=1e-9, atol=1e-9)


def test_edge_output_stays_in_the_candidate_range():
    torch.manual_seed(0)
    model = EdgePredictor(PredictorConfig(text_dim=5, hidden=4))
    out = model(torch.randn(100, 15) * 100)
    assert out.min() >= 0.4 and out.max() <= 0.9


def test_save_and_load_round_trip(tmp_path):
    config = PredictorConfig(text_dim=5, image_dim=3, hidden=4, ridge=0.5)
    torch.manual_seed(1)
    edge = EdgePredictor(config).eval()
    cloud = CloudPredictor(torch.randn(9, dtype=torch.float64))
    Predictors(config, edge, cloud).save(tmp_path, {"note": "test"})
    loaded = load_predictors(tmp_path)
    x = torch.randn(4, 15)
    torch.testing.assert_close(loaded.edge(x), edge(x))
    assert loaded.config == config
    # float32 storage of the ridge weights: relative error of a float32 cast.
    torch.testing.assert_close(loaded.cloud.weight, cloud.weight, rtol=2**-23, atol=0)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="make predictors"):
        load_predictors(tmp_path / "absent")
