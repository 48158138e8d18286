"""The engine's iteration timer: the host's clock on the CPU; on CUDA, events read back without waiting."""

import time

import pytest
import torch

from ecdiff.engine.timing import IterationTimer


def test_on_the_cpu_each_iteration_is_timed_by_the_host_at_once():
    timer = IterationTimer("cpu")
    for batch, pause in ((1, 0.02), (3, 0.0)):
        started = timer.start()
        time.sleep(pause)
        timer.stop(started, batch)
    (first, long), (second, short) = timer.finished()
    assert (first, second) == (1, 3) and long >= 0.02 > short >= 0
    assert timer.finished() == [] and timer.drain() == []


def test_a_stand_in_model_without_a_device_is_timed_on_the_host():
    assert IterationTimer(None).device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_device_time_is_read_back_without_waiting():
    timer = IterationTimer("cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # start, stop and finished never make the host wait
    try:
        host = time.perf_counter()
        started = timer.start()
        torch.cuda._sleep(200_000_000)  # about 0.1 s of device time at 2 GHz, enqueued at once
        timer.stop(started, 2)
        host = time.perf_counter() - host
        early = timer.finished()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert early == []  # the device is still busy: nothing is read yet
    [(batch, seconds)] = timer.drain()
    assert batch == 2 and seconds > 0.05 > host
