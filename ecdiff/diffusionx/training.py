"""`make predictors`: build DiffusionX's strength labels and train both predictors.

    python -m ecdiff.diffusionx.training [--tiny] [--limit N] [--cloud-sessions N] [--seeds K] [--out DIR]

Labels (`ecdiff.diffusionx.labels`, cached and resumable under --cache) on the training sessions;
both heads learn the soft fidelity (mean over the seed replicas) at every candidate strength. The
edge head's kind ("mixture" or "mlp", `--edge-kinds`) and each head's regularisation (edge weight
decay, cloud ridge penalty) are picked from the given values by session-fold cross-validation on
the training split (`ecdiff.diffusionx.crossval`), then each head's choice tolerance from the
out-of-fold predictions: the cheapest choices (lowest mean strength) at least as faithful as the
best fixed strength on the same split. A seeded fraction of the SESSIONS is held out (all rounds of
a session on one side) and measures them: RMSE of the predicted fidelities, the choice against the
priced label (the lowest strength within the tolerance of the best), and the mean fidelity (soft
and scorer points) and mean strength of the predictor's choices against every fixed strength and
the labels, overall and per edit kind (strength is the cost: img2img runs int(steps * strength)
steps). Writes the weights, config.json (with those numbers) and a README card to --out.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from .embeddings import TextEmbedder, preview_images
from .crossval import cv_mse, out_of_fold, pick, pick_tolerance, session_folds
from .labels import LabelConfig, build_labels, priced_strength
from .predictors import (CANDIDATE_STRENGTHS, EDGE_KINDS, PREDICTORS_DIR_NAME, CloudPredictor, EdgePredictor,
                         PredictorConfig, Predictors, choose_strengths, edge_inputs, ridge_fit)
from .predictors_card import write_card
from .prompts import EDITS, read_sessions

DEFAULT_SESSIONS = Path("data/sessions/train.jsonl")


def train_edge(x: torch.Tensor, alignment: torch.Tensor, y: torch.Tensor, kinds: torch.Tensor,
               config: PredictorConfig, *, epochs: int, lr: float, weight_decay: float, seed: int,
               progress: bool) -> EdgePredictor:
    """An MLP fits the fidelities (MSE); a mixture classifies the edit kind (cross-entropy) and fits one
    ridge expert per kind on [alignment, 1] (a kind absent from `kinds` gets the expert of all rows)."""
    torch.manual_seed(seed)
    model = EdgePredictor(config)
    if config.edge_kind == "mixture":
        a = CloudPredictor.inputs(alignment)
        for k in range(config.edit_kinds):
            rows = kinds == k
            rows = rows if bool(rows.any()) else torch.ones_like(rows)
            model.experts[k] = ridge_fit(a[rows], y[rows], config.expert_ridge).to(model.experts.dtype)
        loss_fn = lambda: torch.nn.functional.cross_entropy(model.net(x), kinds)  # noqa: E731
    else:
        loss_fn = lambda: torch.nn.functional.mse_loss(model(x, alignment) / 100, y / 100)  # noqa: E731
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in tqdm(range(epochs), desc=f"edge predictor ({config.edge_kind})", unit="epoch", disable=not progress):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
    return model.eval()


def _fixed_best(soft: torch.Tensor) -> int:
    """Index of the best fixed strength on these rows (mean soft fidelity; ties to the lower)."""
    means = soft.mean(dim=0)
    return max(range(len(CANDIDATE_STRENGTHS)), key=lambda i: (float(means[i]), -i))


def evaluate(predicted: torch.Tensor, soft: torch.Tensor, hard: torch.Tensor, tolerance: float,
             kinds: list[str] | None = None) -> dict:
    """Predicted fidelities [N, candidates] and the choices made from them, against the labels (soft
    fidelity, and the scorer's points `hard`, both replica means) and every fixed strength; per edit
    kind when `kinds` are given."""
    if not len(soft):
        return {}
    soft, hard = soft.to(torch.float64), hard.to(torch.float64)
    strengths = torch.tensor(CANDIDATE_STRENGTHS, dtype=torch.float64)
    chosen = torch.tensor([CANDIDATE_STRENGTHS.index(c) for c in choose_strengths(predicted, tolerance)])
    priced = torch.tensor([CANDIDATE_STRENGTHS.index(priced_strength(r.tolist(), tolerance)) for r in soft])
    rows = torch.arange(len(soft))

    def summary(at: torch.Tensor, index: torch.Tensor) -> dict:
        return {"soft": float(soft[at, index].mean()), "fidelity": float(hard[at, index].mean()),
                "strength": float(strengths[index].mean())}

    out = {
        "examples": len(soft),
        "rmse": float(((predicted.to(torch.float64) - soft) ** 2).mean().sqrt()),
        "mae": float((strengths[chosen] - strengths[priced]).abs().mean()),
        "exact": float((chosen == priced).to(torch.float64).mean()),
        "predictor": summary(rows, chosen),
        "oracle": summary(rows, priced),
        "fixed": {f"{s:.2f}": summary(rows, torch.full((len(soft),), i)) for i, s in enumerate(CANDIDATE_STRENGTHS)},
    }
    if kinds is not None:
        out["by_edit"] = {}
        for kind in sorted(set(kinds)):
            at = torch.tensor([i for i, k in enumerate(kinds) if k == kind])
            best = _fixed_best(soft[at])
            out["by_edit"][kind] = {"examples": len(at), "predictor": summary(at, chosen[at]),
                                    "best_fixed": summary(at, torch.full((len(at),), best))}
    return out


def held_out_sessions(n_sessions: int, n_cloud: int, fraction: float, seed: int) -> set[int]:
    """A seeded `fraction` of the sessions (at least one kept for fitting), drawn separately from the
    cloud-labelled ones (the first `n_cloud`) and the rest so both heads get their share."""
    total = min(int(round(n_sessions * fraction)), n_sessions - 1) if n_sessions else 0
    cloud = min(int(round(n_cloud * fraction)), max(n_cloud - 1, 0), total)
    g = torch.Generator().manual_seed(seed)
    held = torch.randperm(n_cloud, generator=g)[:cloud].tolist()
    held += (n_cloud + torch.randperm(n_sessions - n_cloud, generator=g)[:total - cloud]).tolist()
    return set(held)


def _split(sessions: list[int], held: set[int]) -> tuple[list[int], list[int]]:
    """Record indices (fit, validation) of records whose sessions are `sessions`."""
    return [i for i, s in enumerate(sessions) if s not in held], [i for i, s in enumerate(sessions) if s in held]


def output_dir(out: Path | None, tiny: bool) -> Path:
    """Where predictors go. Smoke runs on the tiny RANDOM pair never overwrite the shipped predictors."""
    from ecdiff.models.training.paths import REPO_ROOT, models_dir

    shipped = models_dir().resolve()
    if out is None:
        return REPO_ROOT / TINY_OUT if tiny else shipped / PREDICTORS_DIR_NAME
    if tiny and out.resolve().is_relative_to(shipped):
        raise ValueError(f"--tiny predictors are trained on random models; refusing to write them under {shipped} "
                         f"(the shipped models): pass another --out")
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.out = output_dir(args.out, args.tiny)
        from ecdiff.models import load_scorer
        from ecdiff.loading import load_pair

        if args.threads:
            torch.set_num_threads(args.threads)
        sessions = read_sessions(args.sessions)[: args.limit]
        label_config = LabelConfig(args.preview_steps, args.refine_steps, args.batch, args.seeds, args.approximate)
        PredictorConfig(hidden=args.hidden)  # validates flags early
        if min(args.ridge) < 0 or min(args.weight_decay) < 0 or min(args.tolerance) < 0 or args.cv_folds < 2:
            raise ValueError("--ridge, --weight-decay and --tolerance values must be >= 0 and --cv-folds >= 2")
        if not 0 <= args.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
        pair = load_pair(tiny=args.tiny)
        scorer = load_scorer()
    except (ValueError, FileNotFoundError) as exc:
        print(f"predictors: error: {exc}", file=sys.stderr)
        return 2
    progress = not args.no_progress
    cloud_sessions = len(sessions) if args.cloud_sessions is None else min(args.cloud_sessions, len(sessions))
    try:
        labels = build_labels(pair, scorer, sessions, label_config, args.cache, cloud_sessions, progress)
    except ValueError as exc:  # a cache that does not match the sessions
        print(f"predictors: error: {exc}", file=sys.stderr)
        return 2
    text = TextEmbedder()
    held = held_out_sessions(len(sessions), len(labels.cloud), args.val_fraction, args.seed)
    c = labels.cloud
    cfit, cval = _split(list(range(len(c))), held)
    if len(cfit) < 1:
        print("predictors: error: no cloud labels to fit (raise --cloud-sessions)", file=sys.stderr)
        return 2

    e = labels.edge
    x_edge = edge_inputs(text, [r["previous"] for r in e], [r["prompt"] for r in e])
    a_edge = torch.tensor([r["alignment"] for r in e], dtype=torch.float32)
    y_edge = torch.tensor([r["soft"] for r in e], dtype=torch.float32)
    hard_edge = torch.tensor([r["fidelity"] for r in e], dtype=torch.float64)
    edits = [r["edit"] or "unknown" for r in e]
    kinds = torch.tensor([EDITS.index(k) if k in EDITS else len(EDITS) for k in edits])
    fit, val = _split(labels.edge_sessions, held)
    images = preview_images(pair.cloud, labels.previews)
    x_cloud = CloudPredictor.inputs(scorer.attribute_probabilities(images, [r["prompt"] for r in c]))
    y_cloud = torch.tensor([r["soft"] for r in c], dtype=torch.float64)
    hard_cloud = torch.tensor([r["fidelity"] for r in c], dtype=torch.float64)
    if "mixture" in args.edge_kinds and bool((kinds[fit] == len(EDITS)).any()):
        print(f"predictors: error: the mixture edge head needs every revision's edit kind ({', '.join(EDITS)}); "
              f"{args.sessions} lacks some: use --edge-kinds mlp", file=sys.stderr)
        return 2

    def edge_config(kind: str) -> PredictorConfig:
        return PredictorConfig(text_dim=text.dim, hidden=args.hidden, edge_kind=kind)

    def edge_fit_predict(kind: str):
        # Rows are record indices (crossval splits them; the edit kinds of the fitting rows train the mixture).
        def fit_predict(rows_fit, y_fit, rows_eval, weight_decay):
            fit_, eval_ = rows_fit[:, 0], rows_eval[:, 0]
            model = train_edge(x_edge[fit_], a_edge[fit_], y_fit, kinds[fit_], edge_config(kind), epochs=args.epochs,
                               lr=args.lr, weight_decay=weight_decay, seed=args.seed, progress=False)
            with torch.no_grad():
                return model(x_edge[eval_], a_edge[eval_])
        return fit_predict

    def cloud_fit_predict(x_fit, y_fit, x_eval, ridge):
        return CloudPredictor.fit(x_fit, y_fit, ridge)(x_eval)

    edge_groups = [labels.edge_sessions[i] for i in fit]  # cloud records are one per session: cfit itself
    rows = torch.tensor(fit).unsqueeze(1)
    try:
        edge_folds = session_folds(edge_groups, args.cv_folds, args.seed)
        edge_cv = {}
        for kind in args.edge_kinds:  # every kind's error, also when one weight decay leaves nothing to pick
            value, errors = pick(edge_fit_predict(kind), rows, y_edge[fit], edge_groups, args.weight_decay,
                                 args.cv_folds, args.seed)
            if len(args.edge_kinds) > 1 and not errors:
                errors = {str(value): cv_mse(edge_fit_predict(kind), rows, y_edge[fit], edge_folds, value)}
            edge_cv[kind] = (value, errors)
        edge_kind = min(args.edge_kinds, key=lambda k: edge_cv[k][1].get(str(edge_cv[k][0]), 0.0))
        weight_decay = edge_cv[edge_kind][0]
        ridge, cloud_cv = pick(cloud_fit_predict, x_cloud[cfit], y_cloud[cfit], cfit, args.ridge, args.cv_folds, args.seed)
        # Each head's tolerance, from its out-of-fold predictions at the picked kind and regularisation.
        edge_oof = out_of_fold(edge_fit_predict(edge_kind), rows, y_edge[fit], edge_folds, weight_decay)
        edge_tolerance, edge_tolerances = pick_tolerance(edge_oof, y_edge[fit], args.tolerance)
        cloud_oof = out_of_fold(cloud_fit_predict, x_cloud[cfit], y_cloud[cfit],
                                session_folds(cfit, args.cv_folds, args.seed), ridge)
        cloud_tolerance, cloud_tolerances = pick_tolerance(cloud_oof, y_cloud[cfit], args.tolerance)
    except ValueError as exc:
        print(f"predictors: error: {exc}", file=sys.stderr)
        return 2
    config = PredictorConfig(text_dim=text.dim, hidden=args.hidden, ridge=ridge,
                             edge_tolerance=edge_tolerance, cloud_tolerance=cloud_tolerance, edge_kind=edge_kind)
    edge = train_edge(x_edge[fit], a_edge[fit], y_edge[fit], kinds[fit], config, epochs=args.epochs, lr=args.lr,
                      weight_decay=weight_decay, seed=args.seed, progress=progress)
    with torch.no_grad():
        edge_eval = evaluate(edge(x_edge[val], a_edge[val]), y_edge[val], hard_edge[val], edge_tolerance,
                             [edits[i] for i in val])
    edge_cv_fit = evaluate(edge_oof, y_edge[fit], hard_edge[fit], edge_tolerance, [edits[i] for i in fit])

    cloud = CloudPredictor.fit(x_cloud[cfit], y_cloud[cfit], ridge)
    cloud_eval = evaluate(cloud(x_cloud[cval]), y_cloud[cval], hard_cloud[cval], cloud_tolerance)

    metadata = {"models": pair.name, "sessions_file": str(args.sessions), "sessions": len(sessions),
                "edge_labels": len(e), "cloud_labels": len(c), "label_config": asdict(label_config),
                "candidates": list(CANDIDATE_STRENGTHS), "edge_kind": edge_kind,
                "epochs": args.epochs, "lr": args.lr, "weight_decay": weight_decay, "ridge": ridge, "seed": args.seed,
                "cv_folds": args.cv_folds, "edge_cv_mse": {k: v[1] for k, v in edge_cv.items()}, "cloud_cv_mse": cloud_cv,
                "edge_tolerance": edge_tolerance, "cloud_tolerance": cloud_tolerance,
                "edge_cv_tolerances": edge_tolerances, "cloud_cv_tolerances": cloud_tolerances,
                "edge_cv_by_edit": edge_cv_fit.get("by_edit", {}),
                "val_fraction": args.val_fraction, "validation_sessions": len(held),
                "edge_validation": edge_eval, "cloud_validation": cloud_eval}
    Predictors(config, edge, cloud).save(args.out, metadata)
    write_card(args.out, metadata)
    print(f"predictors written to {args.out}", file=sys.stderr)
    return 0


TINY_OUT = Path("out") / "smoke" / PREDICTORS_DIR_NAME


def _parser() -> argparse.ArgumentParser:
    from ecdiff.models.training.paths import REPO_ROOT, models_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=Path, default=DEFAULT_SESSIONS, help="training sessions (JSON Lines)")
    p.add_argument("--limit", type=int, help="use only the first N sessions (edge labels)")
    p.add_argument("--cloud-sessions", type=int, help="cloud labels for the first N of them (default: all)")
    p.add_argument("--tiny", action="store_true", help="tiny RANDOM pair (tests, smoke runs)")
    p.add_argument("--batch", type=int, default=LabelConfig.batch,
                   help=f"sessions per batched chunk (default {LabelConfig.batch})")
    p.add_argument("--seeds", type=int, default=LabelConfig.seeds,
                   help=f"seed replicas of each session for the edge labels (default {LabelConfig.seeds})")
    p.add_argument("--preview-steps", type=int, default=LabelConfig.preview_steps)
    p.add_argument("--refine-steps", type=int, default=LabelConfig.refine_steps)
    p.add_argument("--approximate", action=argparse.BooleanOptionalAction, default=LabelConfig.approximate,
                   help="cloud labels refine with EC-Diff's approximation, as Finalize(approximate=true) "
                        "(default: on; --no-approximate for the exact refinement)")
    p.add_argument("--edge-kinds", nargs="+", choices=EDGE_KINDS, default=list(EDGE_KINDS),
                   help="edge head kinds to pick from by cross-validation (default: all)")
    p.add_argument("--hidden", type=int, default=PredictorConfig.hidden, help="edge MLP hidden width")
    p.add_argument("--epochs", type=int, default=400, help="edge MLP full-batch epochs")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, nargs="+", default=[0.01, 0.1, 1.0, 10.0, 30.0],
                   help="edge MLP AdamW weight decay: one value, or several to pick from by cross-validation")
    p.add_argument("--ridge", type=float, nargs="+", default=[0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5],
                   help="cloud head L2 penalty: one value, or several to pick from by cross-validation")
    p.add_argument("--cv-folds", type=int, default=5, help="session folds of the training split (default 5)")
    p.add_argument("--tolerance", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0],
                   help="points of predicted fidelity traded for a lower strength: values to pick each head's "
                        "from by cross-validation (cheapest choices at least as faithful as the best fixed strength)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="held-out fraction of the sessions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--cache", type=Path, default=REPO_ROOT / ".cache" / "diffusionx-labels")
    p.add_argument("--out", type=Path, help=f"where to write the predictors (default: "
                   f"{models_dir() / PREDICTORS_DIR_NAME}, the shipped ones; with --tiny: {REPO_ROOT / TINY_OUT})")
    p.add_argument("--no-progress", action="store_true")
    return p


if __name__ == "__main__":
    sys.exit(main())
