"""The alignment scorer behind the `ecdiff.metrics.Scorer` protocol, and the toy world's image encoder.

`features` are the scorer's penultimate activations (the trunk's 256-d output, before the
attribute heads): the toy world's stand-in for a CLIP image embedding, used by scorer-FID and by
DiffusionX's cloud strength predictor. `fidelity` is `prompt_fidelity` in points (0..100).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ecdiff.models.scorer import AttributeScorer, load_scorer, prompt_fidelity


class AlignmentScorer:
    def __init__(self, scorer: AttributeScorer) -> None:
        self.scorer = scorer.eval()

    @property
    def feature_dim(self) -> int:
        return self.scorer.config.hidden

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[N, hidden] penultimate features of float [N, 3, 64, 64] images in [0, 1]."""
        x = images.to(torch.float32) * 2.0 - 1.0
        return self.scorer.trunk(self.scorer.features(x))

    def fidelity(self, images: torch.Tensor, prompts: Sequence[str]) -> list[float]:
        # The scorer reads the saved 8-bit picture, as every other metric does.
        uint8 = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [100.0 * f for f in prompt_fidelity(self.scorer, list(uint8), list(prompts))]


def load_alignment_scorer(folder: str | Path | None = None) -> AlignmentScorer:
    return AlignmentScorer(load_scorer(folder))
