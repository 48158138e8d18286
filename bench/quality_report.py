"""Writers for `ecdiff bench quality`: results.json, results.csv, table.md, quality_vs_latency.png."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ecdiff.search.chart import PALETTE, Chart

COLUMNS = ("method", "psnr", "ssim", "lpips", "fidelity", "latency_s", "speedup", "cloud_calls", "edge_calls",
           "transfer_bytes", "params")
E2E_COLUMNS = ("latency_e2e_s", "speedup_e2e")  # with --latency both


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def latency_note(p: dict) -> str:
    e2e = (f"end to end: client wall time through the gRPC services on loopback, edge-cloud hop shaped at "
           f"{p['bandwidth_mbps']} Mbps (transfer included and measured)")
    in_process = "in process (encode + sample + decode; transfer not included)"
    return {"in-process": in_process, "e2e": e2e, "both": f"{in_process}; E2E columns: {e2e}"}[p["latency_mode"]]


def markdown_table(rows: list[dict], machine: dict, fid: dict | None = None) -> str:
    both = "latency_e2e_s" in rows[0]
    extra = " E2E latency (s) ↓ | E2E speedup ↑ |" if both else ""
    lines = [
        "| Method | PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ | Fidelity ↑ | Scorer-FID ↓ | Latency (s) ↓ | Speedup ↑ |" + extra
        + " Cloud calls | Edge calls | Transfer (KiB) |",
        "|---|---|---|---|---|---|---|---|" + ("---|---|" if both else "") + "---|---|---|",
    ]
    for r in rows:
        psnr = "ref" if r["method"] == "cloud" else fmt(r["psnr"], 2)
        e2e = f" {r['latency_e2e_s']:.3f} | {r['speedup_e2e']:.2f}x |" if both else ""
        lines.append(f"| {r['method']} | {psnr} | {fmt(r['ssim'])} | {fmt(r['lpips'])} | {fmt(r['fidelity'], 1)} | "
                     f"{fmt((fid or {}).get(r['method']), 3)} | {fmt(r['latency_s'], 3)} | {r['speedup']:.2f}x |{e2e} "
                     f"{r['cloud_calls']} | {r['edge_calls']} | {r['transfer_bytes'] / 1024:.1f} |")
    p = rows[0]["params"]
    lines += [
        "",
        f"{p['prompts']} prompts, {p['num_steps']} steps, models {p['models']}, guidance {p['guidance']}. "
        f"PSNR / SSIM / LPIPS against the cloud-only image of the same prompt and seed; latency = median "
        f"seconds per image, {latency_note(p)}; speedup against cloud in this run. "
        f"Transfer: {'bytes on the wire through the services' if p['latency_mode'] == 'e2e' else 'the raw handoff latent'}. "
        f"Scorer-FID: Frechet distance of the alignment scorer's features to the cloud images' (not Inception FID). "
        f"Machine: {machine['processor']}, {machine['cpu_count']} CPUs, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), device {machine['device']} {machine.get('dtype') or ''}. n/a = unavailable (never approximated).",
    ]
    return "\n".join(lines) + "\n"


def search_frontier(points_path: Path) -> list[tuple[float, float]]:
    """(latency, SSIM) of the searched points that no other point beats on both."""
    pts = []
    for line in points_path.read_text().splitlines():
        m = json.loads(line)["measurement"]
        pts.append((m["latency_s"], m["ssim"]))
    pts.sort(key=lambda p: (p[0], -p[1]))
    frontier, best = [], float("-inf")
    for latency, quality in pts:
        if quality > best:
            frontier.append((latency, quality))
            best = quality
    return frontier


def quality_plot(rows: list[dict], path: Path, frontier: list[tuple[float, float]] | None) -> None:
    xs = [r["latency_s"] for r in rows] + [f[0] for f in frontier or []]
    ys = [r["ssim"] for r in rows] + [f[1] for f in frontier or []]
    chart = Chart(xs, ys, "quality vs latency (SSIM against cloud-only)", "median latency per image (s)", "SSIM")
    if frontier:
        chart.line([f[0] for f in frontier], [f[1] for f in frontier], PALETTE[6],
                   "EC-Diff search frontier")
        chart.points([f[0] for f in frontier], [f[1] for f in frontier], PALETTE[6], radius=3)
    for i, r in enumerate(rows):
        chart.points([r["latency_s"]], [r["ssim"]], PALETTE[i % 6], r["method"], names=[r["method"]])
    chart.save(path)


def write_quality_outputs(out: Path, results: dict, search_points: Path | None, fid: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = results["rows"]
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        columns = COLUMNS + E2E_COLUMNS if E2E_COLUMNS[0] in rows[0] else COLUMNS
        writer.writerow(columns)
        for r in rows:
            writer.writerow([json.dumps(r[c], sort_keys=True) if c == "params" else ("" if r[c] is None else r[c]) for c in columns])
    (out / "table.md").write_text(markdown_table(rows, results["machine"], fid))
    if fid:
        (out / "scorer_fid.json").write_text(json.dumps(
            {"reference": "cloud", "note": "Frechet distance on the alignment scorer's features; not Inception FID",
             "fid": fid}, indent=2) + "\n")
    frontier = search_frontier(search_points) if search_points and search_points.is_file() else None
    quality_plot(rows, out / "quality_vs_latency.png", frontier)
