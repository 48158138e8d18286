"""`ecdiff demo`: every strategy on a few prompts, in process; PNGs, a contact sheet and a table.

Uses the embedded trained pair when it is installed, otherwise tiny random models (and says so).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .conventions import DEFAULT_NUM_STEPS, initial_latents
from .denoiser import latent_shape, pipeline_denoiser
from .images import contact_sheet, decode_images
from .sampling import sample
from .strategies import STRATEGY_NAMES, strategy_from_name

DEMO_PROMPTS = (
    "a small red circle at the top left on a white background",
    "a large blue square in the center on a black background",
    "a small yellow triangle at the bottom right on a gray background",
)
TINY_GUIDANCE = 3.0


def load_best_pair():
    """(cloud, edge, guidance, description): the embedded pair if present, else tiny random models."""
    try:
        from .models import DEFAULT_GUIDANCE, load_pipeline

        return load_pipeline("toyworld-cloud"), load_pipeline("toyworld-edge"), DEFAULT_GUIDANCE, "embedded toyworld pair"
    except (ImportError, FileNotFoundError, OSError):
        from .tiny_models import tiny_pipelines

        cloud, edge = tiny_pipelines(seed=0)
        return cloud, edge, TINY_GUIDANCE, "tiny RANDOM models (no trained pair installed): the images are noise"


def run(out_dir: Path, num_steps: int, seed: int) -> int:
    cloud_pipe, edge_pipe, guidance, description = load_best_pair()
    print(f"models: {description}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, table = [], {name: [] for name in STRATEGY_NAMES}
    jobs = [(p, n) for p in DEMO_PROMPTS for n in STRATEGY_NAMES]
    images = {}
    for prompt, name in tqdm(jobs, desc="demo", unit="image"):
        strategy = strategy_from_name(name)
        started = time.perf_counter()
        cloud = pipeline_denoiser(cloud_pipe, prompt, guidance)
        edge = pipeline_denoiser(edge_pipe, prompt, guidance)
        latents = initial_latents(seed, latent_shape(cloud_pipe), cloud_pipe.scheduler, num_steps=num_steps)
        result = sample(strategy, cloud_pipe.scheduler, cloud, edge, latents, num_steps=num_steps)
        image = decode_images(edge_pipe, result.latents)[0]
        seconds = time.perf_counter() - started
        table[name].append((seconds, result.cloud_calls, result.approx_steps, result.edge_calls))
        images[(prompt, name)] = image
        image.save(out_dir / f"{DEMO_PROMPTS.index(prompt)}-{name}.png")
    rows = [[images[(p, n)] for n in STRATEGY_NAMES] for p in DEMO_PROMPTS]
    contact_sheet(rows).resize((4 * 68 * 3, 3 * 68 * 3)).save(out_dir / "contact_sheet.png")
    cloud_median = statistics.median(s for s, *_ in table["cloud"])
    print(f"\n{len(DEMO_PROMPTS)} prompts, seed {seed}, {num_steps} DDIM steps, in-process on {torch.get_num_threads()} threads")
    print("| strategy | median s/image | speedup vs cloud | cloud calls | approx steps | edge calls |")
    print("|---|---|---|---|---|---|")
    for name in STRATEGY_NAMES:
        median = statistics.median(s for s, *_ in table[name])
        _, c, a, e = table[name][0]
        print(f"| {name} | {median:.3f} | {cloud_median / median:.2f}x | {c} | {a} | {e} |")
    print(f"\nimages and contact sheet in {out_dir}/")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run every strategy once and print what each cost")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    parser.add_argument("--steps", type=int, default=DEFAULT_NUM_STEPS, help="denoising steps (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial latents (default: 0)")
    parser.set_defaults(func=lambda args: run(args.out, args.steps, args.seed))
