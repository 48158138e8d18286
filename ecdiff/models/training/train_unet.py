"""Stages: train the cloud and the edge UNet on cached latents and caption embeddings.

Epsilon prediction on SD-1.x's noise schedule, Min-SNR loss weighting (gamma 5; converges
several times faster than plain MSE at this budget), caption dropout to the empty-prompt
embedding so classifier-free guidance works, EMA weights shipped. Captions are drawn per sample:
the canonical form with probability `canonical_prob`, otherwise a uniform paraphrase template.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from typing import Optional

import torch
from tqdm import tqdm

from ecdiff.models.training.architectures import CLOUD_UNET_CONFIG, EDGE_UNET_CONFIG, build_scheduler, build_unet
from ecdiff.models.training.latents import load_latents
from ecdiff.models.training.loop import WallClock, load_checkpoint, lr_at, save_checkpoint, step_generator
from ecdiff.models.training.paths import cache_dir, models_dir
from ecdiff.models.training.text_cache import load_text_cache

_ARCHITECTURES = {"cloud": CLOUD_UNET_CONFIG, "edge": EDGE_UNET_CONFIG}


@dataclass(frozen=True)
class UNetTrainConfig:
    name: str
    architecture: str
    steps: int
    batch_size: int = 32
    peak_lr: float = 6e-4
    warmup_steps: int = 100
    caption_dropout: float = 0.1
    canonical_prob: float = 0.4
    ema_decay: float = 0.998
    min_snr_gamma: float = 5.0
    seed: int = 0
    checkpoint_every: int = 100
    # From `late_from_step` on, train only on timesteps below `late_max_timestep`: the low-noise
    # steps the edge runs after a handoff (DDIM step 30 of 50 is t ~ 400), so HybridSD/EC-Diff
    # finish closer to the cloud while the edge's own layout (high-noise) skill stays as it was.
    late_from_step: Optional[int] = None
    late_max_timestep: int = 1000

    def __post_init__(self) -> None:
        if self.architecture not in _ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(_ARCHITECTURES)}, got {self.architecture!r}")
        for name in ("steps", "batch_size", "warmup_steps", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("caption_dropout", "canonical_prob", "ema_decay"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.peak_lr <= 0 or self.min_snr_gamma <= 0:
            raise ValueError("peak_lr and min_snr_gamma must be > 0")
        if self.late_from_step is not None and not 0 <= self.late_from_step < self.steps:
            raise ValueError(f"late_from_step must be in [0, steps), got {self.late_from_step}")
        if not 0 < self.late_max_timestep <= 1000:
            raise ValueError(f"late_max_timestep must be in (0, 1000], got {self.late_max_timestep}")

    def max_timestep(self, step: int, num_train_timesteps: int) -> int:
        late = self.late_from_step is not None and step >= self.late_from_step
        return min(self.late_max_timestep, num_train_timesteps) if late else num_train_timesteps


CLOUD_TRAINING = UNetTrainConfig(name="toyworld-cloud", architecture="cloud", steps=3900)
EDGE_TRAINING = UNetTrainConfig(name="toyworld-edge", architecture="edge", steps=2600, seed=1,
                                late_from_step=1100, late_max_timestep=400)


def _conditioning(scene_ids: torch.Tensor, table: torch.Tensor, empty: torch.Tensor,
                  config: UNetTrainConfig, gen: torch.Generator) -> torch.Tensor:
    n = len(scene_ids)
    paraphrase = torch.randint(1, table.shape[1], (n,), generator=gen)
    template = torch.where(torch.rand(n, generator=gen) < config.canonical_prob, 0, paraphrase)
    states = table[scene_ids, template].float()
    drop = torch.rand(n, generator=gen) < config.caption_dropout
    return torch.where(drop[:, None, None], empty.float(), states)


def diffusion_loss(unet, scheduler, x0: torch.Tensor, states: torch.Tensor, gamma: float, gen: torch.Generator,
                   max_timestep: int) -> torch.Tensor:
    t = torch.randint(0, max_timestep, (len(x0),), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    noisy = scheduler.add_noise(x0, noise, t)
    eps = unet(noisy, t, states).sample
    alpha_bar = scheduler.alphas_cumprod[t]
    snr = alpha_bar / (1 - alpha_bar)
    weight = torch.clamp(snr, max=gamma) / snr  # Min-SNR-gamma for epsilon prediction
    return (weight * (eps - noise).square().mean((1, 2, 3))).mean()


@torch.no_grad()
def _ema_update(ema, model, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)


def optimise_with_ema(loss: torch.Tensor, model, ema, optimizer, step: int, ema_decay: float) -> None:
    """Backward, clip to norm 1, step, then the EMA update (shared by training and distillation)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    # EMA warms up so early steps are not frozen into the average of a short run.
    _ema_update(ema, model, min(ema_decay, (1 + step) / (10 + step)))


def train_unet(config: UNetTrainConfig) -> None:
    torch.manual_seed(config.seed)
    latents, scene_ids = load_latents()
    table, empty = load_text_cache()
    scheduler = build_scheduler()
    unet = build_unet(_ARCHITECTURES[config.architecture])
    ema = copy.deepcopy(unet).requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.peak_lr, weight_decay=0.01)
    ckpt = cache_dir() / f"{config.name}.ckpt"
    clock = WallClock()
    start = load_checkpoint(ckpt, model=unet, ema=ema, optimizer=optimizer, clock=clock)
    unet.train()
    bar = tqdm(range(start, config.steps), desc=f"train {config.name}", initial=start, total=config.steps)
    for step in bar:
        gen = step_generator(config.seed, step)
        idx = torch.randint(0, len(latents), (config.batch_size,), generator=gen)
        states = _conditioning(scene_ids[idx], table, empty, config, gen)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.steps, config.peak_lr, config.warmup_steps)
        max_t = config.max_timestep(step, scheduler.config.num_train_timesteps)
        loss = diffusion_loss(unet, scheduler, latents[idx].float(), states, config.min_snr_gamma, gen, max_t)
        optimise_with_ema(loss, unet, ema, optimizer, step, config.ema_decay)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            save_checkpoint(ckpt, step + 1, model=unet, ema=ema, optimizer=optimizer, clock=clock)
    _ship(ema, scheduler, config, clock.elapsed(), len(latents))


def _ship(ema, scheduler, config: UNetTrainConfig, wall_s: float, dataset_size: int) -> None:
    out = models_dir() / config.name
    ema.to(torch.float16).save_pretrained(out / "unet", safe_serialization=True)
    scheduler.save_pretrained(out / "scheduler")
    meta = {"stage": config.name, "config": asdict(config), "wall_time_s": round(wall_s, 1),
            "parameters": sum(p.numel() for p in ema.parameters()), "latent_dataset_size": dataset_size}
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
