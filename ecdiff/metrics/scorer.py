"""The interface an alignment scorer implements (the trained one lives in ecdiff.models).

The metrics and the benchmarks only know this protocol, so nothing here is tied to one model pair.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class Scorer(Protocol):
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[N, D] float features of images given as float [N, 3, H, W] in [0, 1]."""
        ...

    def fidelity(self, images: torch.Tensor, prompts: Sequence[str]) -> list[float]:
        """Prompt fidelity of each image for its prompt, in points from 0 to 100."""
        ...
