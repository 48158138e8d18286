"""Command-line options every kernel microbenchmark shares: --quick, --repeats, --unet-config, --out-dir."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Optional

from .cloud_unet import DEFAULT_CONFIG


def parse_bench_args(description: str, argv, *, quick_help: str, default_repeats: int, outputs: str,
                     add_more: Optional[Callable[[argparse.ArgumentParser], None]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--repeats", type=int, default=default_repeats,
                   help="timed calls per measurement (median and min reported)")
    if add_more is not None:
        add_more(p)
    p.add_argument("--unet-config", type=Path, default=DEFAULT_CONFIG, help="cloud UNet config.json of the default pair")
    p.add_argument("--out-dir", type=Path, default=Path("out/bench"), help=f"where {outputs} go")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    return args
