"""Measure the shipped models and write the numbers their model cards quote.

`python -m ecdiff.models.training.evaluate [--prompts 200] [--guidance G] [--only vae cloud edge]`

- VAE: PSNR and scorer accuracy on reconstructions of fresh jittered renders (never trained on).
- Pipelines: fresh scenes (own seed) -> canonical captions -> plain diffusers calls at 50 DDIM
  steps with the project's seed convention; per-attribute scorer accuracy, prompt fidelity, and
  wall time per image of single-prompt calls on this machine.
- Both also read their images with the rule-based palette-and-geometry reader
  (`ecdiff.toyworld.reader`), as an outside check would, so no number rests on the scorer alone.
Results go to models/<folder>/eval.json; model_cards.py turns them into README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch
from diffusers import AutoencoderKL
from tqdm import tqdm

from ecdiff.models import DEFAULT_GUIDANCE, load_pipeline
from ecdiff.models.registry import PIPELINES, VAE_DIR_NAME, model_path
from ecdiff.models.scorer import attribute_matches, load_scorer, read_attributes
from ecdiff.models.training.data import to_unit_range
from ecdiff.toyworld import ATTRIBUTES, Jitter, Scene, canonical_caption, render_batch, sample_scenes
from ecdiff.toyworld.reader import read_images

EVAL_SCENE_SEED = 20261122  # disjoint from every training seed (0, 1)
NUM_STEPS = 50


def _machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}"


def _mean_accuracy(matches: list[dict[str, bool]]) -> dict[str, float]:
    acc = {name: sum(m[name] for m in matches) / len(matches) for name in ATTRIBUTES}
    acc["mean"] = sum(acc[name] for name in ATTRIBUTES) / len(ATTRIBUTES)
    return acc


def _accuracy(read: list[Scene], wanted: list[Scene]) -> dict[str, float]:
    return _mean_accuracy([attribute_matches(r, w) for r, w in zip(read, wanted)])


def _reader_accuracy(images_u8: np.ndarray, wanted: list[Scene]) -> dict[str, float]:
    read = read_images(images_u8)
    return _mean_accuracy([{name: r[name] == getattr(w, name) for name in ATTRIBUTES} for r, w in zip(read, wanted)])


@torch.no_grad()
def evaluate_vae(count: int) -> dict:
    scenes = sample_scenes(count, np.random.default_rng(EVAL_SCENE_SEED))
    originals = render_batch(scenes, seed=EVAL_SCENE_SEED, jitter=Jitter())
    vae = AutoencoderKL.from_pretrained(model_path(VAE_DIR_NAME), torch_dtype=torch.float32).eval()
    x = to_unit_range(torch.from_numpy(originals).permute(0, 3, 1, 2))
    recon = torch.cat([vae.decode(vae.encode(x[i:i + 100]).latent_dist.mode()).sample for i in range(0, count, 100)])
    recon_u8 = ((recon.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    mse = ((recon_u8.astype(np.float64) - originals) ** 2).mean(axis=(1, 2, 3))
    scorer = load_scorer()
    return {
        "images": count,
        "psnr_db_mean_over_images": float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10)))),
        "psnr_db_of_mean_mse": float(10 * np.log10(255.0 ** 2 / mse.mean())),
        "scorer_accuracy_on_reconstructions": _accuracy(read_attributes(scorer, recon_u8), scenes),
        "scorer_accuracy_on_originals": _accuracy(read_attributes(scorer, originals), scenes),
        "reader_accuracy_on_reconstructions": _reader_accuracy(recon_u8, scenes),
    }


def evaluate_pipeline(name: str, count: int, guidance: float, batch: int = 16, timed: int = 8) -> dict:
    pipe = load_pipeline(name)
    scorer = load_scorer()
    scenes = sample_scenes(count, np.random.default_rng(EVAL_SCENE_SEED + 1))
    prompts = [canonical_caption(s) for s in scenes]
    images = []
    for i in tqdm(range(0, count, batch), desc=f"generate {name}"):
        # A list of per-prompt generators gives each image exactly the latents a single call with that seed would.
        gens = [torch.Generator("cpu").manual_seed(seed) for seed in range(i, min(i + batch, count))]
        images.append(pipe(prompts[i:i + batch], num_inference_steps=NUM_STEPS, guidance_scale=guidance,
                           generator=gens, output_type="np").images)
    images_u8 = (np.concatenate(images) * 255).round().astype(np.uint8)
    times = []
    for seed in range(timed + 1):
        t0 = time.perf_counter()
        pipe(prompts[seed], num_inference_steps=NUM_STEPS, guidance_scale=guidance,
             generator=torch.Generator("cpu").manual_seed(seed), output_type="np")
        times.append(time.perf_counter() - t0)
    times = times[1:]  # the first call pays one-off allocator/oneDNN set-up
    return {
        "prompts": count, "steps": NUM_STEPS, "guidance": guidance,
        "accuracy": _accuracy(read_attributes(scorer, images_u8), scenes),
        "reader_accuracy": _reader_accuracy(images_u8, scenes),
        "seconds_per_image_single_call": {"min": min(times), "median": statistics.median(times), "calls": len(times)},
        "machine": _machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecdiff.models.training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--vae-images", type=int, default=1000)
    parser.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    parser.add_argument("--only", nargs="*", choices=["vae", "cloud", "edge"], default=["vae", "cloud", "edge"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dry-run", action="store_true", help="print results, do not write eval.json")
    args = parser.parse_args(argv)
    if args.prompts <= 0 or args.vae_images <= 0:
        parser.error("--prompts and --vae-images must be > 0")
    torch.set_num_threads(args.threads)
    for what in args.only:
        if what == "vae":
            result, folder = evaluate_vae(args.vae_images), model_path(VAE_DIR_NAME)
        else:
            name = f"toyworld-{what}"
            result, folder = evaluate_pipeline(name, args.prompts, args.guidance), model_path(PIPELINES[name])
        print(what, json.dumps(result, indent=2), flush=True)
        if not args.dry_run:
            (folder / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
