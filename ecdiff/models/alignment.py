"""The trained alignment scorer behind the `ecdiff.metrics.Scorer` protocol, for the benchmarks.

Images arrive as the metrics hold them, float [N, 3, 64, 64] in [0, 1] (8-bit pictures / 255);
`fidelity` rounds them back to uint8 (lossless for such pictures) and asks the scorer which of
the prompt's five attributes it reads; `features` are the scorer's 256-d penultimate activations
(after the trunk's ReLU), the space scorer-FID is computed in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ecdiff.models.scorer import (AttributeScorer, load_scorer as load_attribute_scorer, prompt_fidelity,
                                  wanted_probabilities)


class AlignmentScorer:
    """`features(images) -> [N, D]`, `fidelity(images, prompts) -> points 0..100` (one per image)."""

    def __init__(self, network: AttributeScorer) -> None:
        self.network = network.eval()

    @property
    def feature_dim(self) -> int:
        return self.network.config.hidden

    @staticmethod
    def _check(images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected float images [N, 3, H, W] in [0, 1], got {getattr(images, 'shape', images)!r}")
        return images.detach().to("cpu", torch.float32)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = self._check(images) * 2 - 1  # the scorer reads [-1, 1]
        return self.network.trunk(self.network.features(x))

    def fidelity(self, images: torch.Tensor, prompts: Sequence[str]) -> list[float]:
        return [100.0 * f for f in prompt_fidelity(self.network, self._uint8(images), list(prompts))]

    def attribute_probabilities(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        """[N, 5] float64: the scorer's probability of each attribute value the prompt names (ATTRIBUTES
        order); ValueError for a prompt that names no toy-world scene."""
        return wanted_probabilities(self.network, self._uint8(images), list(prompts))

    def soft_fidelity(self, images: torch.Tensor, prompts: Sequence[str]) -> list[float]:
        """Points 0..100: the mean over the five attributes of the scorer's probability of the prompt's
        value. `fidelity` counts argmax matches (steps of 20 points); this moves with the scorer's
        confidence, so averages over few images are less noisy (DiffusionX's strength labels)."""
        return (100.0 * self.attribute_probabilities(images, prompts).mean(dim=1)).tolist()

    @classmethod
    def _uint8(cls, images: torch.Tensor):
        x = cls._check(images)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def load_scorer(folder: str | Path | None = None) -> AlignmentScorer:
    """The shipped scorer (models/toyworld-scorer), or one saved at `folder`, as a metrics Scorer."""
    return AlignmentScorer(load_attribute_scorer(folder))
