"""results.json and tables.md of `ecdiff bench refine-rules`, and the choice of the refinement's default.

results.json: {"run", "machine", "strengths", "exact", "baseline", "chosen", "candidates": [row, ...]}, a row
holding the candidate's means over the sessions and its per-session values. tables.md: Table 1 the
exact refinement, the baseline, the choice and the best candidate of each k; Table 2 every candidate.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

_PER_SESSION = ("ssim", "fidelity", "soft", "calls", "approx")


def candidate_row(name: str, entries: list[dict]) -> dict:
    values = {key: [e["candidates"][name][key] for e in entries] for key in _PER_SESSION}
    exact_calls = sum(e["exact"]["calls"] for e in entries)
    return {"candidate": name, "ssim": statistics.fmean(values["ssim"]), "min_ssim": min(values["ssim"]),
            "fidelity": statistics.fmean(values["fidelity"]), "soft": statistics.fmean(values["soft"]),
            "calls": statistics.fmean(values["calls"]), "approx": statistics.fmean(values["approx"]),
            "cost": sum(values["calls"]) / exact_calls, "per_session": values}


def choose(rows: list[dict], baseline: str, ssim_tolerance: float = 0.0) -> dict:
    """The row with the fewest mean cloud calls whose mean SSIM against the exact refinement (less
    `ssim_tolerance`) and mean fidelity are at least the baseline's (the baseline itself qualifies);
    at equal calls the baseline stays (a change must save calls), else the higher SSIM."""
    base = next(r for r in rows if r["candidate"] == baseline)
    eligible = [r for r in rows if r["ssim"] >= base["ssim"] - ssim_tolerance and r["fidelity"] >= base["fidelity"]]
    return min(eligible, key=lambda r: (r["calls"], r is not base, -r["ssim"]))


def _k_of(name: str) -> int:
    return int(name.split()[1].removeprefix("k"))


def build_results(entries: list[dict], names: list[str], run: dict, machine: dict) -> dict:
    """`names[0]` is the baseline (the shipped RefineConfig)."""
    rows = [candidate_row(name, entries) for name in names]
    exact = {"calls": statistics.fmean(e["exact"]["calls"] for e in entries),
             "fidelity": statistics.fmean(e["exact"]["fidelity"] for e in entries),
             "soft": statistics.fmean(e["exact"]["soft"] for e in entries)}
    strengths = {"mean": statistics.fmean(e["strength"] for e in entries),
                 "counts": {f"{s:g}": n for s, n in sorted(Counter(e["strength"] for e in entries).items())},
                 "sources": dict(Counter(e["strength_source"] for e in entries))}
    return {"run": run, "machine": machine, "strengths": strengths, "exact": exact, "baseline": names[0],
            "chosen": choose(rows, names[0])["candidate"], "candidates": rows}


def _line(label: str, r: dict, base: dict) -> str:
    return (f"| {label} | {r['calls']:.2f} | {r['approx']:.2f} | {r['cost']:.3f} | {base['calls'] - r['calls']:+.2f} | "
            f"{r['ssim']:.4f} | {r['min_ssim']:.4f} | {r['fidelity']:.1f} | {r['soft']:.2f} |")


# What a looser SSIM criterion would choose, shown beside the choice (which uses none).
SHOWN_TOLERANCES = (0.001, 0.002, 0.005)

_HEADER = ["| candidate | cloud calls | approx. steps | cost (x exact) | calls saved vs baseline | SSIM mean | SSIM min "
           "| fidelity | soft fidelity |", "|---|---|---|---|---|---|---|---|---|"]


def tables(results: dict) -> str:
    rows = {r["candidate"]: r for r in results["candidates"]}
    base, chosen, exact, run = rows[results["baseline"]], rows[results["chosen"]], results["exact"], results["run"]
    s = results["strengths"]
    out = ["# DiffusionX refinement: approximations against the exact refinement", "",
           f"{run['sessions']} sessions from {run['sessions_file']}, models {run['models']}; refinement schedule "
           f"{run['steps']} DDIM steps, previews {run['preview_steps']}; revision strength: {run['preview_strength']}; "
           f"refinement strength: {run['strength']} (mean {s['mean']:.3f}; sessions per strength {s['counts']}; "
           f"sources {s['sources']}).", "",
           f"Exact refinement: {exact['calls']:.2f} cloud calls, fidelity {exact['fidelity']:.1f}, soft fidelity "
           f"{exact['soft']:.2f}. Candidate RULE:DAMPING kK pP (alpha for the paper's rule, beta for the others). "
           "SSIM: decoded image against the exact refinement's. Fidelity: alignment scorer, final image for the final "
           "prompt (points). Cost: cloud calls over the exact refinement's.", "",
           "## Table 1: baseline, choice, best of each k", "", *_HEADER,
           _line(f"baseline (shipped): {base['candidate']}", base, base),
           _line(f"**chosen: {chosen['candidate']}**", chosen, base)]
    for tolerance in SHOWN_TOLERANCES:
        r = choose(results["candidates"], base["candidate"], tolerance)
        out.append(_line(f"fewest calls at SSIM >= baseline - {tolerance:g}: {r['candidate']}", r, base))
    for k in sorted({_k_of(name) for name in rows}):
        best = max((r for name, r in rows.items() if _k_of(name) == k), key=lambda r: (r["ssim"], -r["calls"]))
        out.append(_line(f"best SSIM at k {k}: {best['candidate']}", best, base))
    out += ["", "Choice: the fewest mean cloud calls among the candidates whose mean SSIM and mean fidelity are at "
            "least the baseline's; the rows below it loosen only the SSIM condition (not chosen).", "", "## Table 2: every candidate (by cloud calls, then SSIM)", "", *_HEADER]
    out += [_line(r["candidate"], r, base) for r in sorted(rows.values(), key=lambda r: (r["calls"], r is not base, -r["ssim"]))]
    return "\n".join(out) + "\n"


def write_outputs(out: Path, entries: list[dict], names: list[str], run: dict, machine: dict) -> dict:
    results = build_results(entries, names, run, machine)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "tables.md").write_text(tables(results))
    return results
