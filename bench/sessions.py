"""`ecdiff bench sessions`: DiffusionX's evaluation on multi-round prompt sessions.

Methods on the same sessions (JSON Lines `{"seed", "prompts", ...}`): cloud (every round a cloud
txt2img), edge (every round an edge txt2img), diffusionx-fixed (edge previews by img2img and the
cloud refinement at one fixed strength), diffusionx (strengths from the predictors). Per method:
prompt fidelity of the final image for the final prompt and scorer-FID of the final images against
exact renders of the final prompts' scenes (alignment scorer), mean session latency (compute
measured in process, transfer modelled at --bandwidth-mbps), mean cloud compute per session.
Writes results.json, tables.md; sessions are cached under OUT/sessions (resumable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from tqdm import tqdm

from ecdiff.conventions import DEFAULT_NUM_STEPS
from ecdiff.cli_options import SIMULATED_LINK_MBPS, pair_from_args
from ecdiff.services.link import LinkConfig
from ecdiff.diffusionx.predictors import PREDICTORS_DIR_NAME
from ecdiff.diffusionx.prompts import read_sessions
from ecdiff.diffusionx.engine import DEFAULT_PREVIEW_STEPS
from ecdiff.diffusionx.refine import RefineConfig

from .quality_runner import Method, machine_info
from .sessions_report import build_results, write_outputs
from .sessions_runner import METHODS, SessionCache, SessionSetup, run_session


def predictor_key(folder: Path) -> str:
    """A digest of a predictor folder's weights, for cache keys."""
    digest = hashlib.sha256()
    for name in ("edge.safetensors", "cloud.safetensors"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


def _approximation(args) -> dict | None:
    """The refinement's EC-Diff approximation settings, None without --approximate."""
    if not args.approximate:
        return None
    c = RefineConfig()
    return {"pre_steps": c.pre_steps, "k": c.k, "alpha": c.alpha}


def _setup(args, methods: list[str]):
    from ecdiff.models import load_scorer
    from ecdiff.models.training.paths import models_dir
    from ecdiff.diffusionx.choosers import load_choosers

    pair = pair_from_args(args)
    scorer = load_scorer()
    edge_chooser = cloud_chooser = None
    predictors = args.predictors or models_dir() / PREDICTORS_DIR_NAME
    if "diffusionx" in methods:
        try:
            edge_chooser, cloud_chooser = load_choosers(str(predictors))
        except FileNotFoundError as exc:
            raise ValueError(f"{exc}; or leave diffusionx out of --methods") from None
    setup = SessionSetup(pair, args.steps, args.preview_steps, args.fixed_strength, args.approximate,
                         edge_chooser, cloud_chooser, scorer)
    # The refinement's approximation settings change its images: part of the cache key.
    dx = {"preview_steps": args.preview_steps, "approximate": args.approximate, "approximation": _approximation(args)}
    params = {
        "cloud": {}, "edge": {},
        "diffusionx-fixed": {**dx, "strength": args.fixed_strength},
        "diffusionx": {**dx, "predictors": predictor_key(Path(predictors)) if edge_chooser else None},
    }
    return setup, scorer, {m: Method(m, None, params[m]) for m in methods}


def run(args) -> int:
    try:
        methods = args.methods.split(",")
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
        if not 0 < args.fixed_strength <= 1:
            raise ValueError(f"--fixed-strength must be in (0, 1], got {args.fixed_strength}")
        link = LinkConfig(args.bandwidth_mbps, args.latency_ms)
        sessions = read_sessions(args.sessions)[: args.limit]
        setup, scorer, by_name = _setup(args, methods)
    except (ValueError, FileNotFoundError) as exc:
        print(f"ecdiff bench sessions: error: {exc}", file=sys.stderr)
        return 2
    pair = setup.pair
    print(f"models: {pair.name}; {len(sessions)} sessions; methods {', '.join(methods)}", file=sys.stderr)
    cache = SessionCache(args.out / "sessions", json.dumps([pair.cache_key, args.steps]))
    records = {m: [cache.load_session(by_name[m], s) for s in sessions] for m in methods}
    # Session-major: a change of machine load lands on all methods alike (as in bench quality).
    todo = [(m, i) for i in range(len(sessions)) for m in methods if records[m][i] is None]
    if todo and not args.no_warmup:  # one untimed session per method, so one-time costs land in no timing
        for m in dict.fromkeys(m for m, _ in todo):
            run_session(m, setup, sessions[0])
    for m, i in tqdm(todo, desc="sessions", unit="session", disable=args.no_progress):
        records[m][i] = cache.store_session(by_name[m], sessions[i], run_session(m, setup, sessions[i]))
    results = build_results(records, sessions, scorer, link, machine_info(pair.cloud.device, pair.cloud.dtype),
                            {"models": pair.name, "steps": args.steps, "preview_steps": args.preview_steps,
                             "fixed_strength": args.fixed_strength, "approximation": _approximation(args),
                             "sessions_file": str(args.sessions)})
    write_outputs(args.out, results)
    print((args.out / "tables.md").read_text())
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--sessions", type=Path, required=True, help="sessions, JSON Lines {seed, prompts}")
    parser.add_argument("--out", type=Path, default=Path("out/bench-sessions"), help="output folder, cache inside (default: out/bench-sessions)")
    parser.add_argument("--limit", type=int, help="only the first N sessions (default: all)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated (default: {','.join(METHODS)})")
    parser.add_argument("--steps", type=int, default=DEFAULT_NUM_STEPS,
                        help=f"DDIM steps of full generations and the refinement (default: {DEFAULT_NUM_STEPS})")
    parser.add_argument("--preview-steps", type=int, default=DEFAULT_PREVIEW_STEPS,
                        help=f"DDIM steps of a preview schedule (default: {DEFAULT_PREVIEW_STEPS})")
    parser.add_argument("--fixed-strength", type=float, default=0.6, help="diffusionx-fixed's strength (default 0.6)")
    parser.add_argument("--approximate", action=argparse.BooleanOptionalAction, default=True,
                        help="refine with EC-Diff's k-step approximation (RefineConfig: 3 real calls from the start "
                             "step, then k 1, alpha 0.3), as a client asks with Finalize(approximate=true); "
                             "--no-approximate for the exact refinement (default: approximate)")
    parser.add_argument("--predictors", type=Path, help=f"predictor folder (default models/{PREDICTORS_DIR_NAME})")
    parser.add_argument("--bandwidth-mbps", type=float, default=SIMULATED_LINK_MBPS,
                        help=f"link of the transfer model (default: {SIMULATED_LINK_MBPS})")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="one-way latency per message (default 0)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up session per method")
