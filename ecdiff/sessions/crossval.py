"""Picking a predictor's regularisation on the TRAINING split only: k-fold cross-validation with
whole sessions per fold (rounds of one session are alike, so an example split would flatter)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

# fit_predict(x_fit, y_fit, x_eval, value) -> predictions for x_eval with regularisation `value`.
FitPredict = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


def session_folds(sessions: Sequence[int], k: int, seed: int) -> list[list[int]]:
    """`k` folds of record indices (seeded), every record of a session in the same fold; empty folds dropped."""
    if k < 2:
        raise ValueError(f"cross-validation needs k >= 2 folds, got {k}")
    unique = sorted(set(sessions))
    order = torch.randperm(len(unique), generator=torch.Generator().manual_seed(seed)).tolist()
    fold_of = {unique[p]: j % k for j, p in enumerate(order)}
    folds = [[i for i, s in enumerate(sessions) if fold_of[s] == f] for f in range(k)]
    return [f for f in folds if f]


def cv_mse(fit_predict: FitPredict, x: torch.Tensor, y: torch.Tensor, folds: list[list[int]], value: float) -> float:
    """Mean squared error over all records, each predicted by the fit on the other folds."""
    total = 0.0
    for held in folds:
        rest = sorted(set(range(len(x))) - set(held))
        pred = fit_predict(x[rest], y[rest], x[held], value)
        total += float(((pred.to(torch.float64) - y[held].to(torch.float64)) ** 2).sum())
    return total / y[sum(folds, [])].numel()


def pick(fit_predict: FitPredict, x: torch.Tensor, y: torch.Tensor, sessions: Sequence[int], values: Sequence[float],
         k: int, seed: int) -> tuple[float, dict[str, float]]:
    """The value with the lowest session-fold CV error (ties: the first), and every value's error."""
    if len(values) == 1:
        return values[0], {}
    folds = session_folds(sessions, k, seed)
    if len(folds) < 2:
        raise ValueError(f"cross-validation over {len(values)} values needs >= 2 training sessions")
    errors = {str(v): cv_mse(fit_predict, x, y, folds, v) for v in values}
    return min(values, key=lambda v: errors[str(v)]), errors
