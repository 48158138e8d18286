"""`make predictors`: build DiffusionX's strength labels and train both predictors.

    python -m ecdiff.diffusionx.training [--tiny] [--limit N] [--cloud-sessions N] [--out DIR]

Labels (`ecdiff.diffusionx.labels`, cached and resumable under --cache) on the training sessions;
both heads learn the fidelity at every candidate strength, their regularisation (edge weight decay,
cloud ridge penalty) picked from the given values by session-fold cross-validation on the training
split (`ecdiff.diffusionx.crossval`), then each head's choice tolerance from the out-of-fold
predictions: the cheapest choices (lowest mean strength) at least as faithful as the best fixed
strength on the same split. A seeded fraction of the SESSIONS is held out (all rounds of a
session on one side) and measures them: RMSE of the predicted fidelities, the choice's distance to
the label (argmax, ties low), and the mean fidelity and mean strength of the predictor's choices
against every fixed strength and the labels (strength is the cost: img2img runs
int(steps * strength) steps). Writes the weights, config.json (with those numbers) and a README
card to --out.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from .embeddings import TextEmbedder, preview_images
from .crossval import out_of_fold, pick, pick_tolerance, session_folds
from .labels import LabelConfig, build_labels
from .predictors import (CANDIDATE_STRENGTHS, PREDICTORS_DIR_NAME, CloudPredictor, EdgePredictor, PredictorConfig,
                         Predictors, choose_strengths)
from .predictors_card import write_card
from .prompts import read_sessions

DEFAULT_SESSIONS = Path("data/sessions/train.jsonl")


def train_edge(x: torch.Tensor, y: torch.Tensor, config: PredictorConfig, *, epochs: int, lr: float,
               weight_decay: float, seed: int, progress: bool) -> EdgePredictor:
    torch.manual_seed(seed)
    model = EdgePredictor(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in tqdm(range(epochs), desc="edge predictor", unit="epoch", disable=not progress):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x) / 100, y / 100)  # fractions: a well-scaled loss
        loss.backward()
        optimizer.step()
    return model.eval()


def evaluate(predicted: torch.Tensor, records: list[dict], tolerance: float) -> dict:
    """Predicted fidelities [N, 11] and the choices made from them, against the labels and every fixed strength."""
    if not records:
        return {}
    choices = choose_strengths(predicted, tolerance)
    truth = torch.tensor([r["fidelity"] for r in records], dtype=torch.float64)
    fid = lambda r, s: r["fidelity"][CANDIDATE_STRENGTHS.index(s)]  # noqa: E731
    n = len(records)
    fixed = {f"{s:.2f}": {"fidelity": sum(fid(r, s) for r in records) / n, "strength": s} for s in CANDIDATE_STRENGTHS}
    return {
        "examples": n,
        "rmse": float(((predicted.to(torch.float64) - truth) ** 2).mean().sqrt()),
        "mae": sum(abs(c - r["best"]) for c, r in zip(choices, records)) / n,
        "exact": sum(c == r["best"] for c, r in zip(choices, records)) / n,
        "predictor": {"fidelity": sum(fid(r, c) for r, c in zip(records, choices)) / n, "strength": sum(choices) / n},
        "oracle": {"fidelity": sum(max(r["fidelity"]) for r in records) / n, "strength": sum(r["best"] for r in records) / n},
        "fixed": fixed,
    }


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
        label_config = LabelConfig(args.preview_steps, args.refine_steps, args.batch)
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
    x_edge = EdgePredictor.inputs(text([r["previous"] for r in e]), text([r["prompt"] for r in e]))
    y_edge = torch.tensor([r["fidelity"] for r in e], dtype=torch.float32)
    fit, val = _split(labels.edge_sessions, held)
    images = preview_images(pair.cloud, labels.previews)
    x_cloud = CloudPredictor.inputs(text([r["prompt"] for r in c]), scorer.features(images))
    y_cloud = torch.tensor([r["fidelity"] for r in c], dtype=torch.float64)
    edge_config = PredictorConfig(text_dim=text.dim, hidden=args.hidden)

    def edge_fit_predict(x_fit, y_fit, x_eval, weight_decay):
        model = train_edge(x_fit, y_fit, edge_config, epochs=args.epochs, lr=args.lr, weight_decay=weight_decay,
                           seed=args.seed, progress=False)
        with torch.no_grad():
            return model(x_eval)

    def cloud_fit_predict(x_fit, y_fit, x_eval, ridge):
        return CloudPredictor.fit(x_fit, y_fit, ridge)(x_eval)

    edge_groups = [labels.edge_sessions[i] for i in fit]  # cloud records are one per session: cfit itself
    try:
        weight_decay, edge_cv = pick(edge_fit_predict, x_edge[fit], y_edge[fit], edge_groups,
                                     args.weight_decay, args.cv_folds, args.seed)
        ridge, cloud_cv = pick(cloud_fit_predict, x_cloud[cfit], y_cloud[cfit], cfit, args.ridge, args.cv_folds, args.seed)
        # Each head's tolerance, from its out-of-fold predictions at the picked regularisation.
        edge_oof = out_of_fold(edge_fit_predict, x_edge[fit], y_edge[fit],
                               session_folds(edge_groups, args.cv_folds, args.seed), weight_decay)
        edge_tolerance, edge_tolerances = pick_tolerance(edge_oof, y_edge[fit], args.tolerance)
        cloud_oof = out_of_fold(cloud_fit_predict, x_cloud[cfit], y_cloud[cfit],
                                session_folds(cfit, args.cv_folds, args.seed), ridge)
        cloud_tolerance, cloud_tolerances = pick_tolerance(cloud_oof, y_cloud[cfit], args.tolerance)
    except ValueError as exc:
        print(f"predictors: error: {exc}", file=sys.stderr)
        return 2
    config = PredictorConfig(text_dim=text.dim, image_dim=scorer.feature_dim, hidden=args.hidden, ridge=ridge,
                             edge_tolerance=edge_tolerance, cloud_tolerance=cloud_tolerance)
    edge = train_edge(x_edge[fit], y_edge[fit], config, epochs=args.epochs, lr=args.lr,
                      weight_decay=weight_decay, seed=args.seed, progress=progress)
    with torch.no_grad():
        edge_eval = evaluate(edge(x_edge[val]), [e[i] for i in val], config.edge_tolerance)

    cloud = CloudPredictor.fit(x_cloud[cfit], y_cloud[cfit], ridge)
    cloud_eval = evaluate(cloud(x_cloud[cval]), [c[i] for i in cval], config.cloud_tolerance)

    metadata = {"models": pair.name, "sessions_file": str(args.sessions), "sessions": len(sessions),
                "edge_labels": len(e), "cloud_labels": len(c), "label_config": asdict(label_config),
                "epochs": args.epochs, "lr": args.lr, "weight_decay": weight_decay, "ridge": ridge, "seed": args.seed,
                "cv_folds": args.cv_folds, "edge_cv_mse": edge_cv, "cloud_cv_mse": cloud_cv,
                "edge_tolerance": edge_tolerance, "cloud_tolerance": cloud_tolerance,
                "edge_cv_tolerances": edge_tolerances, "cloud_cv_tolerances": cloud_tolerances,
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
    p.add_argument("--batch", type=int, default=16, help="sessions per batched chunk (default 16)")
    p.add_argument("--preview-steps", type=int, default=25)
    p.add_argument("--refine-steps", type=int, default=50)
    p.add_argument("--hidden", type=int, default=64, help="edge MLP hidden width")
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
