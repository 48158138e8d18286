"""`ecdiff bench gpu` (`make gpu-check`): the prepared check of the GPU path, one summary at the end.

1. tests: the CUDA-only tests (`tests/core/test_sampling_device.py`, whose CUDA test runs the
   sampling loop under `torch.cuda.set_sync_debug_mode("error")`, so one per-step host
   synchronisation fails it; `tests/core/test_placement.py`; `tests/kernels/test_gpu.py`) and the
   rest of `tests/kernels`, which runs the compiled kernels in every dtype against float64 on CUDA
   (the CPU runs them only in Triton's interpreter, whose bfloat16 rounding differs);
2. end to end: both services in this process with their models on `--device`/`--dtype`, every
   strategy through the EdgeDenoiser, each final latent compared with the in-process CPU float32
   run of the same request: relative L2 error, SSIM of both latents decoded on the CPU, and SSIM
   of the service's own picture (decoded by the device's VAE) against the CPU's, against the
   tolerances below (TF32 convolutions make even a float32 GPU run differ from the CPU's);
3. kernels: the approx_steps microbenchmark (`make bench-kernels`), which prints each kernel's
   GB/s and its share of the measured copy bandwidth;
4. load: `ecdiff bench load` at 8 clients, max batch 1 vs 8, on the device.

It runs unchanged on a CPU (`--device cpu --tiny --quick` is how the suite smoke-tests it), but its
figures mean something only on a GPU. Everything goes under --out; summary.json holds the figures and
is rewritten after every part. A part that fails (an exception, a subprocess past --part-timeout) is
reported FAILED with its error and the next part still runs: a GPU is lent for minutes, once.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

from ecdiff.cli_options import add_placement_arguments, placement_flags, placement_from_args
from ecdiff.conventions import DEFAULT_NUM_STEPS
from ecdiff.placement import CPU_FLOAT32, Placement
from ecdiff.strategies import STRATEGY_NAMES

GPU_TESTS = ("tests/core/test_sampling_device.py", "tests/core/test_placement.py", "tests/kernels")
PROMPTS = ("a small red circle at the top left on a white background",
           "a large blue square in the center on a black background")
# Stated tolerances against the CPU float32 run: relative L2 error of the final latent, SSIM of the pictures.
TOLERANCE = {torch.float32: (0.02, 0.98), torch.float16: (0.10, 0.90), torch.bfloat16: (0.20, 0.85)}
REQUEST_TIMEOUT_S = 120.0  # one end-to-end generation: a hung service fails its row, not the check
PART_TIMEOUT_S = 300.0


def run_logged(command: list[str], log: Path, timeout: float) -> subprocess.CompletedProcess:
    """`command` with its output written to `log`, also when it runs past `timeout` (then re-raised)."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        def text(x):
            return x.decode(errors="replace") if isinstance(x, bytes) else x or ""

        log.write_text(text(exc.stdout) + text(exc.stderr) + f"\n[stopped after {timeout:g} s]\n")
        raise
    log.write_text(proc.stdout + proc.stderr)
    return proc


def run_tests(out: Path, timeout: float) -> dict:
    started = time.perf_counter()
    proc = run_logged([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *GPU_TESTS],
                      out / "tests.log", timeout)
    lines = proc.stdout.strip().splitlines() or ["(no output)"]
    failed = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return {"ok": proc.returncode == 0, "summary": lines[-1], "failed": failed[:20],
            "seconds": round(time.perf_counter() - started, 1)}


def end_to_end(placement: Placement, tiny: bool, num_steps: int) -> dict:
    from ecdiff.clients.sdk import EdgeClient
    from ecdiff.images import decode_images, open_picture
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
                try:  # one failed request fails its row; the other strategies are still compared
                    started = time.perf_counter()
                    # A raw transfer: the tolerance is for the device's arithmetic, not the int8 handoff.
                    result = client.generate(prompt, seed=seed, num_steps=num_steps, strategy=name,
                                             params=params.as_dict(), return_latents=True, transfer_encoding="raw",
                                             timeout=REQUEST_TIMEOUT_S)
                    seconds = time.perf_counter() - started
                    reference = prepare_run(strategy, prompts=prompt, num_steps=num_steps, guidance=cpu_pair.guidance,
                                            cloud=cpu_pair.cloud, edge=cpu_pair.edge, seeds=seed).sample().latents
                    error = float((result.latents - reference).norm() / reference.norm())
                    pictures = [pil_to_tensor(decode_images(cpu_pair.cloud, x)[0]) for x in (result.latents, reference)]
                    similarity = float(ssim(pictures[0][None], pictures[1][None]))
                    # the service's own picture, decoded by the device's VAE in its precision
                    served = pil_to_tensor(open_picture(io.BytesIO(result.image_png)))
                    image_similarity = float(ssim(served[None], pictures[1][None]))
                except Exception as exc:  # noqa: BLE001 - reported in the row
                    rows.append({"strategy": name, "seed": seed, "error": f"{type(exc).__name__}: {exc}", "ok": False})
                    continue
                rows.append({"strategy": name, "seed": seed, "seconds": round(seconds, 3), "rel_error": error,
                             "ssim": similarity, "image_ssim": image_similarity, "degraded": result.degraded,
                             "ok": error <= max_error and min(similarity, image_similarity) >= min_ssim
                             and not result.degraded})
    return {"ok": all(r["ok"] for r in rows), "tolerance": {"rel_error": max_error, "ssim": min_ssim}, "rows": rows}


def kernels(out: Path, quick: bool, timeout: float) -> dict:
    args = [sys.executable, "-m", "ecdiff.bench.kernels.approx_steps_bench", "--out-dir", str(out / "kernels")]
    proc = run_logged(args + (["--quick"] if quick else []), out / "kernels.log", timeout)
    table = out / "kernels" / "kernels_approx_steps.md"
    return {"ok": proc.returncode == 0, "table": str(table), "headline": kernel_headline(table)}


def kernel_headline(table: Path) -> list[str]:
    """The microbenchmark's notes (machine, UNet call, copy bandwidth, one step's share of a UNet call) and
    the best Triton share of the copy bandwidth: the figures to read even if the table stays behind."""
    if not table.is_file():
        return []
    lines = table.read_text().splitlines()
    notes = [line[2:] for line in lines if line.startswith("- ")]
    header = next((line for line in lines if line.startswith("| latent")), None)
    if header is None or "triton % of copy BW" not in header:
        return notes
    column = [cell.strip() for cell in header.strip("|").split("|")].index("triton % of copy BW")
    shares = [float(row.strip("|").split("|")[column].strip().rstrip(" %")) for row in lines
              if row.startswith("| ") and row != header]
    return notes + [f"best Triton share of the copy bandwidth: {max(shares):.0f} %"]


def load(out: Path, args, quick: bool) -> dict:
    steps = 8 if quick else 20
    command = [sys.executable, "-m", "ecdiff.cli", "bench", "load", "--clients", "4" if quick else "8",
               "--requests-per-client", "1" if quick else "3", "--steps", str(steps), "--out", str(out / "load"),
               *(["--tiny"] if args.tiny else []), *placement_flags(args)]
    proc = run_logged(command, out / "load.log", args.part_timeout)
    return {"ok": proc.returncode == 0, "table": proc.stdout.strip()}


def run(args) -> int:
    try:
        placement = placement_from_args(args)
    except ValueError as exc:
        print(f"ecdiff bench gpu: error: {exc}", file=sys.stderr)
        return 2
    if placement.device.type != "cuda":
        print(f"note: running on {placement.describe()}: a smoke run of the check, not GPU figures", file=sys.stderr)
    if not args.part_timeout > 0:
        print(f"ecdiff bench gpu: error: --part-timeout must be > 0, got {args.part_timeout}", file=sys.stderr)
        return 2
    unknown = set(args.parts.split(",")) - {"tests", "e2e", "kernels", "load"}
    if unknown:
        print(f"ecdiff bench gpu: error: unknown --parts {sorted(unknown)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    steps = args.steps or (8 if args.quick else DEFAULT_NUM_STEPS)
    parts = {"tests": lambda: run_tests(args.out, args.part_timeout),
             "e2e": lambda: end_to_end(placement, args.tiny, steps),
             "kernels": lambda: kernels(args.out, args.quick, args.part_timeout),
             "load": lambda: load(args.out, args, args.quick)}
    summary = {"placement": placement.describe(), "gpu": torch.cuda.get_device_name(placement.device)
               if placement.device.type == "cuda" else None, "steps": steps, "tiny": args.tiny}
    for name in args.parts.split(","):
        started = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            summary[name] = parts[name]()
        except Exception as exc:  # noqa: BLE001 - one part's failure must not cost the others their run
            (args.out / f"{name}.error.log").write_text(traceback.format_exc())
            summary[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        summary[name]["seconds"] = round(time.perf_counter() - started, 1)
        # after every part: a run stopped from outside keeps what it had measured
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
        if "error" in part:
            lines.append(f"  error: {part['error']}")
            continue
        if name == "tests":
            lines.append(f"  {part['summary']}")
            lines += [f"  {line}" for line in part["failed"]]
        if name == "e2e":
            tol = part["tolerance"]
            lines.append(f"  vs CPU float32 (tolerance rel. error <= {tol['rel_error']}, SSIM >= {tol['ssim']}; "
                         "SSIM of the latents decoded on the CPU / of the service's own picture):")
            lines += [f"  {r['strategy']:>6} seed {r['seed']}: " + (
                f"error: {r['error']}" if "error" in r else
                f"{r['seconds']:.3f} s, rel. error {r['rel_error']:.2e}, SSIM {r['ssim']:.4f} / {r['image_ssim']:.4f}"
                f"{', degraded' if r['degraded'] else ''}{'' if r['ok'] else '  <-- outside'}") for r in part["rows"]]
        if name == "kernels":
            lines += [f"  {line}" for line in part["headline"]]
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
    parser.add_argument("--part-timeout", type=float, default=PART_TIMEOUT_S,
                        help=f"seconds each subprocess part (tests, kernels, load) may run before it is stopped and "
                             f"reported FAILED (default: {PART_TIMEOUT_S:g})")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")) / "gpu-check",
                        help="output folder (default: $OUT/gpu-check, else out/gpu-check)")
