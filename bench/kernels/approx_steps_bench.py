"""Microbenchmark of ecdiff.kernels.approx_steps: time per approximated step, bytes, GB/s.

Columns, per latent shape x batch x k (times are per approximated step = call time / k):
  unfused    the plain sampling loop, one torch op per arithmetic step (eps+delta, f*x, g*eps, -)
  separate   k calls of the fused op with k=1 (one fused step per call)
  fused      one approx_steps call for all k steps (the torch reference here; Triton on CUDA)
  triton     the Triton kernel, only on a GPU: under TRITON_INTERPRET its speed means nothing
  graph      the Triton call replayed as a CUDA graph (GPU, small latents: launch-bound)
Bytes are counted from each implementation's tensor reads and writes (no hardware counters).
GB/s and the speed ratios use the minimum over repeats: on a shared machine other work only ever
adds time, so the minimum is the least disturbed measurement; medians are printed beside them.

Run: python -m ecdiff.bench.kernels.approx_steps_bench [--quick]   (make bench-kernels)
"""

from __future__ import annotations

import csv
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from tqdm import tqdm

from ecdiff.kernels import approx_steps

from .cloud_unet import load_unet, time_unet_call
from .machine import describe_machine
from .options import parse_bench_args
from .timing import Timing, copy_bandwidth, cuda_graph, time_call

LATENTS = {"SD-1.x": (4, 64, 64), "SDXL": (4, 128, 128), "CogVideoX": (16, 13, 60, 90)}
BATCHES, KS = (1, 2, 4, 8), (1, 2, 3, 4, 5)
GRAPH_MAX_ELEMENTS = 1 << 20  # below ~1 M elements a launch costs as much as the memory traffic
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Row:
    latent: str
    batch: int
    k: int
    elements: int
    us_per_step: dict[str, Timing] = field(default_factory=dict)  # method -> per-step time (µs)
    bytes_per_step: dict[str, float] = field(default_factory=dict)


def unfused_steps(x, eps, delta, f: list[float], g: list[float]):
    for fj, gj in zip(f, g):
        eps = eps + delta
        x = fj * x - gj * eps
    return x, eps


def separate_steps(x, eps, delta, f: torch.Tensor, g: torch.Tensor, backend: str):
    for j in range(f.numel()):
        x, eps = approx_steps(x, eps, delta, f[j:j + 1], g[j:j + 1], backend=backend)
    return x, eps


def bytes_per_call(method: str, n: int, itemsize: int, k: int) -> float:
    """Bytes read + written by one call, counted from the implementation's tensor passes."""
    if method == "unfused":  # per step: add r2 w1, two scalar muls r1 w1 each, sub r2 w1
        return 10 * n * itemsize * k
    if method in ("triton", "graph"):  # x, eps, delta read once, x and eps written once
        return 5 * n * itemsize
    # torch reference: mul r1 w1, add_ r2 w1, add_ r2 w1, add r2 w1 in fp32, plus up/down casts
    casts = 0 if itemsize == 4 else 3 * (itemsize + 4) + 2 * (4 + itemsize)
    per_call = n * (11 * 4 + casts)
    return per_call * k if method == "separate" else per_call


def methods(x, eps, delta, f: torch.Tensor, g: torch.Tensor, on_gpu: bool) -> dict[str, Callable[[], object]]:
    f_list, g_list = f.tolist(), g.tolist()
    fused_backend = "triton" if on_gpu else "torch"
    out = {
        "unfused": lambda: unfused_steps(x, eps, delta, f_list, g_list),
        "separate": lambda: separate_steps(x, eps, delta, f, g, fused_backend),
        "fused": lambda: approx_steps(x, eps, delta, f, g, backend="torch"),
    }
    if on_gpu:
        out["triton"] = lambda: approx_steps(x, eps, delta, f, g, backend="triton")
        if x.numel() <= GRAPH_MAX_ELEMENTS:
            # coefficients already on the GPU: a host-to-device copy cannot be captured in a graph
            f_dev, g_dev = f.to("cuda", torch.float32), g.to("cuda", torch.float32)
            out["graph"] = cuda_graph(lambda: approx_steps(x, eps, delta, f_dev, g_dev, backend="triton"))
    return out


def measure(latents: dict[str, tuple[int, ...]], batches, ks, dtype, device: str, repeats: int,
            clock: str) -> list[Row]:
    on_gpu = device == "cuda"
    gen = torch.Generator().manual_seed(0)
    configs = [(name, b, k) for name, shape in latents.items() for b in batches for k in ks]
    rows = []
    for name, batch, k in tqdm(configs, desc="approx_steps configs", file=sys.stderr):
        shape = (batch, *latents[name])
        x, eps, delta = (torch.randn(shape, generator=gen).to(device=device, dtype=dtype) for _ in range(3))
        # DDIM-like coefficients, float64 on the host as the sampling core keeps them
        f = 1.0 + 0.05 * torch.rand(k, generator=gen, dtype=torch.float64)
        g = 0.2 * torch.rand(k, generator=gen, dtype=torch.float64)
        row = Row(name, batch, k, x.numel())
        for method, fn in methods(x, eps, delta, f, g, on_gpu).items():
            row.us_per_step[method] = time_call(fn, repeats, cuda=on_gpu, clock=clock).scaled(1e6 / k)
            row.bytes_per_step[method] = bytes_per_call(method, x.numel(), x.element_size(), k) / k
        rows.append(row)
        del x, eps, delta
    return rows


def gbps(row: Row, method: str) -> float:
    return row.bytes_per_step[method] / (row.us_per_step[method].min_s * 1e-6) / 1e9


def markdown_table(rows: list[Row], copy_gbps: Optional[float]) -> str:
    methods_seen = list(rows[0].us_per_step)
    head = ["latent", "batch", "k", "elements"]
    head += [f"{m} µs/step med / min" for m in methods_seen]
    head += [f"{m} GB/s" for m in methods_seen]
    head += ["unfused / fused (min)", "separate / fused (min)", "fused bytes vs k separate"]
    if copy_gbps:
        head += ["triton % of copy BW"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r.us_per_step
        cells = [r.latent, str(r.batch), str(r.k), str(r.elements)]
        cells += [f"{t[m].median_s:.1f} / {t[m].min_s:.1f}" for m in methods_seen]
        cells += [f"{gbps(r, m):.1f}" for m in methods_seen]
        cells += [f"{t['unfused'].min_s / t['fused'].min_s:.2f}×",
                  f"{t['separate'].min_s / t['fused'].min_s:.2f}×",
                  f"1/{r.k}" if r.bytes_per_step["fused"] * r.k == r.bytes_per_step["separate"] else "≠ 1/k"]
        if copy_gbps:
            cells += [f"{100 * gbps(r, 'triton') / copy_gbps:.0f} %"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[Row], machine: dict[str, str]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["latent", "batch", "k", "elements", "method", "us_per_step_median", "us_per_step_min",
                    "bytes_per_step", "gb_per_s_best", *machine])
        for r in rows:
            for m, t in r.us_per_step.items():
                w.writerow([r.latent, r.batch, r.k, r.elements, m, f"{t.median_s:.3f}", f"{t.min_s:.3f}",
                            int(r.bytes_per_step[m]), f"{gbps(r, m):.3f}", *machine.values()])


def parse_args(argv):
    def add_more(p):
        p.add_argument("--dtype", choices=DTYPES, default="float32")
        p.add_argument("--clock", choices=("cpu", "wall"), default=None,
                       help="cpu: thread CPU time with torch single-threaded (default without a GPU); wall: elapsed "
                            "time (default and the only choice with a GPU)")

    return parse_bench_args(__doc__.splitlines()[0], argv, quick_help="smoke run: small latents, batch 1, k in (1, 4), "
                            "3 repeats", default_repeats=7, outputs="kernels_approx_steps.{md,csv}", add_more=add_more)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    repeats = 3 if args.quick else args.repeats
    clock = args.clock or ("wall" if device == "cuda" else "cpu")
    if device == "cuda" and clock == "cpu":
        raise SystemExit("--clock cpu cannot time GPU work; use --clock wall")
    threads = torch.get_num_threads()
    if clock == "cpu":
        torch.set_num_threads(1)
    try:
        report, rows, machine = run(args, device, clock, repeats)
    finally:
        torch.set_num_threads(threads)  # main() may run inside a larger process (the tests)
    print(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "kernels_approx_steps.md").write_text(report)
    write_csv(args.out_dir / "kernels_approx_steps.csv", rows, machine)
    print(f"wrote {args.out_dir / 'kernels_approx_steps.md'} and .csv", file=sys.stderr)
    return 0


def run(args, device: str, clock: str, repeats: int) -> tuple[str, list[Row], dict[str, str]]:
    """Measures everything; returns the markdown report, the rows and the machine description."""
    machine = describe_machine()
    notes = [", ".join(f"{k}: {v}" for k, v in machine.items())]
    if device == "cpu":
        notes.append("No GPU: CPU comparison only. The Triton column is left out: under TRITON_INTERPRET "
                     "the kernel runs in Triton's Python interpreter and its speed means nothing; "
                     "'fused' is the torch reference, the op's CPU path. GPU targets are NOT verified here.")
    if clock == "cpu":
        notes.append("clock: CPU time of the one torch thread (torch.set_num_threads(1)), not wall time: on a "
                     "shared machine a low-priority process's wall time mostly measures the scheduler")
    else:
        notes.append(f"clock: wall time, torch threads: {torch.get_num_threads()}")

    unet, unet_source = load_unet(args.unet_config)
    unet_time, toy_shape = time_unet_call(unet, device, repeats=repeats, clock=clock)
    n_params = sum(p.numel() for p in unet.parameters())
    notes.append(f"cloud UNet: {unet_source}, {n_params / 1e6:.1f} M params, latents {toy_shape}, batch 1: "
                 f"{unet_time.median_s * 1e3:.2f} ms median, {unet_time.min_s * 1e3:.2f} ms min")
    del unet

    copy_gbps = None
    if device == "cuda":
        copy_gbps = copy_bandwidth(256 << 20, repeats=20) / 1e9
        notes.append(f"device copy bandwidth (256 MiB, read + write): {copy_gbps:.0f} GB/s")

    latents = {"default pair": toy_shape, **LATENTS}
    if args.quick:
        latents = {"default pair": toy_shape, "SD-1.x": LATENTS["SD-1.x"]}
    rows = measure(latents, (1,) if args.quick else BATCHES, (1, 4) if args.quick else KS,
                   DTYPES[args.dtype], device, repeats, clock)

    path_method = "triton" if device == "cuda" else "fused"
    for r in rows:
        if r.latent == "default pair" and r.batch == 1:
            step = r.us_per_step[path_method]
            notes.append(f"default pair, k={r.k}: one approximated step ({path_method}) = {step.median_s:.1f} µs "
                         f"median = {100 * step.median_s * 1e-6 / unet_time.median_s:.2f} % of one cloud UNet call "
                         f"(unfused loop: {100 * r.us_per_step['unfused'].median_s * 1e-6 / unet_time.median_s:.2f} %)")

    table = markdown_table(rows, copy_gbps)
    report = "\n".join([f"# approx_steps microbenchmark ({args.dtype}, {repeats} repeats, {clock} clock)", "",
                        *[f"- {n}" for n in notes], "", table, ""])
    return report, rows, machine


if __name__ == "__main__":
    sys.exit(main())
