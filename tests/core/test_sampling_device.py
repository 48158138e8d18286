"""No per-step host synchronisation: the loop never reads a latent, a noise or a timestep back.

Latents on PyTorch's `meta` device have shapes but no values, so any `.item()`, `int()`, `float()`,
`.tolist()`, `.cpu()` or `.numpy()` of them raises: a loop that completes on meta tensors reads
nothing back from the device per step, which is what keeps a GPU's queue full. The host tables
(timesteps, DDIM coefficients) are read once, when the run is prepared. On a real GPU the same
property is checked with `torch.cuda.set_sync_debug_mode("error")` (last test; skipped here).
"""

import time

import pytest
import torch

from ecdiff.sampling import sample, step_clock
from ecdiff.schedules import sd_ddim_scheduler
from ecdiff.strategies import CloudOnly, ECDiff, EdgeOnly, HybridSD

STRATEGIES = [ECDiff(pre_steps=4, k=2, alpha=0.4, switch_step=14), ECDiff(4, 3, 0.5, 20, corrections=2),
              HybridSD(8), CloudOnly(), EdgeOnly()]


def zero_noise(latents, timestep):
    assert timestep.device == latents.device  # timesteps live with the latents: no per-step transfer
    return torch.zeros_like(latents)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_the_loop_runs_on_latents_it_cannot_read(strategy):
    x = torch.empty(2, 4, 8, 8, device="meta")
    result = sample(strategy, sd_ddim_scheduler(), zero_noise, zero_noise, x, num_steps=20)
    assert result.latents.device.type == "meta" and len(result.steps) == 20
    assert [r.timestep for r in result.steps] == list(range(951, -1, -50))  # from the host table


def test_reading_a_latent_back_would_be_caught():
    with pytest.raises((NotImplementedError, RuntimeError)):
        torch.empty(1, device="meta").item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_no_synchronisation_on_cuda(strategy):
    x = torch.randn(2, 4, 64, 64, device="cuda")
    scheduler = sd_ddim_scheduler()
    sample(strategy, scheduler, zero_noise, zero_noise, x, num_steps=20)  # warm-up: Triton compiles
    from ecdiff.sampling import Sampler

    sampler = Sampler(strategy, scheduler, zero_noise, zero_noise, num_steps=20, device=x.device)
    state = sampler.initial_state(x)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        sampler.run(state)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_only_a_timing_run_on_cuda_waits_for_the_device(monkeypatch):
    waits = []
    monkeypatch.setattr(torch.cuda, "synchronize", waits.append)
    assert step_clock("cuda", False) is step_clock(None, True) is step_clock("cpu", True) is time.perf_counter
    x = torch.empty(2, 4, 8, 8, device="meta")
    sample(CloudOnly(), sd_ddim_scheduler(), zero_noise, zero_noise, x, num_steps=4, synchronize=True)
    assert waits == []  # nothing to wait for off CUDA
    clock = step_clock("cuda:0", True)
    assert isinstance(clock(), float) and waits == ["cuda:0"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_synchronised_step_seconds_cover_the_device_work():
    def slow_noise(latents, timestep):
        torch.cuda._sleep(50_000_000)  # about 25 ms of device time, enqueued at once
        return torch.zeros_like(latents)

    x = torch.randn(1, 4, 8, 8, device="cuda")
    timed = sample(CloudOnly(), sd_ddim_scheduler(), slow_noise, None, x, num_steps=3, synchronize=True)
    assert min(record.seconds for record in timed.steps) > 0.01
