"""Writers for `ecdiff bench quality`: results.json, results.csv, table.md, quality_vs_latency.png."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ecdiff.search.chart import PALETTE, Chart

COLUMNS = ("method", "psnr", "ssim", "lpips", "fidelity", "latency_s", "speedup", "cloud_calls", "edge_calls",
           "transfer_bytes", "params")


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict], machine: dict, fid: dict | None = None) -> str:
    lines = [
        "| Method | PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ | Fidelity ↑ | Scorer-FID ↓ | Latency (s) ↓ | Speedup ↑ | Cloud calls | Edge calls | Transfer (KiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        psnr = "ref" if r["method"] == "cloud" else fmt(r["psnr"], 2)
        lines.append(f"| {r['method']} | {psnr} | {fmt(r['ssim'])} | {fmt(r['lpips'])} | {fmt(r['fidelity'], 1)} | "
                     f"{fmt((fid or {}).get(r['method']), 3)} | {fmt(r['latency_s'], 3)} | {r['speedup']:.2f}x | {r['cloud_calls']} | {r['edge_calls']} | "
                     f"{r['transfer_bytes'] / 1024:.1f} |")
    p = rows[0]["params"]
    lines += [
        "",
        f"{p['prompts']} prompts, {p['num_steps']} steps, models {p['models']}, guidance {p['guidance']}. "
        f"PSNR / SSIM / LPIPS against the cloud-only image of the same prompt and seed; latency = median "
        f"seconds per image, {p['latency_mode']}, transfer not included; speedup against cloud in this run. "
        f"Scorer-FID: Frechet distance of the alignment scorer's features to the cloud images' (not Inception FID). "
        f"Machine: {machine['processor']}, {machine['cpu_count']} CPUs, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), device {machine['device']}. n/a = unavailable (never approximated).",
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
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([json.dumps(r[c], sort_keys=True) if c == "params" else ("" if r[c] is None else r[c]) for c in COLUMNS])
    (out / "table.md").write_text(markdown_table(rows, results["machine"], fid))
    if fid:
        (out / "scorer_fid.json").write_text(json.dumps(
            {"reference": "cloud", "note": "Frechet distance on the alignment scorer's features; not Inception FID",
             "fid": fid}, indent=2) + "\n")
    frontier = search_frontier(search_points) if search_points and search_points.is_file() else None
    quality_plot(rows, out / "quality_vs_latency.png", frontier)
