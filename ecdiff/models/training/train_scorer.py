"""Stage: train the alignment scorer on jittered renders (its own seed, so VAE data stays unseen).

Mild augmentation (Gaussian noise, occasional 3x3 blur, tiny colour shift) keeps it from
flipping on decoder artefacts; the colour shift stays far below the gap between palette colours,
so it still tells yellow from orange.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ecdiff.models.scorer import SCORER_DIR_NAME, AttributeScorer, read_attributes
from ecdiff.models.training.data import to_unit_range, training_renders
from ecdiff.models.training.loop import lr_at, step_generator
from ecdiff.models.training.paths import models_dir
from ecdiff.toyworld import ATTRIBUTES, Jitter, all_scenes, render_batch


@dataclass(frozen=True)
class ScorerTrainConfig:
    steps: int = 1500
    batch_size: int = 64
    peak_lr: float = 2e-3
    warmup_steps: int = 100
    dataset_size: int = 20000
    noise_std: float = 0.06
    color_shift: float = 0.03
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "warmup_steps", "dataset_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.peak_lr <= 0 or self.noise_std < 0 or self.color_shift < 0:
            raise ValueError("peak_lr must be > 0; noise_std and color_shift must be >= 0")


def _augment(x: torch.Tensor, config: ScorerTrainConfig, gen: torch.Generator) -> torch.Tensor:
    n = len(x)
    blur = torch.rand(n, generator=gen) < 0.3
    x = torch.where(blur[:, None, None, None], F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False), x)
    x = x + (torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1) * config.color_shift
    x = x + torch.randn(x.shape, generator=gen) * config.noise_std * torch.rand(n, 1, 1, 1, generator=gen)
    return x


def train_scorer(config: ScorerTrainConfig = ScorerTrainConfig()) -> None:
    torch.manual_seed(config.seed)
    images, labels = training_renders(config.dataset_size, config.seed)
    scorer = AttributeScorer()
    optimizer = torch.optim.AdamW(scorer.parameters(), lr=config.peak_lr, weight_decay=1e-4)
    t0 = time.time()
    scorer.train()
    for step in (bar := tqdm(range(config.steps), desc="train scorer")):
        gen = step_generator(config.seed, step)
        idx = torch.randint(0, len(images), (config.batch_size,), generator=gen)
        logits = scorer(_augment(to_unit_range(images[idx]), config, gen))
        loss = sum(F.cross_entropy(logits[name], labels[idx, i]) for i, name in enumerate(ATTRIBUTES))
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.steps, config.peak_lr, config.warmup_steps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    scorer.eval()
    # Held out: the exact (unjittered) render of every scene, and fresh jittered renders.
    scenes = all_scenes()
    accuracy = {"exact_renders": _accuracy(scorer, render_batch(scenes, seed=0), scenes)}
    accuracy["fresh_jittered_renders"] = _accuracy(scorer, render_batch(scenes, seed=12345, jitter=Jitter()), scenes)
    out = models_dir() / SCORER_DIR_NAME
    scorer.save(out)
    meta = {"stage": "scorer", "config": asdict(config), "wall_time_s": round(time.time() - t0, 1), "accuracy": accuracy}
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(accuracy, indent=2))


def _accuracy(scorer: AttributeScorer, images, scenes) -> dict[str, float]:
    read = read_attributes(scorer, images)
    return {name: sum(getattr(r, name) == getattr(s, name) for r, s in zip(read, scenes)) / len(scenes) for name in ATTRIBUTES}
