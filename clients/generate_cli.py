"""`ecdiff generate "prompt" --out img.png`: one image through an EdgeDenoiser, with a progress
bar and a summary table."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict
from pathlib import Path

import grpc
from tqdm import tqdm

from ecdiff.strategies import STRATEGY_NAMES
from ecdiff.v1 import edge_pb2
from ecdiff.wire.tensors import ENCODINGS

from .credentials import add_security_flags, security_from_flags
from .sdk import DEFAULT_EDGE, TRANSFER_DTYPES, EdgeClient, GenerateResult

EDGE_ENV = "ECDIFF_EDGE"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="generate an image through an EdgeDenoiser", description=__doc__)
    p.add_argument("prompt")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--strategy", choices=STRATEGY_NAMES, default="ecdiff", help="(default: ecdiff)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial latents (default: 0)")
    p.add_argument("--steps", type=int, default=0, help="denoising steps (default: the server's, 50)")
    p.add_argument("--edge", default=os.environ.get(EDGE_ENV, DEFAULT_EDGE),
                   help=f"EdgeDenoiser HOST:PORT (default ${EDGE_ENV} or {DEFAULT_EDGE})")
    for name, kind, help_text in (("pre-steps", int, "EC-Diff p"), ("k", int, "EC-Diff k"), ("alpha", float, "EC-Diff alpha"),
                                  ("switch-step", int, "EC-Diff s"), ("rule", str, "EC-Diff extrapolation rule"),
                                  ("beta", float, "EC-Diff beta"), ("cloud-steps", int, "HybridSD cloud steps")):
        p.add_argument(f"--{name}", type=kind, help=f"{help_text} (default: configs/strategy.toml)")
    p.add_argument("--require-cloud", action="store_true", help="fail instead of running edge-only when the cloud is down")
    p.add_argument("--exact-strategy", action="store_true", help="forbid the cloud to serve a cheaper EC-Diff point "
                   "under load (default: allowed where the cloud has adaptive quality on; the summary says so)")
    p.add_argument("--transfer-dtype", choices=sorted(TRANSFER_DTYPES), default="float32",
                   help="dtype of the latents between cloud and edge (default: float32)")
    p.add_argument("--transfer-encoding", choices=sorted(ENCODINGS),
                   help="latents between cloud and edge: raw (with float32: lossless) or int8 (a quarter of the "
                        "bytes, lossy) (default: the edge's, int8 unless configured otherwise)")
    p.add_argument("--timeout", type=float, help="deadline in seconds (default: none)")
    add_security_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        security = security_from_flags(args)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    params = {"pre_steps": args.pre_steps, "k": args.k, "alpha": args.alpha, "switch_step": args.switch_step,
              "rule": args.rule, "beta": args.beta, "cloud_steps": args.cloud_steps}
    bar = tqdm(desc=args.strategy, unit="step", total=args.steps or None)

    def on_event(event: edge_pb2.GenerateEvent) -> None:
        if event.HasField("progress"):
            progress = event.progress
            bar.total = progress.total_steps
            if progress.phase == edge_pb2.PHASE_DECODE:
                bar.set_postfix_str("decoding")
            else:
                bar.set_postfix_str(edge_pb2.Phase.Name(progress.phase).removeprefix("PHASE_").lower())
                bar.update(1)
        elif event.HasField("notice"):
            tqdm.write(f"notice: {event.notice.message}")

    try:
        with EdgeClient(args.edge, **asdict(security)) as client:
            result = client.generate(args.prompt, seed=args.seed, num_steps=args.steps, strategy=args.strategy,
                                     params=params, require_cloud=args.require_cloud, exact_strategy=args.exact_strategy,
                                     transfer_dtype=args.transfer_dtype, transfer_encoding=args.transfer_encoding,
                                     on_event=on_event, timeout=args.timeout)
    except grpc.RpcError as exc:
        bar.close()
        print(f"error: {exc.code().name}: {exc.details()}")
        hint = error_hint(exc, args.edge)
        if hint:
            print(f"hint: {hint}")
        return 1
    bar.close()
    print(f"wrote {result.save(args.out)}")
    print(summary_table(result))
    return 0


def error_hint(exc: grpc.RpcError, edge: str) -> str:
    """One line saying what to do about an unreachable edge or cloud; "" for other errors."""
    if exc.code() != grpc.StatusCode.UNAVAILABLE:
        return ""
    if "require_cloud" in (exc.details() or ""):
        return ("the edge's cloud is down: start one with `make serve-cloud` (or `ecdiff serve cloud`), "
                "or drop --require-cloud to let the edge generate alone")
    return (f"no EdgeDenoiser answers at {edge}: start one with `make serve-edge` (or `ecdiff serve edge`), "
            f"or point --edge HOST:PORT or ${EDGE_ENV} at a running one")


def summary_table(result: GenerateResult) -> str:
    s = result.summary
    rows = [
        ("strategy", f"{s.strategy} ({s.num_steps} steps, edge from step {s.handoff_step})"),
        ("cloud queue", f"{s.cloud_queue_seconds:.3f} s"),
        ("cloud compute", f"{s.cloud_compute_seconds:.3f} s"),
        ("transfer", f"{s.transfer_seconds:.3f} s"),
        ("edge compute", f"{s.edge_compute_seconds:.3f} s"),
        ("decode", f"{s.decode_seconds:.3f} s"),
        ("total (edge side)", f"{s.total_seconds:.3f} s"),
        ("model calls", f"cloud {s.cloud_calls}, approximated {s.approx_steps}, edge {s.edge_calls}"),
        ("bytes", f"to cloud {s.bytes_to_cloud}, from cloud {s.bytes_from_cloud}"),
        ("models", f"cloud {s.cloud_model or '-'}, edge {s.edge_model}"),
    ]
    if s.downgraded:
        served = s.served_params
        rows.append(("DOWNGRADED", f"served p {served.pre_steps}, k {served.k}, s {served.switch_step}: "
                                   f"{s.downgrade_reason}"))
    if s.degraded:
        rows.append(("DEGRADED", s.degraded_reason))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
