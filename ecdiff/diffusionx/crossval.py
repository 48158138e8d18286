"""Picking a predictor's regularisation and its choice tolerance on the TRAINING split only: k-fold
cross-validation with whole sessions per fold (rounds of one session are alike, so an example split
would flatter)."""

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


def out_of_fold(fit_predict: FitPredict, x: torch.Tensor, y: torch.Tensor, folds: list[list[int]],
                value: float) -> torch.Tensor:
    """Every record's prediction by the fit on the other folds, in record order (float64)."""
    predicted = torch.zeros(y.shape, dtype=torch.float64)
    for held in folds:
        rest = sorted(set(range(len(x))) - set(held))
        predicted[held] = fit_predict(x[rest], y[rest], x[held], value).to(torch.float64)
    return predicted


def cv_mse(fit_predict: FitPredict, x: torch.Tensor, y: torch.Tensor, folds: list[list[int]], value: float) -> float:
    """Mean squared error over all records, each predicted by the fit on the other folds."""
    held = sum(folds, [])
    errors = out_of_fold(fit_predict, x, y, folds, value)[held] - y[held].to(torch.float64)
    return float((errors ** 2).mean())


def pick_tolerance(predicted: torch.Tensor, fidelity: torch.Tensor, tolerances: Sequence[float]
                   ) -> tuple[float, dict[str, dict[str, float]]]:
    """The tolerance whose choices are cheapest while at least as faithful as the best fixed strength.

    `predicted`: out-of-fold predicted fidelities [N, candidates]; `fidelity`: the labels' measured ones. Each
    tolerance gives choices (`choose_strengths`) with a mean measured fidelity and a mean strength (the
    cost). Of the tolerances whose mean fidelity reaches the best fixed strength's, the one with the
    lowest mean strength wins (ties: the smaller tolerance); if none reaches it, the most faithful
    (ties: the cheaper). Returns it and every tolerance's {"fidelity", "strength"}, plus "best-fixed".
    """
    from .predictors import CANDIDATE_STRENGTHS, choose_strengths

    if not tolerances or min(tolerances) < 0:
        raise ValueError(f"tolerances must be a non-empty list of values >= 0, got {list(tolerances)}")
    fidelity = fidelity.to(torch.float64)
    means = fidelity.mean(dim=0)
    best = max(range(len(CANDIDATE_STRENGTHS)), key=lambda i: (float(means[i]), -i))
    table = {"best-fixed": {"fidelity": float(means[best]), "strength": CANDIDATE_STRENGTHS[best]}}
    rows = torch.arange(len(fidelity))
    for tolerance in sorted(tolerances):
        index = torch.tensor([CANDIDATE_STRENGTHS.index(c) for c in choose_strengths(predicted, tolerance)])
        table[str(tolerance)] = {"fidelity": float(fidelity[rows, index].mean()),
                                 "strength": float(torch.tensor(CANDIDATE_STRENGTHS, dtype=torch.float64)[index].mean())}
    scored = [(t, table[str(t)]) for t in sorted(tolerances)]
    enough = [(t, r) for t, r in scored if r["fidelity"] >= table["best-fixed"]["fidelity"] - 1e-9]
    if enough:
        chosen = min(enough, key=lambda tr: (tr[1]["strength"], tr[0]))[0]
    else:
        chosen = max(scored, key=lambda tr: (tr[1]["fidelity"], -tr[1]["strength"], -tr[0]))[0]
    return chosen, table


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
