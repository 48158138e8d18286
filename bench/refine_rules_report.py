"""results.json and tables.md of `ecdiff bench refine-rules`, and the choice of the refinement's default.

results.json: {"run", "machine", "baseline", "chosen", "strengths": {label: {"strengths", "exact",
"chosen", "candidates": [row, ...]}}}, a row holding the candidate's means over the sessions at that
strength and its per-session values; "chosen" at the top is the one default for every strength, each
strength's own "chosen" what that strength alone would choose. tables.md: Table 1 the choice across
the strengths; then per strength the baseline, its own choice, looser SSIM conditions, the best
candidate of each k, and every candidate.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

_PER_SESSION = ("ssim", "fidelity", "soft", "calls", "approx")

# What a looser SSIM condition would choose, shown beside the choice (which uses none).
SHOWN_TOLERANCES = (0.001, 0.002, 0.005)


def candidate_row(name: str, entries: list[dict]) -> dict:
    values = {key: [e["candidates"][name][key] for e in entries] for key in _PER_SESSION}
    exact_calls = sum(e["exact"]["calls"] for e in entries)
    return {"candidate": name, "ssim": statistics.fmean(values["ssim"]), "min_ssim": min(values["ssim"]),
            "fidelity": statistics.fmean(values["fidelity"]), "soft": statistics.fmean(values["soft"]),
            "calls": statistics.fmean(values["calls"]), "approx": statistics.fmean(values["approx"]),
            "cost": sum(values["calls"]) / exact_calls, "per_session": values}


def choose(tables: list[list[dict]], baseline: str, ssim_tolerance: float = 0.0) -> str:
    """One candidate for every strength (a table of rows per strength): the fewest mean cloud calls,
    summed over the strengths, among the candidates whose mean SSIM against the exact refinement (less
    `ssim_tolerance`) and mean fidelity are at least the baseline's at each strength (the baseline
    itself qualifies); at equal calls the baseline stays (a change must save calls), else the higher
    summed SSIM."""
    by_name = [{r["candidate"]: r for r in rows} for rows in tables]

    def holds(name: str) -> bool:
        return all(t[name]["ssim"] >= t[baseline]["ssim"] - ssim_tolerance and t[name]["fidelity"] >= t[baseline]["fidelity"]
                   for t in by_name)

    return min((name for name in by_name[0] if holds(name)),
               key=lambda name: (sum(t[name]["calls"] for t in by_name), name != baseline,
                                 -sum(t[name]["ssim"] for t in by_name)))


def _k_of(name: str) -> int:
    return int(name.split()[1].removeprefix("k"))


def strength_results(entries: list[dict], names: list[str]) -> dict:
    """One strength's measurements; `names[0]` is the baseline."""
    rows = [candidate_row(name, entries) for name in names]
    exact = {"calls": statistics.fmean(e["exact"]["calls"] for e in entries),
             "fidelity": statistics.fmean(e["exact"]["fidelity"] for e in entries),
             "soft": statistics.fmean(e["exact"]["soft"] for e in entries)}
    strengths = {"mean": statistics.fmean(e["strength"] for e in entries),
                 "counts": {f"{s:g}": n for s, n in sorted(Counter(e["strength"] for e in entries).items())},
                 "sources": dict(Counter(e["strength_source"] for e in entries))}
    return {"strengths": strengths, "exact": exact, "chosen": choose([rows], names[0]), "candidates": rows}


def build_results(entries: dict[str, list[dict]], names: list[str], run: dict, machine: dict) -> dict:
    """`entries`: each strength's (label: list of session entries); `names[0]` is the baseline."""
    per = {label: strength_results(e, names) for label, e in entries.items()}
    return {"run": run, "machine": machine, "baseline": names[0],
            "chosen": choose([p["candidates"] for p in per.values()], names[0]), "strengths": per}


_HEADER = ["| candidate | cloud calls | approx. steps | cost (x exact) | calls saved vs baseline | SSIM mean | SSIM min "
           "| fidelity | soft fidelity |", "|---|---|---|---|---|---|---|---|---|"]


def _line(label: str, r: dict, base: dict) -> str:
    return (f"| {label} | {r['calls']:.2f} | {r['approx']:.2f} | {r['cost']:.3f} | {base['calls'] - r['calls']:+.2f} | "
            f"{r['ssim']:.4f} | {r['min_ssim']:.4f} | {r['fidelity']:.1f} | {r['soft']:.2f} |")


def _strength_section(label: str, result: dict, baseline: str) -> list[str]:
    rows = {r["candidate"]: r for r in result["candidates"]}
    base, exact, s = rows[baseline], result["exact"], result["strengths"]
    out = [f"## Refinement strength {label}", "",
           f"Mean strength {s['mean']:.3f}; sessions per strength {s['counts']}; sources {s['sources']}. Exact "
           f"refinement: {exact['calls']:.2f} cloud calls, fidelity {exact['fidelity']:.1f}, soft fidelity "
           f"{exact['soft']:.2f}.", "", *_HEADER,
           _line(f"baseline (shipped): {baseline}", base, base),
           _line(f"choice at this strength alone: {result['chosen']}", rows[result["chosen"]], base)]
    for tolerance in SHOWN_TOLERANCES:
        name = choose([result["candidates"]], baseline, tolerance)
        out.append(_line(f"fewest calls at SSIM >= baseline - {tolerance:g}: {name}", rows[name], base))
    for k in sorted({_k_of(name) for name in rows}):
        best = max((r for name, r in rows.items() if _k_of(name) == k), key=lambda r: (r["ssim"], -r["calls"]))
        out.append(_line(f"best SSIM at k {k}: {best['candidate']}", best, base))
    out += ["", "Every candidate (by cloud calls, then SSIM):", "", *_HEADER]
    out += [_line(r["candidate"], r, base) for r in sorted(rows.values(), key=lambda r: (r["calls"], -r["ssim"]))]
    return out + [""]


def tables(results: dict) -> str:
    run, per, baseline, chosen = results["run"], results["strengths"], results["baseline"], results["chosen"]
    labels = list(per)
    out = ["# DiffusionX refinement: approximations against the exact refinement", "",
           f"{run['sessions']} sessions from {run['sessions_file']}, models {run['models']}; refinement schedule "
           f"{run['steps']} DDIM steps, previews {run['preview_steps']}; revision strength: {run['preview_strength']}; "
           f"refinement strengths: {', '.join(labels)}. Candidate RULE:DAMPING kK pP (alpha for the paper's rule, "
           "beta for the others). SSIM: decoded image against the exact refinement's. Fidelity: alignment scorer, "
           "final image for the final prompt (points). Cost: cloud calls over the exact refinement's.", "",
           "## Table 1: one default for every strength", "",
           "Choice: the fewest cloud calls (summed over the strengths) among the candidates whose mean SSIM and mean "
           "fidelity are at least the baseline's at each strength. Cells: cloud calls / SSIM mean / fidelity.", "",
           "| candidate | " + " | ".join(f"strength {label}" for label in labels) + " |",
           "|---|" + "---|" * len(labels)]
    shown = dict.fromkeys([(f"baseline (shipped): {baseline}", baseline), (f"**chosen: {chosen}**", chosen)]
                          + [(f"choice at strength {label} alone: {p['chosen']}", p["chosen"]) for label, p in per.items()])
    for title, name in shown:
        cells = [next(r for r in p["candidates"] if r["candidate"] == name) for p in per.values()]
        out.append(f"| {title} | " + " | ".join(f"{c['calls']:.2f} / {c['ssim']:.4f} / {c['fidelity']:.1f}"
                                               for c in cells) + " |")
    out.append("")
    for label, result in per.items():
        out += _strength_section(label, result, baseline)
    return "\n".join(out)


def write_outputs(out: Path, entries: dict[str, list[dict]], names: list[str], run: dict, machine: dict) -> dict:
    results = build_results(entries, names, run, machine)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "tables.md").write_text(tables(results))
    return results
