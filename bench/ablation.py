"""`ecdiff bench ablation`: the paper's Table 2 on one model pair.

Variants of EC-Diff with the same prompts and seeds: as shipped; correcting twice (two real cloud
calls after each run of k approximations, `ECDiff(corrections=2)`); without smoothing (the paper's
rule at alpha = 1; every other rule undamped, beta = 1);
and with Euler and DPM-Solver++ in place of DDIM (through `scheduler.step`). Each variant is
compared with cloud-only under the SAME scheduler (PSNR / SSIM, and speedup), so a scheduler row
measures what EC-Diff loses on that scheduler, not the difference between schedulers.
Writes ablation.json and ablation.md; images are cached under OUT/images.
"""

from __future__ import annotations

import json
import sys

from ecdiff.cli_options import pair_from_args
from ecdiff.search.prompts import read_prompts
from ecdiff.strategies import CloudOnly

from .quality import ecdiff_params_from_args
from .quality_report import fmt
from .quality_runner import ImageCache, Method, compare, in_process, machine_info, median_latency, run_methods


def ablation_methods(params) -> tuple[list[Method], dict[str, str]]:
    """(methods, variant -> name of its cloud-only reference)."""
    base = {"strategy": "ecdiff", **params.as_dict()}
    # alpha smooths only the paper's rule; the other rules are damped by beta instead
    unsmoothed_change = {"alpha": 1.0} if params.rule == "paper" else {"beta": 1.0}
    unsmoothed = params.replace(**unsmoothed_change)
    variants = [
        Method("shipped", params.strategy(), base, scheduler="ddim"),
        Method("correct-twice", params.strategy(corrections=2), {**base, "corrections": 2}, scheduler="ddim"),
        Method("no-smoothing", unsmoothed.strategy(), {**base, **unsmoothed_change}, scheduler="ddim"),
        Method("euler", params.strategy(), base, scheduler="euler"),
        Method("dpm++", params.strategy(), base, scheduler="dpm++"),
    ]
    references = {s: Method(f"cloud-{s}", CloudOnly(), {"strategy": "cloud"}, scheduler=s) for s in ("ddim", "euler", "dpm++")}
    return list(references.values()) + variants, {v.name: f"cloud-{v.scheduler}" for v in variants}


def markdown(rows: list[dict], machine: dict, prompts: int, num_steps: int, models: str) -> str:
    lines = ["| Variant | Scheduler | PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ | Latency (s) ↓ | Speedup ↑ | Cloud calls | Approx steps | Edge calls |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['scheduler']} | {fmt(r['psnr'], 2)} | {fmt(r['ssim'])} | {fmt(r['lpips'])} | "
                     f"{r['latency_s']:.3f} | {r['speedup']:.2f}x | {r['cloud_calls']} | {r['approx_steps']} | {r['edge_calls']} |")
    lines += ["", f"{prompts} prompts, {num_steps} steps, models {models}. Each variant against cloud-only with the "
              f"same scheduler (PSNR / SSIM / LPIPS, speedup from median in-process seconds per image, this run). "
              f"Machine: {machine['processor']}, {machine['cpu_count']} CPUs, torch {machine['torch']}, device {machine['device']} {machine.get('dtype') or ''}."]
    return "\n".join(lines) + "\n"


def run(args) -> int:
    try:
        params = ecdiff_params_from_args(args)
        items = read_prompts(args.prompts, args.seed)
        pair = pair_from_args(args)
    except ValueError as exc:
        print(f"ecdiff bench ablation: error: {exc}", file=sys.stderr)
        return 2
    methods, reference_of = ablation_methods(params)
    cache = ImageCache(args.out / "images", json.dumps([pair.cache_key, params.num_steps]))
    records = run_methods(methods, items, cache, in_process(pair, params.num_steps), warmup=not args.no_warmup,
                          progress=not args.no_progress)
    rows = []
    for method in methods:
        if method.name not in reference_of:
            continue
        recs, ref = records[method.name], records[reference_of[method.name]]
        rows.append({
            "variant": method.name,
            "scheduler": method.scheduler,
            **compare(recs, ref),
            "latency_s": median_latency(recs),
            "speedup": median_latency(ref) / median_latency(recs),
            "cloud_calls": recs[0].cloud_calls,
            "approx_steps": recs[0].approx_steps,
            "edge_calls": recs[0].edge_calls,
            "params": {**method.params, "reference": reference_of[method.name], "reference_latency_s": median_latency(ref)},
        })
    machine = machine_info(pair.cloud.device, pair.cloud.dtype)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ablation.json").write_text(json.dumps(
        {"rows": rows, "machine": machine, "models": pair.name, "prompts": len(items), "num_steps": params.num_steps}, indent=2) + "\n")
    table = markdown(rows, machine, len(items), params.num_steps, pair.name)
    (args.out / "ablation.md").write_text(table)
    print(table)
    return 0
