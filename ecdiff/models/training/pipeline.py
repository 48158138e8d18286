"""The `make models` driver: every stage, resumably, two lanes at a time on a 2-core machine.

`python -m ecdiff.models.training` runs the phases below; each phase runs its lanes as parallel
subprocesses with one torch thread each (on this shared 2-core machine, two threads in one
process oversubscribe and run ~3x slower than two one-thread processes). Within a lane the
stages run in order. `python -m ecdiff.models.training STAGE ...` runs just those stages, in
this process. A stage is skipped once its stamp (in the gitignored cache) says it finished, so a
fresh clone retrains everything from scratch while a killed run resumes: finished stages are
skipped and the interrupted one restarts from its last checkpoint.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch

from ecdiff.models.training.paths import cache_dir

# Phases run one after another; the lanes of a phase run side by side.
PHASES: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("vae", "latents"), ("scorer", "text")),
    (("cloud",), ("edge", "decoder")),
    (("distill", "evaluate"),),  # the edge's distillation needs the trained cloud as its teacher
)


def _stages() -> dict:
    from ecdiff.models.training import evaluate, model_cards
    from ecdiff.models.training.distill_edge import distill_edge
    from ecdiff.models.training.latents import build_latents
    from ecdiff.models.training.text_cache import build_text_cache
    from ecdiff.models.training.train_scorer import train_scorer
    from ecdiff.models.training.train_unet import CLOUD_TRAINING, EDGE_TRAINING, train_unet
    from ecdiff.models.training.train_vae import train_vae
    from ecdiff.models.training.train_vae_decoder import train_vae_decoder

    def evaluate_and_write_cards() -> None:
        evaluate.main([])
        model_cards.write_all()

    return {
        "scorer": train_scorer, "text": build_text_cache, "vae": train_vae, "latents": build_latents,
        "cloud": lambda: train_unet(CLOUD_TRAINING), "edge": lambda: train_unet(EDGE_TRAINING),
        "decoder": train_vae_decoder, "distill": distill_edge,
        "evaluate": evaluate_and_write_cards,
    }


def _stamp(name: str):
    stamps = cache_dir() / "stamps"
    stamps.mkdir(exist_ok=True)
    return stamps / f"{name}.done"


def run_stages(names: list[str]) -> None:
    stages = _stages()
    for name in names:
        stamp = _stamp(name)
        if stamp.is_file():
            print(f"[models] stage {name}: done before, skipping ({stamp})", flush=True)
            continue
        print(f"[models] stage {name}: start", flush=True)
        t0 = time.time()
        stages[name]()
        stamp.write_text(f"{time.time() - t0:.1f}\n")
        print(f"[models] stage {name}: finished in {time.time() - t0:.0f} s", flush=True)


def run_all(threads: int) -> None:
    t0 = time.time()
    for phase in PHASES:
        procs = [subprocess.Popen([sys.executable, "-m", "ecdiff.models.training", "--threads", str(threads), *lane])
                 for lane in phase]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"[models] a lane of phase {phase} failed (exit codes {codes}); rerun to resume")
    print(f"[models] all stages done in {time.time() - t0:.0f} s this run", flush=True)


def main(argv: list[str] | None = None) -> int:
    names = [name for phase in PHASES for lane in phase for name in lane]
    parser = argparse.ArgumentParser(prog="python -m ecdiff.models.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="*", metavar="STAGE", help=f"run only these, in order: {', '.join(names)}")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    args = parser.parse_args(argv)
    unknown = [s for s in args.stages if s not in names]
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; choose from {names}")
    if args.threads <= 0:
        parser.error("--threads must be > 0")
    torch.set_num_threads(args.threads)
    if args.stages:
        run_stages(args.stages)
    else:
        run_all(args.threads)
    return 0
