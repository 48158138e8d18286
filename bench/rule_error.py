"""`ecdiff bench rule-error`: per-step latent error of each extrapolation rule against cloud-only
(EC-Diff's Figure 5, one curve per rule), for one or more k.

The cloud phase runs over every step (s = T, no edge), so the error is the approximation's alone:
for each prompt and seed, the latent entering each step i = 1..T, x_i, is compared with cloud-only's
x_i^cloud of the same prompt and seed: e_i = ||x_i - x_i^cloud|| / ||x_i^cloud|| (L2 over the
latent), averaged over the prompts. The run is stopped after every step to read x_i, inside the
approximated runs too (the sampler's state resumes anywhere; the fused runs are then one step
long, which changes only the rounding). The final picture's SSIM against cloud-only's is recorded
beside it, the quantity the search scores.

A variant is RULE:DAMPING (`paper:0.4` is the paper's rule with alpha 0.4, `slope:0.1` the slope
rule with beta 0.1). Writes rule_error.csv (k, variant, step, mean error, spread), ssim.csv
(k, variant, mean SSIM, cloud calls) and one rule_error_k<K>.png per k (log10 of the mean error, from step p + 1, the first latent the
approximation reaches).
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ecdiff.cli_options import pair_from_args
from ecdiff.images import decode_images
from ecdiff.metrics import ssim, stack_images
from ecdiff.preparation import prepare_run
from ecdiff.search.chart import PALETTE, Chart
from ecdiff.search.prompts import add_prompt_arguments, read_prompts
from ecdiff.strategies import RULES, CloudOnly, ECDiff, PlanCounts


@dataclass(frozen=True)
class Variant:
    rule: str
    damping: float  # alpha for the paper's rule, beta for the others

    @classmethod
    def parse(cls, text: str) -> "Variant":
        rule, sep, value = text.partition(":")
        if not sep or rule not in RULES:
            raise ValueError(f"a variant is RULE:DAMPING with RULE one of {', '.join(RULES)}, got {text!r}")
        try:
            return cls(rule, float(value))
        except ValueError:
            raise ValueError(f"variant {text!r}: the damping must be a number") from None

    def strategy(self, pre_steps: int, k: int, num_steps: int) -> ECDiff:
        if self.rule == "paper":
            return ECDiff(pre_steps, k, self.damping, num_steps)
        return ECDiff(pre_steps, k, 0.0, num_steps, rule=self.rule, beta=self.damping)

    def __str__(self) -> str:
        return f"{self.rule}:{self.damping:g}"


def trajectory(run) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(the latent entering each step 1..T, the final latent) of a prepared run."""
    sampler = run.sampler()
    state, latents = run.initial_state(), []
    for stop in range(1, run.num_steps + 1):
        state = sampler.run(state, stop)
        latents.append(state.latents.double())
    return latents, state.latents


def measure(pair, items, num_steps: int, pre_steps: int, ks: list[int], variants: list[Variant]):
    """{(k, variant): (per-step errors per prompt, SSIM per prompt)} and the plan's cloud calls."""
    errors = {(k, v): [] for k in ks for v in variants}
    pictures = {(k, v): [] for k in ks for v in variants}
    reference_pictures = []
    for item in tqdm(items, desc="rule error", unit="prompt"):
        def run_of(strategy):
            return prepare_run(strategy, prompts=item.prompt, num_steps=num_steps, guidance=pair.guidance,
                               cloud=pair.cloud, seeds=item.seed, scheduler="ddim")

        reference, final = trajectory(run_of(CloudOnly()))
        reference_pictures.append(decode_images(pair.cloud, final)[0])
        for k in ks:
            for v in variants:
                latents, final = trajectory(run_of(v.strategy(pre_steps, k, num_steps)))
                errors[k, v].append([float((x - x_ref).norm() / x_ref.norm()) for x, x_ref in zip(latents, reference)])
                pictures[k, v].append(decode_images(pair.cloud, final)[0])
    reference_stack = stack_images(reference_pictures)
    scores = {key: ssim(stack_images(images), reference_stack).tolist() for key, images in pictures.items()}
    return errors, scores


def write(out: Path, errors, scores, ks, variants, pre_steps: int, num_steps: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "rule_error.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["k", "variant", "step", "mean_rel_error", "std_rel_error"])
        for (k, v), per_prompt in errors.items():
            for i, column in enumerate(zip(*per_prompt), start=1):
                w.writerow([k, v, i, f"{statistics.fmean(column):.6g}", f"{statistics.pstdev(column):.6g}"])
    with open(out / "ssim.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["k", "variant", "mean_ssim", "min_ssim", "cloud_calls"])
        for (k, v), values in scores.items():
            calls = PlanCounts.of(v.strategy(pre_steps, k, num_steps).plan(num_steps)).cloud
            w.writerow([k, v, f"{statistics.fmean(values):.4f}", f"{min(values):.4f}", calls])
    # the latents entering steps 1..p equal cloud-only's: the chart starts where the approximation does
    steps = list(range(pre_steps + 1, num_steps + 1))
    for k in ks:
        curves = {v: [math.log10(max(statistics.fmean(c), 1e-12)) for c in list(zip(*errors[k, v]))[pre_steps:]]
                  for v in variants}
        chart = Chart(steps, [y for ys in curves.values() for y in ys],
                      f"Latent error against cloud-only, p {pre_steps}, k {k}, cloud phase over all {num_steps} steps",
                      "step i (latent entering it)", "log10 mean ||x_i - x_i^cloud|| / ||x_i^cloud||")
        for n, (v, ys) in enumerate(curves.items()):
            chart.line(steps, ys, PALETTE[n % len(PALETTE)], f"{v}: SSIM {statistics.fmean(scores[k, v]):.4f}")
        chart.save(out / f"rule_error_k{k}.png")


def add_arguments(parser) -> None:
    add_prompt_arguments(parser)
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (default: 50)")
    parser.add_argument("--pre-steps", type=int, default=7, help="EC-Diff p (default: 7)")
    parser.add_argument("--k", type=int, nargs="+", default=[2, 3, 4, 5], help="k values, one chart each (default: 2 3 4 5)")
    parser.add_argument("--variant", dest="variants", action="append", type=Variant.parse, metavar="RULE:DAMPING",
                        help="a rule and its damping (alpha for paper, else beta); repeat for more (default: "
                             "paper:0.4, paper:0, slope:0.3, lsq:0.3, quadratic:0.3)")
    parser.add_argument("--out", type=Path, default=Path("out/bench-rule-error"),
                        help="output folder (default: out/bench-rule-error)")


DEFAULT_VARIANTS = ("paper:0.4", "paper:0", "slope:0.3", "lsq:0.3", "quadratic:0.3")


def run(args) -> int:
    try:
        variants = args.variants or [Variant.parse(v) for v in DEFAULT_VARIANTS]
        for k in args.k:
            for v in variants:
                v.strategy(args.pre_steps, k, args.steps).plan(args.steps)  # validates p, k, the damping, T
        items = read_prompts(args.prompts, args.seed)
        pair = pair_from_args(args)
    except ValueError as exc:
        print(f"ecdiff bench rule-error: error: {exc}", file=sys.stderr)
        return 2
    errors, scores = measure(pair, items, args.steps, args.pre_steps, args.k, variants)
    write(args.out, errors, scores, args.k, variants, args.pre_steps, args.steps)
    for (k, v), values in scores.items():
        print(f"k {k} {v}: SSIM {statistics.fmean(values):.4f}")
    print(f"wrote {args.out}/rule_error.csv, ssim.csv and rule_error_k*.png")
    return 0
