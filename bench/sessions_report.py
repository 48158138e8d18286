"""results.json and tables.md of `ecdiff bench sessions`.

results.json is exactly {"rows": [{"method", "fidelity", "fid", "latency_s", "cloud_compute_s"}],
"machine": {...}}; everything else goes to tables.md (and details.json):
- Table 1 (the paper's main comparison): fidelity, scorer-FID, session latency, cloud compute.
- Table 2 (latency breakdown): edge compute, cloud compute, transfer, decode, denoising steps.
- Table 3 (predictor vs fixed strength): chosen strengths and their cost.
- Table 4 (by session length): fidelity and latency for 2, 3 and 4 rounds.
- Table 5 (by edit kind, when the sessions name their edits): the edge strength each DiffusionX method
  chose for each kind of revision and the preview fidelity it reached.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch
from PIL import Image

from ecdiff.metrics import pil_to_tensor, scorer_fid, stack_images
from ecdiff.toyworld import parse_caption, render


def _mean(values) -> float | None:
    values = list(values)
    return statistics.fmean(values) if values else None


def build_results(records: dict, sessions, scorer, link, machine: dict, run: dict) -> dict:
    finals = [s.prompts[-1] for s in sessions]
    renders = torch.stack([pil_to_tensor(Image.fromarray(render(parse_caption(p)))) for p in finals])
    rows, details = [], {}
    for method, recs in records.items():
        images = stack_images([r.image for r in recs])
        fidelity = scorer.fidelity(images, finals)
        rows.append({
            "method": method,
            "fidelity": _mean(fidelity),
            "fid": scorer_fid(scorer, images, renders) if len(recs) >= 2 else None,
            "latency_s": _mean(r.latency_s(link) for r in recs),
            "cloud_compute_s": _mean(r.cloud_compute_s for r in recs),
        })
        by_rounds = {}
        for n in sorted({len(s.prompts) for s in sessions}):
            idx = [i for i, s in enumerate(sessions) if len(s.prompts) == n]
            by_rounds[n] = {"sessions": len(idx), "fidelity": _mean(fidelity[i] for i in idx),
                            "latency_s": _mean(recs[i].latency_s(link) for i in idx)}
        by_edit = {}
        for kind in sorted({e for s in sessions for e in s.edits}):
            # Revision r of a session (round r >= 1) is made by edits[r - 1].
            at = [(rec, r) for s, rec in zip(sessions, recs) for r, e in enumerate(s.edits, 1) if e == kind]
            by_edit[kind] = {"revisions": len(at),
                             "edge_strength": _mean(rec.edge_strengths[r - 1] for rec, r in at
                                                    if len(rec.edge_strengths) >= r and rec.edge_strengths[r - 1] is not None),
                             "preview_fidelity": _mean(rec.round_fidelity[r] for rec, r in at if len(rec.round_fidelity) > r)}
        details[method] = {
            "edge_compute_s": _mean(r.edge_compute_s for r in recs),
            "transfer_s": _mean(r.transfer_s(link) for r in recs),
            "decode_s": _mean(r.decode_s for r in recs),
            "steps_run": _mean(r.steps_run for r in recs),
            "kib_per_session": _mean(sum(r.messages) / 1024 for r in recs),
            "edge_strength": _mean(s for r in recs for s in r.edge_strengths if s is not None),
            "refine_strength": _mean(r.refine_strength for r in recs if r.refine_strength is not None),
            "round_fidelity": _mean(f for r in recs for f in r.round_fidelity),
            "by_rounds": by_rounds,
            "by_edit": by_edit,
            "from_cache": sum(r.from_cache for r in recs),
        }
    return {"rows": rows, "machine": machine, "details": details,
            "run": {**run, "sessions": len(sessions), "bandwidth_mbps": link.bandwidth_mbps, "latency_ms": link.latency_ms}}


def _approximation(run: dict) -> str:
    a = run.get("approximation")
    return f"yes (p {a['pre_steps']} from the start step, k {a['k']}, alpha {a['alpha']})" if a else "no"


def _f(value, digits=3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def tables(results: dict) -> str:
    rows, details, run, m = results["rows"], results["details"], results["run"], results["machine"]
    out = ["## Table 1: final image quality and session cost", "",
           "| Method | Fidelity ↑ | Scorer-FID ↓ | Session latency (s) ↓ | Cloud compute (s) ↓ |", "|---|---|---|---|---|"]
    out += [f"| {r['method']} | {_f(r['fidelity'], 1)} | {_f(r['fid'])} | {_f(r['latency_s'])} | {_f(r['cloud_compute_s'])} |"
            for r in rows]
    out += ["", "## Table 2: where a session's time goes (mean per session)", "",
            "| Method | Edge compute (s) | Cloud compute (s) | Transfer (s, modelled) | Decode (s) | Denoising steps | KiB over the link |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {r['method']} | {_f(details[r['method']]['edge_compute_s'])} | {_f(r['cloud_compute_s'])} | "
            f"{_f(details[r['method']]['transfer_s'], 4)} | {_f(details[r['method']]['decode_s'])} | "
            f"{_f(details[r['method']]['steps_run'], 1)} | {_f(details[r['method']]['kib_per_session'], 1)} |" for r in rows]
    dx = [r for r in rows if r["method"].startswith("diffusionx")]
    if dx:
        out += ["", "## Table 3: strength predictor against a fixed strength", "",
                "| Method | Mean edge strength | Mean refine strength | Preview fidelity ↑ | Fidelity ↑ | "
                "Session latency (s) ↓ | Cloud compute (s) ↓ |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {r['method']} | {_f(details[r['method']]['edge_strength'], 3)} | "
                f"{_f(details[r['method']]['refine_strength'], 3)} | {_f(details[r['method']]['round_fidelity'], 1)} | "
                f"{_f(r['fidelity'], 1)} | {_f(r['latency_s'])} | {_f(r['cloud_compute_s'])} |" for r in dx]
    lengths = sorted({n for d in details.values() for n in d["by_rounds"]})
    out += ["", "## Table 4: by session length (fidelity / latency s)", "",
            "| Method | " + " | ".join(f"{n} rounds" for n in lengths) + " |", "|---|" + "---|" * len(lengths)]
    for r in rows:
        cells = [details[r["method"]]["by_rounds"].get(n) for n in lengths]
        out.append(f"| {r['method']} | " + " | ".join(
            f"{_f(c['fidelity'], 1)} / {_f(c['latency_s'])} (n={c['sessions']})" if c else "n/a" for c in cells) + " |")
    kinds = sorted({k for r in dx for k in details[r["method"]]["by_edit"]})
    if kinds:
        out += ["", "## Table 5: edge strength / preview fidelity by edit kind (revisions)", "",
                "| Method | " + " | ".join(f"{k} (n={details[dx[0]['method']]['by_edit'][k]['revisions']})" for k in kinds)
                + " |", "|---|" + "---|" * len(kinds)]
        for r in dx:
            cells = [details[r["method"]]["by_edit"][k] for k in kinds]
            out.append(f"| {r['method']} | " + " | ".join(
                f"{_f(c['edge_strength'], 2)} / {_f(c['preview_fidelity'], 1)}" for c in cells) + " |")
    out += ["", f"{run['sessions']} sessions from {run['sessions_file']}, models {run['models']}; full generations and "
            f"the refinement {run['steps']} DDIM steps, previews {run['preview_steps']}; diffusionx-fixed strength "
            f"{run['fixed_strength']}; EC-Diff approximation in the refinement: "
            f"{_approximation(run)}. "
            "Fidelity: alignment-scorer prompt fidelity (points) of the final image for the final prompt; preview "
            "fidelity: the same for each round's preview and its prompt, mean over rounds. "
            "Scorer-FID: Frechet distance of scorer features of the final images to exact renders of the final prompts' scenes (not Inception FID; few sessions make it a sanity check only). Latency: mean "
            "per session of compute measured in this process plus transfer modelled from the protobuf message sizes "
            f"at {run['bandwidth_mbps']} Mbps and {run['latency_ms']} ms one-way latency. "
            f"Machine: {m['processor']}, {m['cpu_count']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), "
            f"device {m['device']}.", ""]
    return "\n".join(out)


def write_outputs(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"rows": results["rows"], "machine": results["machine"]}, indent=2) + "\n")
    (out / "details.json").write_text(json.dumps({k: results[k] for k in ("details", "run")}, indent=2) + "\n")
    (out / "tables.md").write_text(tables(results))
