"""Shared by `ecdiff bench quality` and `ecdiff bench ablation`: methods, a resumable on-disk cache
of generated images, the timed runs, and the metrics of a method's images against a reference."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from PIL import Image
from tqdm import tqdm

from ecdiff.images import Video, open_picture
from ecdiff.loading import ModelPair
from ecdiff.metrics import lpips_or_none, psnr, ssim, stack_images
from ecdiff.search.generate import generate
from ecdiff.search.prompts import PromptItem
from ecdiff.strategies import Strategy


@dataclass(frozen=True)
class Method:
    name: str
    strategy: Strategy
    params: dict  # what the method is, for reports and the cache key
    scheduler: Optional[str] = None  # a kind of `ecdiff.schedules.fresh_scheduler`; None: the pair's own, as served


@dataclass(frozen=True)
class Record:
    image: Image.Image | Video  # a video model's frames (an animated PNG on disk)
    latency_s: float
    cloud_calls: int
    edge_calls: int
    approx_steps: int
    transfer_bytes: int
    from_cache: bool
    breakdown: dict = field(default_factory=dict)  # through the services: where the time and bytes went


MEASURED = ("latency_s", "cloud_calls", "edge_calls", "approx_steps", "transfer_bytes", "breakdown")
# One picture of one method: `generate_fn(method, item) -> Record` (in process, or through the services).
GenerateFn = Callable[[Method, PromptItem], Record]


@dataclass
class ImageCache:
    """<root>/<method>-<hash of run + method>/<hash of prompt + seed>.{png,json}.

    The PNG is the image every metric reads (also when freshly generated), the JSON holds what
    was measured when it was generated; a resumed run reuses both.
    """

    root: Path
    run_key: str  # model pair, guidance, steps, latency mode: anything that changes an image or a timing
    _folders: dict = field(default_factory=dict)

    def _folder(self, method: Method) -> Path:
        if method.name not in self._folders:
            key = json.dumps([self.run_key, method.name, method.scheduler, method.params], sort_keys=True)
            folder = self.root / f"{method.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
            folder.mkdir(parents=True, exist_ok=True)
            self._folders[method.name] = folder
        return self._folders[method.name]

    def _stem(self, method: Method, item: PromptItem) -> Path:
        digest = hashlib.sha256(json.dumps([item.prompt, item.seed]).encode()).hexdigest()[:16]
        return self._folder(method) / digest

    def load(self, method: Method, item: PromptItem) -> Record | None:
        stem = self._stem(method, item)
        try:
            meta = json.loads(stem.with_suffix(".json").read_text())
            picture = open_picture(stem.with_suffix(".png"))
        except (OSError, ValueError):
            return None  # absent or damaged: generated again
        if not all(k in meta for k in MEASURED):
            return None
        return Record(picture, *(meta[k] for k in MEASURED[:-1]), from_cache=True, breakdown=meta["breakdown"])

    def store(self, method: Method, item: PromptItem, record: Record) -> Record:
        stem = self._stem(method, item)
        record.image.save(stem.with_suffix(".png"))
        meta = {k: getattr(record, k) for k in MEASURED}
        meta.update(prompt=item.prompt, seed=item.seed)
        tmp = stem.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, stem.with_suffix(".json"))  # written last: its presence marks a complete entry
        # The metrics read the stored PNG, exactly as they do on a resumed run.
        return replace(self.load(method, item), from_cache=False)


def in_process(pair: ModelPair, num_steps: int) -> GenerateFn:
    """Pictures generated in this process with the core; latency = encode + sample + decode."""

    def generate_fn(method: Method, item: PromptItem) -> Record:
        g = generate(pair, method.strategy, item.prompt, item.seed, num_steps, method.scheduler)
        return Record(g.image, g.latency_s, g.cloud_calls, g.edge_calls, g.approx_steps, g.transfer_bytes, False)

    return generate_fn


def run_methods(methods: Sequence[Method], items: Sequence[PromptItem], cache: ImageCache, generate_fn: GenerateFn,
                *, warmup: bool = True, progress: bool = True, desc: str = "generating") -> dict[str, list[Record]]:
    """Every method on every prompt (cached entries are loaded, the rest generated and stored)."""
    results: dict[str, list[Record | None]] = {m.name: [cache.load(m, item) for item in items] for m in methods}
    # Prompt-major order: every method's pictures of one prompt are generated together, so a change
    # of machine load during a long run lands on all methods alike instead of on whichever ran then.
    todo = [(m, i) for i, _ in enumerate(items) for m in methods if results[m.name][i] is None]
    if warmup:  # one untimed run per method to be generated, so one-time costs do not land in a timing
        for method in {m.name: m for m, _ in todo}.values():
            generate_fn(method, items[0])
    for method, i in tqdm(todo, desc=desc, unit="image", disable=not progress):
        results[method.name][i] = cache.store(method, items[i], generate_fn(method, items[i]))
    return results  # type: ignore[return-value]


def finite_mean(values: torch.Tensor | None) -> float | None:
    """Mean of a metric over images; None when unavailable or infinite (PSNR of identical images)."""
    if values is None:
        return None
    mean = float(values.mean())
    return mean if math.isfinite(mean) else None


def compare(records: Sequence[Record], reference: Sequence[Record]) -> dict:
    x = stack_images([r.image for r in records])
    y = stack_images([r.image for r in reference])
    return {"psnr": finite_mean(psnr(x, y)), "ssim": finite_mean(ssim(x, y)), "lpips": finite_mean(lpips_or_none(x, y))}


def median_latency(records: Sequence[Record]) -> float:
    return statistics.median(r.latency_s for r in records)


def machine_info(device, dtype=None) -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "dtype": None if dtype is None else str(dtype).removeprefix("torch."),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }
