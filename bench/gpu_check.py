"""`ecdiff bench gpu` (`make gpu-check`): the prepared check of the GPU path, one summary at the end.

1. tests: the CUDA-only tests (`tests/kernels/test_gpu.py`; `tests/core/test_sampling_device.py`,
   whose CUDA test runs the sampling loop under `torch.cuda.set_sync_debug_mode("error")`, so one
   per-step host synchronisation fails it; `tests/core/test_placement.py`);
2. end to end: both services in this process with their models on `--device`/`--dtype`, every
   strategy through the EdgeDenoiser, each final latent compared with the in-process CPU float32
   run of the same request: relative L2 error and SSIM of the decoded pictures, against the
   tolerances below (TF32 convolutions make even a float32 GPU run differ from the CPU's);
3. kernels: the approx_steps microbenchmark (`make bench-kernels`), which prints each kernel's
   GB/s and its share of the measured copy bandwidth;
4. load: `ecdiff bench load` at 8 clients, max batch 1 vs 8, on the device.

It runs unchanged on a CPU (`--device cpu --tiny --quick` is how the suite smoke-tests it), but its
figures mean something only on a GPU. Everything goes under --out; summary.json holds the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from ecdiff.cli_options import add_placement_arguments, placement_flags, placement_from_args
from ecdiff.conventions import DEFAULT_NUM_STEPS
from ecdiff.placement import CPU_FLOAT32, Placement
from ecdiff.strategies import STRATEGY_NAMES

GPU_TESTS = ("tests/kernels/test_gpu.py", "tests/core/test_sampling_device.py", "tests/core/test_placement.py")
PROMPTS = ("a small red circle at the top left on a white background",
           "a large blue square in the center on a black background")
# Stated tolerances against the CPU float32 run: relative L2 error of the final latent, SSIM of the pictures.
TOLERANCE = {torch.float32: (0.02, 0.98), torch.float16: (0.10, 0.90), torch.bfloat16: (0.20, 0.85)}


def run_tests(out: Path) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *GPU_TESTS],
                          capture_output=True, text=True)
    (out / "tests.log").write_text(proc.stdout + proc.stderr)
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    return {"ok": proc.returncode == 0, "summary": last, "seconds": round(time.perf_counter() - started, 1)}


def end_to_end(placement: Placement, tiny: bool, num_steps: int) -> dict:
    from ecdiff.clients.sdk import EdgeClient
    from ecdiff.images import decode_images
    from ecdiff.loading import load_pair
    from ecdiff.metrics import pil_to_tensor, ssim
    from ecdiff.preparation import prepare_run
    from ecdiff.services.background import BackgroundServices
    from ecdiff.strategy_config import StrategyDefaults

    device_pair = load_pair(tiny=tiny, placement=placement)
    cpu_pair = load_pair(tiny=tiny, placement=CPU_FLOAT32)
    defaults = StrategyDefaults.load()
    max_error, min_ssim = TOLERANCE[placement.dtype]
    rows = []
    with BackgroundServices(device_pair.cloud_model, device_pair.edge_model) as services, \
            EdgeClient(services.edge_target) as client:
        for name in STRATEGY_NAMES:
            strategy, params = defaults.resolve(name, num_steps, {})
            for seed, prompt in enumerate(PROMPTS):
                started = time.perf_counter()
                # A raw transfer: the tolerance is for the device's arithmetic, not the int8 handoff.
                result = client.generate(prompt, seed=seed, num_steps=num_steps, strategy=name,
                                         params=params.as_dict(), return_latents=True, transfer_encoding="raw")
                seconds = time.perf_counter() - started
                reference = prepare_run(strategy, prompts=prompt, num_steps=num_steps, guidance=cpu_pair.guidance,
                                        cloud=cpu_pair.cloud, edge=cpu_pair.edge, seeds=seed).sample().latents
                error = float((result.latents - reference).norm() / reference.norm())
                pictures = [pil_to_tensor(decode_images(cpu_pair.cloud, x)[0]) for x in (result.latents, reference)]
                similarity = float(ssim(pictures[0][None], pictures[1][None]))
                rows.append({"strategy": name, "seed": seed, "seconds": round(seconds, 3), "rel_error": error,
                             "ssim": similarity, "degraded": result.degraded,
                             "ok": error <= max_error and similarity >= min_ssim and not result.degraded})
    return {"ok": all(r["ok"] for r in rows), "tolerance": {"rel_error": max_error, "ssim": min_ssim}, "rows": rows}


def kernels(out: Path, quick: bool) -> dict:
    args = [sys.executable, "-m", "ecdiff.bench.kernels.approx_steps_bench", "--out-dir", str(out / "kernels")]
    proc = subprocess.run(args + (["--quick"] if quick else []), capture_output=True, text=True)
    (out / "kernels.log").write_text(proc.stdout + proc.stderr)
    return {"ok": proc.returncode == 0, "table": str(out / "kernels" / "kernels_approx_steps.md")}


def load(out: Path, args, quick: bool) -> dict:
    steps = 8 if quick else 20
    command = [sys.executable, "-m", "ecdiff.cli", "bench", "load", "--clients", "4" if quick else "8",
               "--requests-per-client", "1" if quick else "3", "--steps", str(steps), "--out", str(out / "load"),
               *(["--tiny"] if args.tiny else []), *placement_flags(args)]
    proc = subprocess.run(command, capture_output=True, text=True)
    (out / "load.log").write_text(proc.stdout + proc.stderr)
    return {"ok": proc.returncode == 0, "table": proc.stdout.strip()}


def run(args) -> int:
    try:
        placement = placement_from_args(args)
    except ValueError as exc:
        print(f"ecdiff bench gpu: error: {exc}", file=sys.stderr)
        return 2
    if placement.device.type != "cuda":
        print(f"note: running on {placement.describe()}: a smoke run of the check, not GPU figures", file=sys.stderr)
    unknown = set(args.parts.split(",")) - {"tests", "e2e", "kernels", "load"}
    if unknown:
        print(f"ecdiff bench gpu: error: unknown --parts {sorted(unknown)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    steps = args.steps or (8 if args.quick else DEFAULT_NUM_STEPS)
    parts = {"tests": lambda: run_tests(args.out), "e2e": lambda: end_to_end(placement, args.tiny, steps),
             "kernels": lambda: kernels(args.out, args.quick), "load": lambda: load(args.out, args, args.quick)}
    summary = {"placement": placement.describe(), "gpu": torch.cuda.get_device_name(placement.device)
               if placement.device.type == "cuda" else None, "steps": steps, "tiny": args.tiny}
    for name in args.parts.split(","):
        started = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        summary[name] = parts[name]()
        summary[name]["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(report(summary))
    return 0 if all(summary[name]["ok"] for name in args.parts.split(",")) else 1


def report(summary: dict) -> str:
    lines = [f"GPU check on {summary['gpu'] or 'no GPU'} ({summary['placement']}), {summary['steps']} steps"]
    for name in ("tests", "e2e", "kernels", "load"):
        if name not in summary:
            continue
        part = summary[name]
        lines.append(f"- {name}: {'OK' if part['ok'] else 'FAILED'} in {part['seconds']} s")
        if name == "tests":
            lines.append(f"  {part['summary']}")
        if name == "e2e":
            tol = part["tolerance"]
            lines.append(f"  vs CPU float32 (tolerance rel. error <= {tol['rel_error']}, SSIM >= {tol['ssim']}):")
            lines += [f"  {r['strategy']:>6} seed {r['seed']}: {r['seconds']:.3f} s, rel. error {r['rel_error']:.2e}, "
                      f"SSIM {r['ssim']:.4f}{'' if r['ok'] else '  <-- outside'}" for r in part["rows"]]
        if name == "kernels":
            lines.append(f"  table: {part['table']}")
        if name == "load":
            lines += [f"  {line}" for line in part["table"].splitlines()]
    return "\n".join(lines)


def add_arguments(parser) -> None:
    add_placement_arguments(parser)
    parser.add_argument("--tiny", action="store_true", help="the tiny random pair instead of the shipped one "
                        "(default: the shipped pair)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 steps, small kernel and load runs (default: off)")
    parser.add_argument("--steps", type=int, help=f"denoising steps (default: {DEFAULT_NUM_STEPS}, 8 with --quick)")
    parser.add_argument("--parts", default="tests,e2e,kernels,load",
                        help="comma-separated parts to run (default: tests,e2e,kernels,load)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")) / "gpu-check",
                        help="output folder (default: $OUT/gpu-check, else out/gpu-check)")
