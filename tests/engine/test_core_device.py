"""The engine's batched path reads nothing back from the device per iteration (see
tests/core/test_sampling_device.py for the meta-device argument)."""

import queue
from types import SimpleNamespace

import torch

from ecdiff.conditioning import Conditioning
from ecdiff.denoiser import BoundDenoiser, UNetDenoiser
from ecdiff.engine.core import DenoisingEngine
from ecdiff.engine.work import EngineResult, EngineWork
from ecdiff.preparation import PreparedRun
from ecdiff.schedules import sd_ddim_scheduler
from ecdiff.strategies import CloudOnly, ECDiff, HybridSD


class MetaUNet:
    """A UNet stand-in whose outputs have no values (a device nobody may read)."""

    config = SimpleNamespace(time_cond_proj_dim=None)

    def __init__(self):
        self.calls = []

    def __call__(self, latents, timesteps, encoder_hidden_states, return_dict=False):
        self.calls.append(latents.shape[0])
        return (torch.zeros_like(latents),)


def meta_run(unet, strategy, num_steps, guidance):
    embeds = torch.empty(1, 4, 8, device="meta")
    conditioning = Conditioning(embeds, torch.empty_like(embeds), (guidance,))
    latents = torch.empty(1, 4, 8, 8, device="meta")
    return PreparedRun(strategy, num_steps, 0, sd_ddim_scheduler(), latents,
                       BoundDenoiser(UNetDenoiser(unet), conditioning), None)


def test_batched_iterations_on_meta_tensors():
    unet = MetaUNet()
    engine = DenoisingEngine(unet)
    ends = queue.Queue()
    try:
        runs = [meta_run(unet, ECDiff(3, 2, 0.4, 12), 16, 3.0), meta_run(unet, CloudOnly(), 10, 7.0),
                meta_run(unet, HybridSD(6), 12, 1.0)]
        for run in runs:
            engine.submit(EngineWork(run, run.strategy.handoff_step(run.num_steps), lambda *_: None, ends.put))
        results = [ends.get(timeout=60) for _ in runs]
    finally:
        engine.close()
    assert all(isinstance(r, EngineResult) for r in results), results
    assert {r.state.latents.device.type for r in results} == {"meta"}
    assert max(unet.calls) > 2  # requests shared UNet calls (each guided sample brings two rows)
