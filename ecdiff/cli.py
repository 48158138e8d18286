"""The `ecdiff` command: a thin dispatcher over subcommand modules.

Each module in SUBCOMMANDS defines `register(subparsers)`, which adds its parser and sets
`func(args) -> int`. Modules are imported only when the command line needs them, so
`ecdiff --help` stays fast and a broken optional part cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module defining register(subparsers), one-line help shown by `ecdiff --help`)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("ecdiff.demo", "start both services, run every strategy, print what each cost"),
    "serve": ("ecdiff.services.cli", "run the cloud or the edge gRPC service"),
    "generate": ("ecdiff.clients.generate_cli", "generate an image through an EdgeDenoiser"),
    "search": ("ecdiff.search.cli", "two-stage greedy search of EC-Diff's k, alpha and s"),
    "noise-curve": ("ecdiff.search.noise_cli", "plot the noise-difference curve and propose p"),
    "ladder": ("ecdiff.search.ladder_cli", "measure cheaper EC-Diff points for load-adaptive quality"),
    "bench": ("ecdiff.bench.cli", "quality (Table 1), ablation (Table 2), sessions (DiffusionX) benchmarks"),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecdiff", description="Edge-cloud collaborative diffusion inference.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if name == command:
            importlib.import_module(module_name).register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
