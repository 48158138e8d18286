"""Session-fold cross-validation and the session-level validation split."""

import pytest
import torch

from ecdiff.diffusionx.crossval import cv_mse, out_of_fold, pick, pick_tolerance, session_folds
from ecdiff.diffusionx.training import held_out_sessions

SESSIONS = [0, 0, 1, 2, 2, 2, 3, 4, 4, 5]  # record -> session


def test_folds_partition_the_records_and_keep_sessions_whole():
    folds = session_folds(SESSIONS, 3, seed=0)
    assert sorted(sum(folds, [])) == list(range(len(SESSIONS)))
    fold_of = {i: f for f, fold in enumerate(folds) for i in fold}
    for i, s in enumerate(SESSIONS):
        assert all(fold_of[i] == fold_of[j] for j, t in enumerate(SESSIONS) if t == s)
    with pytest.raises(ValueError, match="k >= 2"):
        session_folds(SESSIONS, 1, seed=0)


def test_cv_mse_and_pick_against_hand_computed_errors():
    x = torch.arange(4.0).unsqueeze(1)
    y = torch.tensor([[1.0], [3.0], [5.0], [7.0]])
    folds = [[0, 1], [2, 3]]
    # Predictor: the fit half's mean of y plus `value`. Fold [0,1] sees mean 6, fold [2,3] sees mean 2.
    mean_plus = lambda xf, yf, xe, v: (yf.mean() + v).expand(len(xe), 1)  # noqa: E731
    # value 0: errors (6-1, 6-3, 2-5, 2-7) -> (25 + 9 + 9 + 25) / 4 = 17.
    assert cv_mse(mean_plus, x, y, folds, 0.0) == pytest.approx(17.0)
    # value 1: (7-1, 7-3, 3-5, 3-7) -> (36 + 16 + 4 + 16) / 4 = 18.
    assert cv_mse(mean_plus, x, y, folds, 1.0) == pytest.approx(18.0)
    best, errors = pick(mean_plus, x, y, [0, 0, 1, 1], [1.0, 0.0], k=2, seed=0)
    assert best == 0.0 and errors == {"1.0": pytest.approx(18.0), "0.0": pytest.approx(17.0)}
    assert pick(mean_plus, x, y, [0, 0, 1, 1], [3.0], k=2, seed=0) == (3.0, {})


def test_held_out_sessions_share_out_the_cloud_labelled_ones():
    held = held_out_sessions(160, 60, 0.2, seed=0)
    assert len(held) == 32 and sum(s < 60 for s in held) == 12
    assert held == held_out_sessions(160, 60, 0.2, seed=0) != held_out_sessions(160, 60, 0.2, seed=1)
    assert held_out_sessions(1, 1, 0.9, seed=0) == set()  # the only session is kept for fitting


def test_out_of_fold_predictions_come_from_the_other_folds_in_record_order():
    x, y = torch.arange(4.0).unsqueeze(1), torch.tensor([[1.0], [3.0], [5.0], [7.0]])
    mean_of_fit = lambda xf, yf, xe, v: yf.mean().expand(len(xe), 1)  # noqa: E731
    predicted = out_of_fold(mean_of_fit, x, y, [[0, 2], [1, 3]], 0.0)
    torch.testing.assert_close(predicted, torch.tensor([[5.0], [3.0], [5.0], [3.0]], dtype=torch.float64))


def _strength_rows(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_tolerance_is_the_cheapest_at_least_as_faithful_as_the_best_fixed_strength():
    # Measured fidelity of 3 records at the 6 candidates; the best fixed strength is 0.60 (mean 80).
    fidelity = _strength_rows([0, 100, 100, 100, 100, 100],
                              [0, 0, 100, 100, 100, 100],
                              [100, 100, 40, 40, 40, 40])
    # Predictions rise slowly with strength; record 2's peak is at 0.40.
    predicted = _strength_rows([50, 90, 91, 92, 93, 99],
                               [50, 60, 91, 92, 93, 99],
                               [99, 98, 50, 50, 50, 50])
    chosen, table = pick_tolerance(predicted, fidelity, [0.0, 7.0, 9.5, 50.0])
    assert table["best-fixed"] == {"fidelity": pytest.approx(80.0), "strength": 0.6}
    # 0: choices 0.90, 0.90, 0.40 -> fidelity (100 + 100 + 100) / 3; mean strength 2.2 / 3.
    assert table["0.0"] == {"fidelity": pytest.approx(100.0), "strength": pytest.approx(2.2 / 3)}
    # 7 (>= 92): 0.70, 0.70, 0.40 -> 100 at 1.8 / 3. 9.5 (>= 89.5): 0.50, 0.60, 0.40 -> 100 at 1.5 / 3.
    assert table["7.0"] == {"fidelity": pytest.approx(100.0), "strength": pytest.approx(1.8 / 3)}
    assert table["9.5"] == {"fidelity": pytest.approx(100.0), "strength": pytest.approx(1.5 / 3)}
    # 50: 0.40 everywhere -> (0 + 0 + 100) / 3 = 33.3 < 80: cheaper but not faithful enough.
    assert table["50.0"] == {"fidelity": pytest.approx(100 / 3), "strength": pytest.approx(0.4)}
    assert chosen == 9.5


def test_without_a_tolerance_as_faithful_as_fixed_the_most_faithful_wins():
    fidelity = _strength_rows([100] * 6, [100] * 6)
    predicted = _strength_rows([0] * 5 + [1], [0] * 5 + [1])  # always 0.90 at tolerance < 1
    chosen, table = pick_tolerance(predicted, fidelity, [0.5, 2.0])
    assert table["best-fixed"]["strength"] == 0.4  # ties go to the cheaper fixed strength
    assert chosen == 2.0 and table["2.0"]["strength"] == pytest.approx(0.4)
    fidelity = _strength_rows([0] * 5 + [100], [100] + [0] * 5)  # best fixed: 50 (at 0.40 or 0.90)
    predicted = _strength_rows([0] * 6, [0] * 6)  # every tolerance chooses 0.40: fidelity 50 == fixed
    assert pick_tolerance(predicted, fidelity, [3.0, 1.0])[0] == 1.0  # equal cost: the smaller tolerance
    with pytest.raises(ValueError, match="non-empty"):
        pick_tolerance(predicted, fidelity, [])
