"""Run prepared runs together on one fresh engine, for tests that compare batched with unbatched results."""

from __future__ import annotations

import queue

from ecdiff.engine.config import EngineConfig
from ecdiff.engine.core import DenoisingEngine
from ecdiff.engine.work import EngineWork


def run_batched(unet, runs, num_steps: int, timeout: float = 120):
    """(engine stats, {index of the run: its engine outcome}); every run goes up to `num_steps`."""
    engine = DenoisingEngine(unet, EngineConfig(max_batch=len(runs), max_running=len(runs)))
    ends = queue.Queue()
    try:
        for index, run in enumerate(runs):
            engine.submit(EngineWork(run, num_steps, lambda r, x: None, lambda end, i=index: ends.put((i, end))))
        return engine.stats, dict(ends.get(timeout=timeout) for _ in runs)
    finally:
        engine.close()
