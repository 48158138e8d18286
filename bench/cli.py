"""`ecdiff bench quality | ablation`: the benchmark scripts behind the paper's Tables 1 and 2."""

from __future__ import annotations

import argparse
from pathlib import Path

from ecdiff.search.pair_args import add_pair_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="quality (Table 1) and ablation (Table 2) benchmarks")
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)

    from . import ablation, quality

    q = benches.add_parser("quality", help="cloud / edge / hybrid-10 / hybrid-25 / ecdiff side by side",
                           description=quality.__doc__)
    add_pair_arguments(q)
    quality.add_arguments(q)
    q.add_argument("--search-dir", type=Path, help="a search output folder: plot its frontier")
    q.set_defaults(func=quality.run)

    a = benches.add_parser("ablation", help="EC-Diff variants: correcting twice, alpha = 1, Euler, DPM-Solver++",
                           description=ablation.__doc__)
    add_pair_arguments(a)
    quality.add_arguments(a)
    a.set_defaults(func=ablation.run, out=Path("out/bench-ablation"))
