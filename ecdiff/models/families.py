"""Which diffusers pipeline class a model folder is: read from its model_index.json, loaded offline.

A diffusers folder names its pipeline in model_index.json (`_class_name`). The families run here:

- `StableDiffusionPipeline`: SD-1.x (SD-1.4, SD-1.5) and its distilled edges (BK-SDM, Tiny-SD):
  one CLIP text encoder.
- `StableDiffusionXLPipeline`: SDXL-base and its distilled edges (SSD-1B, SSD-vega): two CLIP text
  encoders, pooled embeddings and size/crop time ids as added UNet inputs.
- `CogVideoXPipeline`: CogVideoX-5B and -2B (video): a T5 encoder, a CogVideoXTransformer3DModel
  denoiser on [batch, frames, channels, height, width] latents, the 3-D VAE. CogVideoX 1.5
  (a transformer with `patch_size_t`, which pads the latent frames) is refused.

Any other class is refused with a message naming it and the supported ones. Nothing is downloaded
(local_files_only), and no safety checker is loaded. An SDXL folder loaded in float16 keeps its VAE in
float32 where the VAE's config says `force_upcast` (SDXL-base's does), as StableDiffusionXLPipeline decodes.

A folder whose scheduler is PNDM (SD-1.4, SD-1.5 and BK-SDM ship one) loads with DDIM on the same
noise schedule instead, with a warning: PNDM is a multistep solver, so no handoff could continue
it and EC-Diff and HybridSD would be refused; the papers sample with DDIM (docs/families.md).
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path

import torch
from diffusers import DDIMScheduler, PNDMScheduler

from ecdiff.models.sd_pipeline_class import CogVideoXPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

PIPELINE_CLASSES = {cls.__name__: cls
                    for cls in (StableDiffusionPipeline, StableDiffusionXLPipeline, CogVideoXPipeline)}
# Components a folder may list that the families never load (diffusers takes None for them).
_UNUSED_COMPONENTS = ("safety_checker", "feature_extractor", "image_encoder")

log = logging.getLogger(__name__)


def pipeline_class_name(path: Path) -> str:
    index = path / "model_index.json"
    try:
        name = json.loads(index.read_text()).get("_class_name")
    except (OSError, json.JSONDecodeError) as exc:
        raise OSError(f"{index}: unreadable ({exc})") from exc
    if not isinstance(name, str):
        raise OSError(f"{index} names no pipeline class (_class_name)")
    return name


def load_folder(path: Path, dtype: torch.dtype = torch.float32):
    """The pipeline a diffusers folder describes, in its own class, on the CPU in `dtype`."""
    name = pipeline_class_name(path)
    if name not in PIPELINE_CLASSES:
        raise OSError(f"{path}: pipeline class {name} is not supported; supported: {', '.join(PIPELINE_CLASSES)}")
    cls = PIPELINE_CLASSES[name]
    takes = inspect.signature(cls.__init__).parameters
    unused = {component: None for component in _UNUSED_COMPONENTS if component in takes}
    extra = {"requires_safety_checker": False} if "requires_safety_checker" in takes else {}
    pipe = cls.from_pretrained(path, dtype=dtype, local_files_only=True, **unused, **extra)
    if cls is CogVideoXPipeline and pipe.transformer.config.patch_size_t is not None:
        raise OSError(f"{path}: a CogVideoX 1.5 transformer (patch_size_t={pipe.transformer.config.patch_size_t}) is "
                      "not supported; CogVideoX-2B and -5B folders are")
    if cls is StableDiffusionXLPipeline and dtype == torch.float16 and pipe.vae.config.force_upcast:
        # SDXL-base's VAE overflows in float16 (NaN, black pictures): StableDiffusionXLPipeline decodes in
        # float32 when the VAE's config asks so. Kept float32 for good (decode_images casts the latents to
        # it) rather than cast back and forth per decode, which threads decoding at once would race on.
        pipe.vae.to(torch.float32)
    if isinstance(pipe.scheduler, PNDMScheduler):
        # What docs/families.md's recipe writes into a folder, so a converted peer pairs with this one.
        # clip_sample=False: a PNDM config may lack the key, and DDIM's default clips.
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, clip_sample=False)
        log.warning("%s: its PNDMScheduler is replaced by a DDIMScheduler on the same noise schedule, since no "
                    "handoff continues a multistep solver; convert the folder to DDIM to silence this "
                    "(docs/families.md, \"Schedulers and the handoff\")", path)
    return pipe
