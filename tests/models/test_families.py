"""`ecdiff.models.families`: a folder with a PNDM scheduler (as SD-1.4, SD-1.5 and BK-SDM ship)
loads with DDIM on the same noise schedule, as the documented conversion of the folder would; an
SDXL folder loaded in float16 keeps the VAE its config marks `force_upcast` in float32."""

import json
import logging
import shutil

import torch
from diffusers import DDIMScheduler

from ecdiff.models import load_pipeline
from ecdiff.preparation import prepare_run
from ecdiff.schedules import SD_DDIM_CONFIG, handoff_unsupported_reason
from ecdiff.strategies import ECDiff
from support.one_thread import one_torch_thread  # noqa: F401  (autouse fixture)

# SD-1.4's scheduler/scheduler_config.json, less `clip_sample`, which PNDM never reads and a folder
# may lack (DDIM's default for it clips).
SD_PNDM_CONFIG = {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False,
                  "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None}


def name_scheduler(folder, class_name):
    index = folder / "model_index.json"
    data = json.loads(index.read_text())
    data["scheduler"] = ["diffusers", class_name]
    index.write_text(json.dumps(data, indent=2))


def pndm_copy(source, folder):
    shutil.copytree(source, folder)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD_PNDM_CONFIG))
    name_scheduler(folder, "PNDMScheduler")
    return folder


def own_keys(config):
    return {k: v for k, v in dict(config).items() if not k.startswith("_")}  # "_": diffusers' bookkeeping


def test_a_pndm_folder_loads_with_ddim_as_the_documented_conversion_would(family_folders, tmp_path, caplog):
    pndm = {role: pndm_copy(path, tmp_path / f"pndm-{role}") for role, path in family_folders["sd1"].items()}
    converted = {role: pndm_copy(path, tmp_path / f"converted-{role}") for role, path in family_folders["sd1"].items()}
    for folder in converted.values():  # the recipe in docs/families.md, "Schedulers and the handoff"
        DDIMScheduler.from_pretrained(folder, subfolder="scheduler", clip_sample=False).save_pretrained(folder / "scheduler")
        name_scheduler(folder, "DDIMScheduler")

    with caplog.at_level(logging.WARNING, logger="ecdiff.models.families"):
        swapped = {role: load_pipeline(folder) for role, folder in pndm.items()}
    warned = [r.getMessage() for r in caplog.records if "PNDMScheduler is replaced by a DDIMScheduler" in r.getMessage()]
    assert len(warned) == 2 and str(pndm["cloud"]) in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ecdiff.models.families"):
        reference = {role: load_pipeline(folder) for role, folder in converted.items()}
    assert not caplog.records  # a DDIM folder loads as it is

    scheduler = swapped["cloud"].scheduler
    assert type(scheduler) is DDIMScheduler and scheduler.config.clip_sample is False
    assert {key: scheduler.config[key] for key in SD_DDIM_CONFIG} == SD_DDIM_CONFIG  # SD-1.x's DDIM settings
    # The same configuration as a converted folder, so a converted peer's handoff identity matches.
    assert own_keys(scheduler.config) == own_keys(reference["cloud"].scheduler.config)
    assert handoff_unsupported_reason(scheduler) is None  # EC-Diff and HybridSD are served
    run = dict(prompts="a red circle", num_steps=5, guidance=7.0, seeds=3)
    ours = prepare_run(ECDiff(2, 1, 0.5, 4), cloud=swapped["cloud"], edge=swapped["edge"], **run).sample()
    theirs = prepare_run(ECDiff(2, 1, 0.5, 4), cloud=reference["cloud"], edge=reference["edge"], **run).sample()
    assert torch.equal(ours.latents, theirs.latents)


def test_an_sdxl_vae_marked_force_upcast_stays_float32_in_a_float16_pipeline(family_folders, tmp_path):
    # SDXL-base's VAE overflows in float16 (NaN, black pictures): StableDiffusionXLPipeline decodes
    # in float32 when the VAE's config says force_upcast, as SDXL-base's does; the fp16-fix VAEs say false.
    for force_upcast in (True, False):
        folder = shutil.copytree(family_folders["sdxl"]["cloud"], tmp_path / f"sdxl-{force_upcast}")
        config = json.loads((folder / "vae" / "config.json").read_text())
        (folder / "vae" / "config.json").write_text(json.dumps({**config, "force_upcast": force_upcast}))
        pipe = load_pipeline(folder, dtype=torch.float16, device="cpu")
        assert pipe.unet.dtype == torch.float16
        assert pipe.vae.dtype == (torch.float32 if force_upcast else torch.float16)
    sd1 = load_pipeline(family_folders["sd1"]["cloud"], dtype=torch.float16, device="cpu")
    assert sd1.vae.dtype == torch.float16  # StableDiffusionPipeline never upcasts: SD-1.x's VAE is fine in float16
