"""Microbenchmark of what the extrapolation rules add to a step: ecdiff.kernels.fit_gradient (a
real call's increment and curvature from the last real noises) and approx_steps_curved (k
approximated steps whose increment changes), against the plain torch ops they replace and against
approx_steps (the paper's and the constant-increment rules' approximated run).

Columns, per latent shape x batch (times per call, µs, median / min over repeats):
  fit unfused / fit fused     the quadratic rule's delta and curvature over three noises: torch ops
                              one by one, or one fit_gradient call (the torch reference here;
                              Triton on CUDA)
  run k=K unfused / curved / constant   K approximated steps: the plain loop with a curvature, one
                              approx_steps_curved call, one approx_steps call (no curvature)
Without a GPU the Triton kernels are not timed (under TRITON_INTERPRET their speed means nothing).

Run: python -m ecdiff.bench.kernels.rules_bench [--quick]   (make bench-kernels runs it after approx_steps_bench)
"""

from __future__ import annotations

import sys
from typing import Optional

import torch

from ecdiff.kernels import approx_steps, approx_steps_curved, fit_gradient

from .cloud_unet import load_unet, time_unet_call
from .machine import describe_machine
from .options import parse_bench_args
from .timing import time_call

LATENTS = {"SD-1.x": (4, 64, 64), "SDXL": (4, 128, 128)}
KS = (2, 4)
# the quadratic rule's weights at real calls 11, 8, 6 with beta 0.5 (any weights cost the same)
SLOPE, CURVATURE = (0.45, -0.3333, 0.0583), (0.05, -0.1333, 0.0833)


def unfused_fit(noises):
    delta = SLOPE[0] * noises[0] + SLOPE[1] * noises[1] + SLOPE[2] * noises[2]
    curvature = CURVATURE[0] * noises[0] + CURVATURE[1] * noises[1] + CURVATURE[2] * noises[2]
    return delta, curvature


def unfused_run(x, eps, delta, curvature, f: list[float], g: list[float]):
    for fj, gj in zip(f, g):
        delta = delta + curvature
        eps = eps + delta
        x = fj * x - gj * eps
    return x, eps, delta


def measure(shape, device: str, repeats: int, clock: str, backend: str) -> dict[str, tuple[float, float]]:
    """{column: (median µs, min µs)} for one latent shape."""
    gen = torch.Generator().manual_seed(0)
    x, eps, delta, curvature, e1, e2 = (torch.randn(shape, generator=gen).to(device) for _ in range(6))
    cuda = device == "cuda"
    calls = {"fit unfused": lambda: unfused_fit((eps, e1, e2)),
             "fit fused": lambda: fit_gradient((eps, e1, e2), SLOPE, CURVATURE, backend=backend)}
    for k in KS:
        f = 1.0 + 0.05 * torch.rand(k, generator=gen, dtype=torch.float64)
        g = 0.2 * torch.rand(k, generator=gen, dtype=torch.float64)
        f_list, g_list = f.tolist(), g.tolist()
        calls[f"run k={k} unfused"] = lambda f_list=f_list, g_list=g_list: unfused_run(x, eps, delta, curvature,
                                                                                         f_list, g_list)
        calls[f"run k={k} curved"] = lambda f=f, g=g: approx_steps_curved(x, eps, delta, curvature, f, g,
                                                                          backend=backend)
        calls[f"run k={k} constant"] = lambda f=f, g=g: approx_steps(x, eps, delta, f, g, backend=backend)
    out = {}
    for name, fn in calls.items():
        t = time_call(fn, repeats, cuda=cuda, clock=clock)
        out[name] = (t.median_s * 1e6, t.min_s * 1e6)
    return out


def parse_args(argv):
    return parse_bench_args(__doc__.splitlines()[0], argv, quick_help="smoke run: the default pair's latent, batch 1, "
                            "3 repeats", default_repeats=15, outputs="kernels_rules.md")


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    clock, backend = ("wall", "triton") if device == "cuda" else ("cpu", "torch")
    repeats = 3 if args.quick else args.repeats
    threads = torch.get_num_threads()
    if clock == "cpu":
        torch.set_num_threads(1)  # the CPU clock measures the op's cost only single-threaded (timing.py)
    try:
        unet, unet_source = load_unet(args.unet_config)
        unet_time, toy_shape = time_unet_call(unet, device, repeats=repeats, clock=clock)
        del unet
        latents = {"default pair": toy_shape} if args.quick else {"default pair": toy_shape, **LATENTS}
        batches = (1,) if args.quick else (1, 8)
        rows = [(name, batch, measure((batch, *shape), device, repeats, clock, backend))
                for name, shape in latents.items() for batch in batches]
        machine = ", ".join(f"{k}: {v}" for k, v in describe_machine().items())  # with the threads measured
    finally:
        torch.set_num_threads(threads)  # main() may run inside a larger process (the tests)
    columns = list(rows[0][2])
    lines = [f"# extrapolation-rule kernels ({repeats} repeats, {clock} clock, {backend} backend)", "",
             f"- {machine}",
             f"- cloud UNet: {unet_source}, batch 1: {unet_time.median_s * 1e6:.0f} µs median",
             "- µs per call, median / min; fused = " + ("Triton" if backend == "triton" else
                                                       "the torch reference (no GPU: Triton not timed)"), "",
             "| latent | batch | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for name, batch, times in rows:
        lines.append(f"| {name} | {batch} | " + " | ".join(f"{m:.1f} / {n:.1f}" for m, n in times.values()) + " |")
    fit = rows[0][2]["fit fused"][0]
    lines += ["", f"default pair, batch 1: one fit_gradient call = {100 * fit * 1e-6 / unet_time.median_s:.2f} % "
              "of one cloud UNet call (added to every real call of the lsq and quadratic rules)", ""]
    report = "\n".join(lines)
    print(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "kernels_rules.md").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
