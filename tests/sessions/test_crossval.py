"""Session-fold cross-validation and the session-level validation split."""

import pytest
import torch

from ecdiff.sessions.crossval import cv_mse, pick, session_folds
from ecdiff.sessions.training import held_out_sessions

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
