"""`ecdiff bench quality | ablation | rule-error | sessions | refine-rules | handoff | load | ray-proxy | gpu |
capacity`: EC-Diff's Tables 1 and 2, the per-step error of the extrapolation rules (Figure 5), DiffusionX's
session benchmark and its approximated refinement under each rule, the transfer encodings' cost, the cloud
under load, Ray Serve's gRPC proxy against our front end, the prepared GPU check, and the capacity plan."""

from __future__ import annotations

import argparse
from pathlib import Path

from ecdiff.cli_options import add_pair_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="quality (Table 1), ablation (Table 2), sessions (DiffusionX) and "
                                                 "load benchmarks")
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)

    from . import ablation, capacity, gpu_check, handoff, load, quality, ray_proxy, refine_rules, rule_error, sessions

    q = benches.add_parser("quality", help="cloud / edge / hybrid-10 / hybrid-25 / ecdiff side by side",
                           description=quality.__doc__)
    add_pair_arguments(q)
    quality.add_arguments(q)
    quality.add_latency_arguments(q)
    q.add_argument("--out", type=Path, default=Path("out/bench-quality"),
                   help="output folder, images cached inside (default: out/bench-quality)")
    q.add_argument("--search-dir", type=Path, help="a search output folder: plot its frontier (default: none)")
    q.set_defaults(func=quality.run)

    a = benches.add_parser("ablation", help="EC-Diff variants: correcting twice, alpha = 1, Euler, DPM-Solver++",
                           description=ablation.__doc__)
    add_pair_arguments(a)
    quality.add_arguments(a)
    a.add_argument("--out", type=Path, default=Path("out/bench-ablation"),
                   help="output folder, images cached inside (default: out/bench-ablation); in-process latency only: "
                        "the services run the models' own scheduler with one correction, not these variants")
    a.set_defaults(func=ablation.run)

    r = benches.add_parser("rule-error", help="per-step latent error of each extrapolation rule against cloud-only "
                           "(Figure 5)", description=rule_error.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pair_arguments(r)
    rule_error.add_arguments(r)
    r.set_defaults(func=rule_error.run)

    d = benches.add_parser("sessions", help="DiffusionX: cloud / edge / diffusionx-fixed / diffusionx on prompt sessions",
                           description=sessions.__doc__)
    add_pair_arguments(d)
    sessions.add_arguments(d)
    d.set_defaults(func=sessions.run)

    rr = benches.add_parser("refine-rules", help="DiffusionX: the approximated refinement under each extrapolation "
                            "rule, k and pre_steps against the exact one", description=refine_rules.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pair_arguments(rr)
    refine_rules.add_arguments(rr)
    rr.set_defaults(func=refine_rules.run)

    h = benches.add_parser("handoff", help="compact handoffs: image quality and bytes of each transfer encoding",
                           description=handoff.__doc__)
    add_pair_arguments(h)
    handoff.add_arguments(h)
    h.set_defaults(func=handoff.run)

    ld = benches.add_parser("load", help="the cloud under many concurrent clients: throughput, latency, batching",
                            description=load.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pair_arguments(ld)
    load.add_arguments(ld)
    ld.set_defaults(func=load.run)

    rp = benches.add_parser("ray-proxy", help="CloudDenoiser through Ray Serve's gRPC proxy vs our front end, same "
                            "replicas", description=ray_proxy.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pair_arguments(rp)
    ray_proxy.add_arguments(rp)
    rp.set_defaults(func=ray_proxy.run)

    g = benches.add_parser("gpu", help="the prepared GPU check: GPU tests, end to end vs the CPU, kernels, load",
                           description=gpu_check.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    gpu_check.add_arguments(g)
    g.set_defaults(func=gpu_check.run)

    c = benches.add_parser("capacity", help="replicas (GPUs) a target request rate and p95 need, per strategy",
                           description=capacity.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    capacity.add_arguments(c)
    c.set_defaults(func=capacity.run)
