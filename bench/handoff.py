"""`ecdiff bench handoff`: what a compact handoff costs in image quality, and what it saves in bytes.

For each prompt the EC-Diff cloud phase runs once, through the services' own cloud-phase runner on
a cloud engine (so the step latents it would send as checkpoints are the real ones); then for each
transfer encoding (float32, float16, bfloat16 and int8 per channel) every latent the cloud sends
goes through the wire codec (`ecdiff.wire.tensors`), and the edge phase finishes from the decoded
handoff with the services' edge-phase runner. Reported per encoding: SSIM and PSNR of the final
image against the float32 one (same prompt and seed), the tensor bytes per image (handoff plus the
checkpoints at --checkpoint-every) and the handoff's bytes; and the handoff bytes of an SD-1.x-sized
(1 x 4 x 64 x 64) latent in each encoding. Writes results.json and table.md to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from ecdiff.cli_options import ECDIFF_PARAMS, add_strategy_overrides, pair_from_args
from ecdiff.conditioning import denoising_model
from ecdiff.engine.config import EngineConfig
from ecdiff.engine.core import DenoisingEngine
from ecdiff.loading import LoadedModel
from ecdiff.metrics import psnr, ssim, stack_images
from ecdiff.search.prompts import PromptItem, add_prompt_arguments, read_prompts
from ecdiff.services.cloud_phase import CloudHandoff, CloudJob, CloudPhaseRunner
from ecdiff.services.config import MAX_LATENT_ABS, MAX_LATENT_ELEMENTS, EdgeConfig
from ecdiff.services.edge_phase import EdgeJob, EdgePhaseRunner
from ecdiff.services.identity import identity_of
from ecdiff.strategies import Strategy
from ecdiff.strategy_config import CONFIG_ENV
from ecdiff.wire.tensors import INT8, RAW, from_proto, to_proto

from .quality import ecdiff_params_from_args
from .quality_runner import machine_info

# name -> (dtype on the wire, or decoded to; encoding)
ENCODINGS = {"float32": (torch.float32, RAW), "float16": (torch.float16, RAW), "bfloat16": (torch.bfloat16, RAW),
             "int8": (torch.float32, INT8)}
SD_LATENT = (1, 4, 64, 64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_prompt_arguments(parser)
    parser.add_argument("--steps", type=int, help="denoising steps (default: the strategy config's, 50)")
    parser.add_argument("--strategy-config", type=Path, help=f"strategy config with EC-Diff's parameters (default: "
                                                             f"${CONFIG_ENV} or configs/strategy.toml)")
    add_strategy_overrides(parser, ECDIFF_PARAMS)
    parser.add_argument("--checkpoint-every", type=int, default=EdgeConfig.checkpoint_every,
                        help=f"the cloud sends its latent every n steps (default {EdgeConfig.checkpoint_every}, "
                             "the edge's default)")
    parser.add_argument("--limit", type=int, help="only the first N prompts (default: all)")
    parser.add_argument("--out", type=Path, default=Path("out/bench-handoff"), help="output folder "
                        "(default: out/bench-handoff)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


async def _cloud_phase(runner: CloudPhaseRunner, job: CloudJob) -> tuple[list[torch.Tensor], CloudHandoff]:
    """The latents the cloud sends as checkpoints, and its handoff."""
    checkpoints, handoff = [], None
    async for event in runner.run(job):
        if isinstance(event, CloudHandoff):
            handoff = event
        elif event.latents is not None:
            checkpoints.append(event.latents)
    return checkpoints, handoff


def _wire(latents: torch.Tensor, name: str) -> tuple[torch.Tensor, int]:
    """`latents` after the wire codec in encoding `name`, and the encoded tensor's bytes."""
    dtype, encoding = ENCODINGS[name]
    message = to_proto(latents, dtype, encoding)
    decoded = from_proto(message, max_elements=MAX_LATENT_ELEMENTS, max_abs=MAX_LATENT_ABS, what=name)
    return decoded.to(torch.float32), message.ByteSize()


def measure_prompt(cloud: LoadedModel, edge: LoadedModel, runner: CloudPhaseRunner, strategy: Strategy,
                   num_steps: int, checkpoint_every: int, item: PromptItem) -> dict:
    """{encoding: (image, tensor bytes per image, handoff bytes)} for one prompt."""
    job = CloudJob(item.prompt, item.seed, num_steps, strategy, latents_every=checkpoint_every)
    checkpoints, handoff = asyncio.run(_cloud_phase(runner, job))
    finisher, out = EdgePhaseRunner(edge), {}
    for name in ENCODINGS:
        latents, handoff_bytes = _wire(handoff.latents, name)
        sent = handoff_bytes + sum(_wire(x, name)[1] for x in checkpoints)
        outcome = finisher.finish(EdgeJob(item.prompt, item.seed, num_steps, strategy, handoff.step, latents,
                                          cloud.guidance), lambda event: None)
        out[name] = (Image.open(io.BytesIO(outcome.image_png)).convert("RGB"), sent, handoff_bytes)
    return out


def run(args) -> int:
    try:
        params = ecdiff_params_from_args(args)
        items = read_prompts(args.prompts, args.seed)[:args.limit]
        pair = pair_from_args(args)
        if args.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    except ValueError as exc:
        print(f"ecdiff bench handoff: error: {exc}", file=sys.stderr)
        return 2
    strategy, num_steps = params.strategy(), params.num_steps
    print(f"models: {pair.name}; {len(items)} prompts; {num_steps} steps; EC-Diff {params.as_dict()}", file=sys.stderr)
    engine = DenoisingEngine(denoising_model(pair.cloud), EngineConfig(max_batch=1), name="bench-handoff")
    per_encoding = {name: {"images": [], "bytes": [], "handoff_bytes": []} for name in ENCODINGS}
    try:
        with ThreadPoolExecutor(max_workers=1) as executor:
            runner = CloudPhaseRunner(pair.cloud_model, engine, executor)
            for item in tqdm(items, disable=args.no_progress, desc="prompts"):
                for name, (image, sent, handoff_bytes) in measure_prompt(
                        pair.cloud_model, pair.edge_model, runner, strategy, num_steps, args.checkpoint_every,
                        item).items():
                    per_encoding[name]["images"].append(image)
                    per_encoding[name]["bytes"].append(sent)
                    per_encoding[name]["handoff_bytes"].append(handoff_bytes)
    finally:
        engine.close()
    exact = stack_images(per_encoding["float32"]["images"])
    rows = []
    for name, got in per_encoding.items():
        images = stack_images(got["images"])
        s, p = ssim(images, exact), psnr(images, exact)
        rows.append({"encoding": name, "ssim_mean": float(s.mean()), "ssim_min": float(s.min()),
                     "psnr_median_db": _db(p.median()), "psnr_min_db": _db(p.min()),
                     "identical_images": int((~p.isfinite()).sum()), "bytes_per_image": statistics.median(got["bytes"]),
                     "handoff_bytes": statistics.median(got["handoff_bytes"]),
                     "sd_handoff_bytes": _wire(torch.randn(SD_LATENT, generator=torch.Generator().manual_seed(0)),
                                               name)[1]})
    results = {"models": pair.name, "prompts": len(items), "num_steps": num_steps, "ecdiff": params.as_dict(),
               "checkpoint_every": args.checkpoint_every, "latent_shape": list(identity_of(pair.cloud_model).latent_shape),
               "rows": rows,
               "machine": machine_info(pair.cloud.device)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    table = _table(results)
    (args.out / "table.md").write_text(table)
    print(table)
    return 0


def _db(value: torch.Tensor):
    """PSNR for JSON: None for identical images (+inf)."""
    return float(value) if bool(value.isfinite()) else None


def _table(results: dict) -> str:
    shape = "x".join(map(str, results["latent_shape"]))
    lines = [f"{results['prompts']} prompts, {results['models']}, {results['num_steps']} steps, EC-Diff "
             f"{results['ecdiff']}, latent {shape}, checkpoints every {results['checkpoint_every']} steps; each image "
             "against the float32 handoff's (PSNR of identical images is infinite)", "",
             "| encoding | SSIM mean | SSIM min | PSNR median (dB) | PSNR min (dB) | identical images | latent bytes / "
             f"image | handoff bytes | handoff bytes, {'x'.join(map(str, SD_LATENT))} |",
             "|---|---|---|---|---|---|---|---|---|"]

    def db(value):
        return "inf" if value is None else f"{value:.1f}"

    for r in results["rows"]:
        lines.append(f"| {r['encoding']} | {r['ssim_mean']:.4f} | {r['ssim_min']:.4f} | {db(r['psnr_median_db'])} | "
                     f"{db(r['psnr_min_db'])} | {r['identical_images']} | {r['bytes_per_image']:.0f} | "
                     f"{r['handoff_bytes']:.0f} | {r['sd_handoff_bytes']} |")
    return "\n".join(lines) + "\n"
