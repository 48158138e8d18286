"""`ecdiff bench quality`: the paper's Table 1 on one model pair.

Methods on the same prompts and seeds: cloud, edge, hybrid-10 / hybrid-25 (HybridSD with the last
10 / 25 of 50 steps on the edge, scaled to the step count), ecdiff (parameters from the strategy
config, configs/strategy.toml by default), and any `--ecdiff-row` (EC-Diff with some values
changed, e.g. the paper's extrapolation rule beside a searched one). PSNR / SSIM / LPIPS against the cloud-only image of the
same prompt and seed, prompt fidelity and a scorer-FID against the cloud images from the pair's
scorer (when one is installed), median latency per image in process and/or end to end through the
services, speedup against cloud measured in the same run. Writes results.json, results.csv,
table.md and quality_vs_latency.png (and scorer_fid.json with a scorer); images are cached under
OUT/images so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Sequence

from ecdiff.loading import load_scorer
from ecdiff.metrics import scorer_fid, stack_images
from ecdiff.cli_options import (ECDIFF_PARAMS, SIMULATED_LINK_MBPS, STRATEGY_OPTIONS, add_strategy_overrides,
                                pair_from_args, strategy_overrides)
from ecdiff.search.params import ECDiffParams
from ecdiff.search.prompts import add_prompt_arguments, read_prompts
from ecdiff.strategies import CloudOnly, EdgeOnly, HybridSD
from ecdiff.strategy_config import CONFIG_ENV, StrategyDefaults

from .e2e import LinkSettings, ServiceError, ThroughServices, e2e_summary
from .quality_report import write_quality_outputs
from .quality_runner import ImageCache, Method, Record, compare, in_process, machine_info, median_latency, run_methods

METHODS = ("cloud", "edge", "hybrid-10", "hybrid-25", "ecdiff")
LATENCY_MODES = ("in-process", "e2e", "both")


def hybrid_cloud_steps(edge_steps_of_50: int, num_steps: int) -> int:
    """HybridSD-n runs the last n of 50 steps on the edge; at T steps, the last round(n * T / 50)."""
    return num_steps - round(edge_steps_of_50 * num_steps / 50)


def ecdiff_params_from_args(args) -> ECDiffParams:
    """EC-Diff's values from the strategy config (scaled to --steps as the services scale them),
    then --pre-steps --k --alpha --switch-step on top."""
    try:
        defaults = StrategyDefaults.load(args.strategy_config)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    return ECDiffParams.from_defaults(defaults, args.steps, **strategy_overrides(args))


def quality_methods(params: ECDiffParams, extra_rows: Sequence[tuple[str, ECDiffParams]] = ()) -> list[Method]:
    t = params.num_steps
    methods = [Method("cloud", CloudOnly(), {"strategy": "cloud"}), Method("edge", EdgeOnly(), {"strategy": "edge"})]
    for n in (10, 25):
        cloud_steps = hybrid_cloud_steps(n, t)
        methods.append(Method(f"hybrid-{n}", HybridSD(cloud_steps), {"strategy": "hybrid", "cloud_steps": cloud_steps}))
    for name, row in (("ecdiff", params), *extra_rows):
        methods.append(Method(name, row.strategy(), {"strategy": "ecdiff", **row.as_dict()}))
    return methods


def parse_ecdiff_row(text: str, params: ECDiffParams) -> tuple[str, ECDiffParams]:
    """NAME:key=value,... -> (NAME, `params` with those EC-Diff values), e.g.
    `ecdiff-paper:rule=paper,k=2,alpha=0.4,switch_step=36`."""
    name, sep, body = text.partition(":")
    if not sep or not name or name in METHODS:
        raise ValueError(f"--ecdiff-row takes NAME:key=value,... with a new NAME, got {text!r}")
    types = {dest: kind for _, dest, kind, _ in STRATEGY_OPTIONS if dest in ECDIFF_PARAMS}
    changes = {}
    for pair in filter(None, body.split(",")):
        key, eq, value = pair.partition("=")
        if not eq or key not in types:
            raise ValueError(f"--ecdiff-row {name}: {pair!r} is not key=value with a key of {sorted(types)}")
        try:
            changes[key] = types[key](value)
        except ValueError:
            raise ValueError(f"--ecdiff-row {name}: {key} must be a {types[key].__name__}, got {value!r}") from None
    return name, params.replace(**changes)


def fidelity_or_none(scorer, images, prompts: list[str]) -> float | None:
    try:
        values = scorer.fidelity(images, prompts)
    except ValueError as exc:  # e.g. prompts that are not toy-world captions, or another image size
        print(f"prompt fidelity n/a: the scorer cannot score these pictures/prompts ({exc})", file=sys.stderr)
        return None
    return sum(values) / len(values)


def generate_all(args, pair, methods, items, num_steps, link: LinkSettings) -> dict[str, dict[str, list[Record]]]:
    """{latency mode: {method: records}} for the modes asked for."""
    run_key = [pair.cache_key, num_steps]
    options = {"warmup": not args.no_warmup, "progress": not args.no_progress}
    records = {}
    if args.latency in ("in-process", "both"):
        cache = ImageCache(args.out / "images", json.dumps(run_key))
        records["in-process"] = run_methods(methods, items, cache, in_process(pair, num_steps), **options)
    if args.latency in ("e2e", "both"):
        cache = ImageCache(args.out / "images", json.dumps([*run_key, "e2e", link.as_dict()]))
        with ThroughServices(pair, num_steps, link, log_dir=args.out) as through:
            records["e2e"] = run_methods(methods, items, cache, through, desc="through the services", **options)
    return records


def method_row(method: Method, by_mode: dict, args, link: LinkSettings, fidelity: float | None, common: dict) -> dict:
    """One row of results.json; latency_s / speedup in the primary mode (e2e alone, else in-process)."""
    records = by_mode["e2e" if args.latency == "e2e" else "in-process"]
    recs = records[method.name]
    latency = median_latency(recs)
    transfer = round(statistics.median(r.transfer_bytes for r in recs))  # e2e: varies with the prompt's length
    row = {
        "method": method.name,
        **compare(recs, records["cloud"]),
        "fidelity": fidelity,
        "latency_s": latency,
        "speedup": median_latency(records["cloud"]) / latency,
        "cloud_calls": recs[0].cloud_calls,
        "edge_calls": recs[0].edge_calls,
        "transfer_bytes": transfer,
        "params": {**method.params, **common,
                   "images_from_cache": sum(r.from_cache for r in recs)},
    }
    if args.latency != "e2e":
        # Not part of the in-process latency: the transfer model's time for the raw handoff latent.
        row["params"]["transfer_s_model"] = transfer * 8 / (args.bandwidth_mbps * 1e6)
    if "e2e" in by_mode:
        e2e = by_mode["e2e"]
        if args.latency == "both":
            row["latency_e2e_s"] = median_latency(e2e[method.name])
            row["speedup_e2e"] = median_latency(e2e["cloud"]) / row["latency_e2e_s"]
        row["params"]["e2e"] = e2e_summary(e2e[method.name], link, by_mode.get("in-process", {}).get(method.name))
    return row


def run(args) -> int:
    try:
        if not args.bandwidth_mbps > 0:
            raise ValueError(f"--bandwidth-mbps must be > 0, got {args.bandwidth_mbps}")
        params = ecdiff_params_from_args(args)
        extra_rows = [parse_ecdiff_row(text, params) for text in args.ecdiff_rows or ()]
        items = read_prompts(args.prompts, args.seed)
        pair = pair_from_args(args)
        link = LinkSettings(args.bandwidth_mbps, service_threads=args.service_threads)
        scorer = load_scorer()
    except ValueError as exc:
        print(f"ecdiff bench quality: error: {exc}", file=sys.stderr)
        return 2
    num_steps = params.num_steps
    methods = quality_methods(params, extra_rows)
    print(f"models: {pair.name}; {len(items)} prompts; {num_steps} steps; latency {args.latency}", file=sys.stderr)
    try:
        by_mode = generate_all(args, pair, methods, items, num_steps, link)
    except ServiceError as exc:
        print(f"ecdiff bench quality: error through the services: {exc} (pictures so far are cached; "
              "rerun to continue)", file=sys.stderr)
        return 1
    records = by_mode["e2e" if args.latency == "e2e" else "in-process"]  # the pictures the metrics read
    common = {"num_steps": num_steps, "scheduler": type(pair.cloud.scheduler).__name__, "models": pair.name, "guidance": pair.guidance, "prompts": len(items),
              "latency_mode": args.latency, "bandwidth_mbps": args.bandwidth_mbps}
    prompts = [item.prompt for item in items]
    cloud_images = stack_images([r.image for r in records["cloud"]])
    rows, fid = [], {}
    for method in methods:
        fidelity = None
        if scorer is not None:
            images = stack_images([r.image for r in records[method.name]])
            fidelity = fidelity_or_none(scorer, images, prompts)
            if fidelity is not None:
                fid[method.name] = scorer_fid(scorer, images, cloud_images) if len(items) >= 2 else None
        rows.append(method_row(method, by_mode, args, link, fidelity, common))
    results = {"rows": rows, "machine": machine_info(pair.cloud.device, pair.cloud.dtype)}
    search_points = args.search_dir / "points.jsonl" if args.search_dir else None
    write_quality_outputs(args.out, results, search_points, fid or None)
    print((args.out / "table.md").read_text())
    return 0


def add_arguments(parser) -> None:
    """Options of `bench quality` and `bench ablation` (the ablation adds no latency mode)."""
    add_prompt_arguments(parser)
    parser.add_argument("--steps", type=int, help="denoising steps (default: the strategy config's, 50)")
    parser.add_argument("--strategy-config", type=Path,
                        help=f"strategy config with EC-Diff's parameters (default: ${CONFIG_ENV} or configs/strategy.toml, "
                             "as the services); step-indexed values are scaled to --steps")
    add_strategy_overrides(parser, ECDIFF_PARAMS)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run of each method")


def add_latency_arguments(parser) -> None:
    """`bench quality` only: how latency is measured."""
    parser.add_argument("--bandwidth-mbps", type=float, default=SIMULATED_LINK_MBPS,
                        help="edge<->cloud bandwidth: shaping of the services' hop (e2e), transfer model (in-process) "
                             f"(default: {SIMULATED_LINK_MBPS})")
    parser.add_argument("--ecdiff-row", dest="ecdiff_rows", action="append", metavar="NAME:key=value,...",
                        help="one more EC-Diff row beside `ecdiff`: its values with these changed, e.g. "
                             "ecdiff-paper:rule=paper,k=2,alpha=0.4,switch_step=36 (repeatable; default: none)")
    parser.add_argument("--latency", choices=LATENCY_MODES, default="in-process",
                        help="in-process, e2e (through the gRPC services, one child process each, on loopback), "
                             "or both (default: in-process)")
    parser.add_argument("--service-threads", type=int, default=0,
                        help="e2e: torch threads of each service process (default: half the cores, at least 1)")
