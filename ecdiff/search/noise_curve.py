"""The noise-difference curve (EC-Diff Figure 3) and the rule that proposes p from it.

For each prompt and seed, cloud-only sampling records the predicted noise eps_i at every step and
d_i = ||eps_i - eps_(i-1)||_2 (L2 norm over the whole latent of one image), i = 1..T-1. The curve
is the mean of d_i over the prompt set, with its standard deviation as the spread.

Rule for p: the first gradient EC-Diff uses is eps_(p-1) - eps_(p-2), i.e. d_(p-1), so that
difference should already lie in the flat part of the curve. With m_i the mean curve over
i = 1..T-1 and lo, hi its minimum and maximum,
    i* = min { i >= 1 : m_i <= lo + fraction * (hi - lo) }    (fraction = 0.1 by default)
    p  = i* + 1   (>= 2, as EC-Diff needs).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Sequence

from tqdm import tqdm

from ..loading import ModelPair
from ..preparation import prepare_run
from ..sampling import sample
from ..strategies import CloudOnly
from .chart import PALETTE, Chart
from .prompts import PromptItem


@dataclass(frozen=True)
class NoiseCurve:
    steps: list[int]  # i = 1..T-1
    mean: list[float]
    std: list[float]
    per_prompt: list[list[float]]

    def as_dict(self) -> dict:
        return asdict(self)


def noise_differences(pair: ModelPair, items: Sequence[PromptItem], num_steps: int, progress: bool = True) -> NoiseCurve:
    if num_steps < 3:
        raise ValueError(f"the noise curve needs at least 3 steps, got {num_steps}")
    if pair.cloud.scheduler.config.prediction_type != "epsilon":
        raise ValueError("the noise curve is defined on predicted noise; this cloud model does not predict epsilon")
    per_prompt = []
    for item in tqdm(items, desc="noise curve", unit="prompt", disable=not progress):
        run = prepare_run(CloudOnly(), prompts=item.prompt, num_steps=num_steps, guidance=pair.guidance,
                          cloud=pair.cloud, seeds=item.seed, scheduler="ddim")
        recorded = []

        def recording(x, t):
            eps = run.cloud(x, t)
            recorded.append(eps.double())
            return eps

        sample(run.strategy, run.scheduler, recording, None, run.latents, num_steps=num_steps)
        per_prompt.append([float((recorded[i] - recorded[i - 1]).norm()) for i in range(1, num_steps)])
    columns = list(zip(*per_prompt))
    return NoiseCurve(
        steps=list(range(1, num_steps)),
        mean=[statistics.fmean(c) for c in columns],
        std=[statistics.pstdev(c) for c in columns],
        per_prompt=per_prompt,
    )


def propose_p(curve: NoiseCurve, fraction: float = 0.1) -> int:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    lo, hi = min(curve.mean), max(curve.mean)
    threshold = lo + fraction * (hi - lo)
    first = next(step for step, m in zip(curve.steps, curve.mean) if m <= threshold)
    return first + 1


def plot_curve(curve: NoiseCurve, p: int, path, title: str) -> None:
    lo = [m - s for m, s in zip(curve.mean, curve.std)]
    hi = [m + s for m, s in zip(curve.mean, curve.std)]
    chart = Chart(curve.steps, lo + hi, title, "step i", "||eps_i - eps_(i-1)||")
    chart.band(curve.steps, lo, hi, PALETTE[0])
    chart.line(curve.steps, curve.mean, PALETTE[0], "mean over prompts (band: +-1 std)")
    chart.vline(p - 1, PALETTE[1], f"d_(p-1), proposed p = {p}")
    chart.save(path)
