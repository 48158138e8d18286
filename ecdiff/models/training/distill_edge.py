"""Stage: distil the cloud into the edge on the low-noise steps the edge runs after a handoff.

HybridSD and EC-Diff hand the latent to the edge at step s (30-40 of 50 DDIM steps, t < ~400),
so how close their images come to the cloud's depends on how closely the edge's noise prediction
follows the cloud's there. Regressing the edge onto the cloud's epsilon (same noisy latent,
timestep and caption states, caption dropout included so the guided prediction follows too; plain
MSE, no Min-SNR weighting since the target is no longer the sampled noise) raised SSIM vs cloud
of HybridSD(36) from 0.933 to 0.969 on 8 held-out prompts, while the edge's own layout skill
(high-noise steps, untouched) keeps edge-only generation clearly below the cloud. Runs after both
UNet stages; starts from the shipped edge weights and writes them back.

Broad wordings (issue 19): after `steps` steps on the training templates, `wording_steps` more
steps draw most captions from `ecdiff.toyworld.wordings` (synonyms, word orders, sentence frames
the templates never use), encoded on the fly with the pipeline's own frozen MiniLM
(`text_encoder.encode`, the path the text cache uses), and sample timesteps mostly below
`focus_timestep` (EC-Diff hands off at step 36 of 50, t ~ 261; HybridSD-10 at t ~ 181), so the
edge finishes the cloud's plan on wordings it was never trained on. Caption dropout stays, so the
unconditional prediction (and with it guidance) follows the cloud too.

    python -m ecdiff.models.training.distill_edge --only-wordings   # the wording phase alone, from models/
"""

from __future__ import annotations

import argparse
import copy
import json
import random
from dataclasses import asdict, dataclass

import torch
from diffusers import UNet2DConditionModel
from tqdm import tqdm

from ecdiff.models.text_encoder import encode, load_text_encoder, load_tokenizer
from ecdiff.models.training.architectures import build_scheduler
from ecdiff.models.training.latents import load_latents
from ecdiff.models.training.loop import WallClock, load_checkpoint, save_checkpoint, step_generator
from ecdiff.models.training.paths import cache_dir, models_dir
from ecdiff.models.training.text_cache import load_text_cache
from ecdiff.models.training.train_unet import CLOUD_TRAINING, EDGE_TRAINING, _conditioning, optimise_with_ema
from ecdiff.toyworld import all_scenes
from ecdiff.toyworld.wordings import WordingGenerator


@dataclass(frozen=True)
class DistillConfig:
    steps: int = 800
    batch_size: int = 32
    lr: float = 2e-4  # constant: a short fine-tune from trained weights
    max_timestep: int = 400
    ema_decay: float = 0.995
    seed: int = 7
    checkpoint_every: int = 100
    # The broad-wording phase (issue 19), after the `steps` template steps; off: wording_steps = 0.
    wordings: bool = True
    wording_steps: int = 1500
    wording_prob: float = 0.7  # of the captions not dropped: generated wording, else a training template
    wording_max_timestep: int = 500  # covers HybridSD-25's handoff (t ~ 481) ...
    focus_timestep: int = 300  # ... but most samples below EC-Diff's (step 36 of 50: t ~ 261)
    focus_prob: float = 0.75

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 < self.max_timestep <= 1000 or not 0 <= self.ema_decay <= 1:
            raise ValueError("lr must be > 0, max_timestep in (0, 1000], ema_decay in [0, 1]")
        if self.wording_steps < 0 or not 0 <= self.wording_prob <= 1 or not 0 <= self.focus_prob <= 1:
            raise ValueError("wording_steps must be >= 0, wording_prob and focus_prob in [0, 1]")
        if not 0 < self.focus_timestep <= self.wording_max_timestep <= 1000:
            raise ValueError("need 0 < focus_timestep <= wording_max_timestep <= 1000")

    @property
    def total_steps(self) -> int:
        return self.steps + (self.wording_steps if self.wordings else 0)


def focused_timesteps(n: int, max_timestep: int, focus_timestep: int, focus_prob: float,
                      gen: torch.Generator) -> torch.Tensor:
    """With probability focus_prob uniform on [0, focus_timestep), else uniform on [0, max_timestep)."""
    wide = torch.randint(0, max_timestep, (n,), generator=gen)
    focus = torch.randint(0, focus_timestep, (n,), generator=gen)
    return torch.where(torch.rand(n, generator=gen) < focus_prob, focus, wide)


def distill_loss(student, teacher, scheduler, x0: torch.Tensor, states: torch.Tensor, max_timestep: int,
                 gen: torch.Generator, t: torch.Tensor | None = None) -> torch.Tensor:
    if t is None:
        t = torch.randint(0, max_timestep, (len(x0),), generator=gen)
    noisy = scheduler.add_noise(x0, torch.randn(x0.shape, generator=gen), t)
    with torch.no_grad():
        target = teacher(noisy, t, states).sample
    return (student(noisy, t, states).sample - target).square().mean()


class WordingStates:
    """Caption states for a batch where most captions are generated wordings, encoded on the fly."""

    def __init__(self, config: DistillConfig) -> None:
        self.config = config
        self.tokenizer, self.text_encoder = load_tokenizer(), load_text_encoder()
        self.scenes = all_scenes()

    def __call__(self, scene_ids: torch.Tensor, table: torch.Tensor, empty: torch.Tensor, step: int,
                 gen: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        states = _conditioning(scene_ids, table, empty, EDGE_TRAINING, gen)  # templates + caption dropout
        dropped = (states == empty.float()).flatten(1).all(1)
        use = (torch.rand(len(scene_ids), generator=gen) < self.config.wording_prob) & ~dropped
        words = WordingGenerator(self.config.seed * 1_000_003 + step)
        texts = [words.sample(self.scenes[int(scene_ids[i])]) for i in torch.nonzero(use).flatten()]
        if texts:
            states[use] = encode(texts, self.tokenizer, self.text_encoder).to(torch.float16).float()
        return states, texts


def distill_edge(config: DistillConfig = DistillConfig(), only_wordings: bool = False) -> None:
    """Both phases from the edge stage's weights; `only_wordings`: just the wording phase, from the
    edge already in models/ (its template phase done before)."""
    latents, scene_ids = load_latents()
    table, empty = load_text_cache()
    scheduler = build_scheduler()
    edge_dir = models_dir() / EDGE_TRAINING.name
    student = UNet2DConditionModel.from_pretrained(edge_dir / "unet", torch_dtype=torch.float32)
    teacher = UNet2DConditionModel.from_pretrained(models_dir() / CLOUD_TRAINING.name / "unet",
                                                   torch_dtype=torch.float32).eval().requires_grad_(False)
    ema = copy.deepcopy(student).requires_grad_(False)
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=0.01)
    ckpt = cache_dir() / "toyworld-edge-distill.ckpt"
    clock = WallClock()
    start = load_checkpoint(ckpt, model=student, ema=ema, optimizer=optimizer, clock=clock)
    if only_wordings:
        start = max(start, config.steps)
    wording_states = WordingStates(config) if config.total_steps > config.steps else None
    student.train()
    total = config.total_steps
    bar = tqdm(range(start, total), desc="distil cloud -> edge", initial=start, total=total)
    for step in bar:
        gen = step_generator(config.seed, step)
        idx = torch.randint(0, len(latents), (config.batch_size,), generator=gen)
        if step < config.steps:
            states = _conditioning(scene_ids[idx], table, empty, EDGE_TRAINING, gen)
            loss = distill_loss(student, teacher, scheduler, latents[idx].float(), states, config.max_timestep, gen)
        else:
            states, _ = wording_states(scene_ids[idx], table, empty, step, gen)
            t = focused_timesteps(len(idx), config.wording_max_timestep, config.focus_timestep, config.focus_prob, gen)
            loss = distill_loss(student, teacher, scheduler, latents[idx].float(), states, config.max_timestep, gen, t)
        optimise_with_ema(loss, student, ema, optimizer, step, config.ema_decay)
        bar.set_postfix(loss=f"{loss.item():.5f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == total:
            save_checkpoint(ckpt, step + 1, model=student, ema=ema, optimizer=optimizer, clock=clock)
    ema.to(torch.float16).save_pretrained(edge_dir / "unet", safe_serialization=True)
    meta_path = edge_dir / "training.json"
    meta = json.loads(meta_path.read_text())
    record = {"teacher": CLOUD_TRAINING.name, "config": asdict(config), "wall_time_s": round(clock.elapsed(), 1)}
    if only_wordings:  # the template phase was run before, by an earlier stage; keep its record
        record = {**meta.get("distillation", {}), "teacher": CLOUD_TRAINING.name, "config": asdict(config),
                  "wording_phase_wall_time_s": round(clock.elapsed(), 1), "wording_phase_only": True}
    meta["distillation"] = record
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecdiff.models.training.distill_edge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only-wordings", action="store_true",
                        help="run only the wording phase, from the edge weights in models/")
    parser.add_argument("--wording-steps", type=int, default=DistillConfig.wording_steps)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    distill_edge(DistillConfig(wording_steps=args.wording_steps), only_wordings=args.only_wordings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
