"""Timing of a callable: warm-up, then repeats, each synchronised on CUDA.

Two clocks. "wall": elapsed time, the right one on a dedicated machine and for GPU work.
"cpu": CPU time of the calling thread (time.thread_time), for CPU work on a shared machine, where
a process at low priority spends most of its wall time waiting for the scheduler; it equals the
op's cost only when torch runs single-threaded (torch.set_num_threads(1)), as then all its work
happens on this thread. Memory stalls count as CPU time, so memory-bound ops are measured fairly.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Timing:
    median_s: float
    min_s: float

    def scaled(self, factor: float) -> "Timing":
        return Timing(self.median_s * factor, self.min_s * factor)


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 1, cuda: bool = False,
              clock: str = "wall") -> Timing:
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = now()
        fn()
        if cuda:
            torch.cuda.synchronize()
        samples.append(now() - start)
    return Timing(statistics.median(samples), min(samples))


def cuda_graph(fn: Callable[[], object]) -> Callable[[], None]:
    """fn captured once as a CUDA graph: a replay is one launch, whatever fn launches.
    fn's inputs must keep their storage between replays (the graph reads those addresses)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()  # warm-up outside the graph: compiles kernels, settles allocator pools
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def copy_bandwidth(n_bytes: int, repeats: int) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write counted), the ceiling for
    elementwise kernels."""
    src = torch.empty(n_bytes // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    t = time_call(lambda: dst.copy_(src), repeats, warmup=3, cuda=True)
    return 2 * src.numel() * 4 / t.min_s
