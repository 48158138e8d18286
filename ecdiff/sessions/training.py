"""`make predictors`: build DiffusionX's strength labels and train both predictors.

    python -m ecdiff.sessions.training [--tiny] [--limit N] [--cloud-sessions N] [--out DIR]

Labels (`ecdiff.sessions.labels`, cached and resumable under --cache) on the training sessions;
the edge MLP and the cloud ridge head are fitted on all but a seeded validation fraction, which
measures them: mean absolute error, exact-label rate, and on the validation examples the mean
fidelity and mean strength of the predictor's choice against every fixed strength (strength is
the cost: img2img runs int(steps * strength) steps). Writes the weights, config.json (with those
numbers) and a README card to --out.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from .embeddings import TextEmbedder, preview_images
from .labels import LabelConfig, build_labels
from .predictors import (CANDIDATE_STRENGTHS, PREDICTORS_DIR_NAME, CloudPredictor, EdgePredictor, PredictorConfig,
                         Predictors, snap_strength)
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
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    return model.eval()


def evaluate(predicted: torch.Tensor, records: list[dict]) -> dict:
    """The predictor's snapped choices against the labels and against every fixed strength."""
    if not records:
        return {}
    choices = [snap_strength(float(p)) for p in predicted]
    fid = lambda r, s: r["fidelity"][CANDIDATE_STRENGTHS.index(s)]  # noqa: E731
    n = len(records)
    fixed = {f"{s:.2f}": {"fidelity": sum(fid(r, s) for r in records) / n, "strength": s} for s in CANDIDATE_STRENGTHS}
    return {
        "examples": n,
        "mae": sum(abs(c - r["best"]) for c, r in zip(choices, records)) / n,
        "exact": sum(c == r["best"] for c, r in zip(choices, records)) / n,
        "predictor": {"fidelity": sum(fid(r, c) for r, c in zip(records, choices)) / n, "strength": sum(choices) / n},
        "oracle": {"fidelity": sum(max(r["fidelity"]) for r in records) / n, "strength": sum(r["best"] for r in records) / n},
        "fixed": fixed,
    }


def _split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    held = int(round(n * fraction)) if n > 1 else 0
    return sorted(order[held:]), sorted(order[:held])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from ecdiff.models import load_scorer
        from ecdiff.loading import load_pair

        if args.threads:
            torch.set_num_threads(args.threads)
        sessions = read_sessions(args.sessions)[: args.limit]
        label_config = LabelConfig(args.preview_steps, args.refine_steps, args.batch)
        PredictorConfig(hidden=args.hidden, ridge=args.ridge)  # validates the flags before any work
        if not 0 <= args.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
        pair = load_pair(tiny=args.tiny)
        scorer = load_scorer()
    except (ValueError, FileNotFoundError) as exc:
        print(f"predictors: error: {exc}", file=sys.stderr)
        return 2
    progress = not args.no_progress
    cloud_sessions = len(sessions) if args.cloud_sessions is None else min(args.cloud_sessions, len(sessions))
    labels = build_labels(pair, scorer, sessions, label_config, args.cache, cloud_sessions, progress)
    text = TextEmbedder()
    config = PredictorConfig(text_dim=text.dim, image_dim=scorer.feature_dim, hidden=args.hidden, ridge=args.ridge)

    e = labels.edge
    x_edge = EdgePredictor.inputs(text([r["previous"] for r in e]), text([r["prompt"] for r in e]))
    y_edge = torch.tensor([r["best"] for r in e], dtype=torch.float32)
    fit, val = _split(len(e), args.val_fraction, args.seed)
    edge = train_edge(x_edge[fit], y_edge[fit], config, epochs=args.epochs, lr=args.lr,
                      weight_decay=args.weight_decay, seed=args.seed, progress=progress)
    with torch.no_grad():
        edge_eval = evaluate(edge(x_edge[val]), [e[i] for i in val])

    c = labels.cloud
    images = preview_images(pair.cloud, labels.previews) if c else torch.empty(0)
    x_cloud = CloudPredictor.inputs(text([r["prompt"] for r in c]), scorer.features(images)) if c else None
    y_cloud = torch.tensor([r["best"] for r in c], dtype=torch.float64)
    cfit, cval = _split(len(c), args.val_fraction, args.seed)
    if len(cfit) < 1:
        print("predictors: error: no cloud labels to fit (raise --cloud-sessions)", file=sys.stderr)
        return 2
    cloud = CloudPredictor.fit(x_cloud[cfit], y_cloud[cfit], args.ridge)
    cloud_eval = evaluate(cloud(x_cloud[cval]), [c[i] for i in cval])

    metadata = {"models": pair.name, "sessions_file": str(args.sessions), "sessions": len(sessions),
                "edge_labels": len(e), "cloud_labels": len(c), "label_config": asdict(label_config),
                "epochs": args.epochs, "lr": args.lr, "weight_decay": args.weight_decay, "seed": args.seed,
                "val_fraction": args.val_fraction, "edge_validation": edge_eval, "cloud_validation": cloud_eval}
    Predictors(config, edge, cloud).save(args.out, metadata)
    write_card(args.out, metadata)
    print(f"predictors written to {args.out}", file=sys.stderr)
    return 0


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
    p.add_argument("--weight-decay", type=float, default=1e-2, help="edge MLP AdamW weight decay")
    p.add_argument("--ridge", type=float, default=1.0, help="cloud head L2 penalty")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--cache", type=Path, default=REPO_ROOT / ".cache" / "diffusionx-labels")
    p.add_argument("--out", type=Path, default=models_dir() / PREDICTORS_DIR_NAME)
    p.add_argument("--no-progress", action="store_true")
    return p


if __name__ == "__main__":
    sys.exit(main())
