"""`ecdiff bench quality`: the paper's Table 1 on one model pair.

Methods on the same prompts and seeds: cloud, edge, hybrid-10 / hybrid-25 (HybridSD with the last
10 / 25 of 50 steps on the edge, scaled to the step count), ecdiff (parameters from a search's TOML
file). PSNR / SSIM / LPIPS against the cloud-only image of the same prompt and seed, prompt fidelity
and a scorer-FID against the cloud images from the pair's scorer (when one is installed), median
latency per image, speedup against cloud measured in the same run. Writes results.json,
results.csv, table.md and quality_vs_latency.png (and scorer_fid.json with a scorer); images are
cached under OUT/images so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ecdiff.metrics import scorer_fid, stack_images
from ecdiff.search.pair import load_scorer, pair_from_args
from ecdiff.search.params import SHIPPED_PARAMS, ECDiffParams, load_params
from ecdiff.search.prompts import read_prompts
from ecdiff.strategies import CloudOnly, EdgeOnly, HybridSD

from .quality_report import write_quality_outputs
from .quality_runner import ImageCache, Method, compare, machine_info, median_latency, run_methods

METHODS = ("cloud", "edge", "hybrid-10", "hybrid-25", "ecdiff")


class Unavailable(ValueError):
    """A requested mode that does not exist yet (reported, never faked)."""


def hybrid_cloud_steps(edge_steps_of_50: int, num_steps: int) -> int:
    """HybridSD-n runs the last n of 50 steps on the edge; at T steps, the last round(n * T / 50)."""
    return num_steps - round(edge_steps_of_50 * num_steps / 50)


def ecdiff_params_from_args(args) -> ECDiffParams:
    path = args.params or (SHIPPED_PARAMS if SHIPPED_PARAMS.is_file() else None)
    overrides = {k: v for k, v in (("pre_steps", args.p), ("k", args.k), ("alpha", args.alpha),
                                   ("switch_step", args.s)) if v is not None}
    if path is None and len(overrides) < 4:
        raise ValueError("no EC-Diff parameters: pass --params FILE (written by `ecdiff search`) "
                         "or all of --p --k --alpha --s")
    base = load_params(path).as_dict() if path else {"num_steps": args.steps or 50}
    params = ECDiffParams(**{**base, **overrides, **({"num_steps": args.steps} if args.steps else {})})
    return params


def quality_methods(params: ECDiffParams) -> list[Method]:
    t = params.num_steps
    methods = [Method("cloud", CloudOnly(), {"strategy": "cloud"}), Method("edge", EdgeOnly(), {"strategy": "edge"})]
    for n in (10, 25):
        cloud_steps = hybrid_cloud_steps(n, t)
        methods.append(Method(f"hybrid-{n}", HybridSD(cloud_steps), {"strategy": "hybrid", "cloud_steps": cloud_steps}))
    methods.append(Method("ecdiff", params.strategy(), {"strategy": "ecdiff", **params.as_dict()}))
    return methods


def run(args) -> int:
    try:
        if args.latency == "e2e":
            raise Unavailable("end-to-end latency through the services is not available yet "
                              "(the gRPC services, issue 4, have not landed); use --latency in-process")
        if not args.bandwidth_mbps > 0:
            raise ValueError(f"--bandwidth-mbps must be > 0, got {args.bandwidth_mbps}")
        params = ecdiff_params_from_args(args)
        items = read_prompts(args.prompts, args.seed)
        pair = pair_from_args(args)
        scorer = load_scorer()
    except ValueError as exc:
        print(f"ecdiff bench quality: error: {exc}", file=sys.stderr)
        return 2
    num_steps = params.num_steps
    methods = quality_methods(params)
    print(f"models: {pair.name}; {len(items)} prompts; {num_steps} steps; latency in-process", file=sys.stderr)
    cache = ImageCache(args.out / "images", json.dumps([pair.name, pair.guidance, num_steps]))
    records = run_methods(pair, methods, items, num_steps, cache, warmup=not args.no_warmup,
                          progress=not args.no_progress)
    cloud_latency = median_latency(records["cloud"])
    prompts = [item.prompt for item in items]
    rows, fid = [], {}
    cloud_images = stack_images([r.image for r in records["cloud"]])
    for method in methods:
        recs = records[method.name]
        fidelity = None
        if scorer is not None:
            images = stack_images([r.image for r in recs])
            values = scorer.fidelity(images, prompts)
            fidelity = sum(values) / len(values)
            fid[method.name] = scorer_fid(scorer, images, cloud_images) if len(items) >= 2 else None
        latency = median_latency(recs)
        transfer = recs[0].transfer_bytes
        rows.append({
            "method": method.name,
            **compare(recs, records["cloud"]),
            "fidelity": fidelity,
            "latency_s": latency,
            "speedup": cloud_latency / latency,
            "cloud_calls": recs[0].cloud_calls,
            "edge_calls": recs[0].edge_calls,
            "transfer_bytes": transfer,
            "params": {
                **method.params,
                "num_steps": num_steps,
                "scheduler": method.scheduler,
                "models": pair.name,
                "guidance": pair.guidance,
                "prompts": len(items),
                "latency_mode": "in-process",
                "bandwidth_mbps": args.bandwidth_mbps,
                # Not part of latency_s in-process: the transfer model's time for the handoff latent.
                "transfer_s_model": transfer * 8 / (args.bandwidth_mbps * 1e6),
                "images_from_cache": sum(r.from_cache for r in recs),
            },
        })
    results = {"rows": rows, "machine": machine_info(pair.cloud.device)}
    search_points = args.search_dir / "points.jsonl" if args.search_dir else None
    write_quality_outputs(args.out, results, search_points, fid or None)
    print((args.out / "table.md").read_text())
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--prompts", type=Path, required=True, help="prompt file (lines, or TSV with prompt[/seed])")
    parser.add_argument("--seed", type=int, default=0, help="first seed for prompts without one (default: 0)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the parameter file's, else 50)")
    parser.add_argument("--params", type=Path, help=f"EC-Diff parameter TOML (default: {SHIPPED_PARAMS.name} if shipped)")
    parser.add_argument("--p", type=int, help="override p (pre_steps)")
    parser.add_argument("--k", type=int, help="override k")
    parser.add_argument("--alpha", type=float, help="override alpha")
    parser.add_argument("--s", type=int, help="override s (switch_step)")
    parser.add_argument("--bandwidth-mbps", type=float, default=18.88, help="bandwidth of the transfer model (default: 18.88)")
    parser.add_argument("--latency", choices=("in-process", "e2e"), default="in-process",
                        help="in-process (default) or e2e through the services (not available yet)")
    parser.add_argument("--out", type=Path, default=Path("out/bench-quality"), help="output folder (images cached inside)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run of each method")
