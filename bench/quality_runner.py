"""Shared by `ecdiff bench quality` and `ecdiff bench ablation`: methods, a resumable on-disk cache
of generated images, the timed runs, and the metrics of a method's images against a reference."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from tqdm import tqdm

from ecdiff.metrics import lpips_or_none, psnr, ssim, stack_images
from ecdiff.search.generate import generate
from ecdiff.search.pair import ModelPair
from ecdiff.search.prompts import PromptItem
from ecdiff.strategies import Strategy


@dataclass(frozen=True)
class Method:
    name: str
    strategy: Strategy
    params: dict  # what the method is, for reports and the cache key
    scheduler: str = "ddim"


@dataclass(frozen=True)
class Record:
    image: Image.Image
    latency_s: float
    cloud_calls: int
    edge_calls: int
    approx_steps: int
    transfer_bytes: int
    from_cache: bool


@dataclass
class ImageCache:
    """<root>/<method>-<hash of run + method>/<hash of prompt + seed>.{png,json}.

    The PNG is the image every metric reads (also when freshly generated), the JSON holds what
    was measured when it was generated; a resumed run reuses both.
    """

    root: Path
    run_key: str  # model pair, guidance, steps: anything that changes every image
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
            with Image.open(stem.with_suffix(".png")) as image:
                picture = image.convert("RGB")
        except (OSError, ValueError):
            return None  # absent or damaged: generated again
        if not all(k in meta for k in ("latency_s", "cloud_calls", "edge_calls", "approx_steps", "transfer_bytes")):
            return None
        return Record(picture, meta["latency_s"], meta["cloud_calls"], meta["edge_calls"], meta["approx_steps"],
                      meta["transfer_bytes"], from_cache=True)

    def store(self, method: Method, item: PromptItem, record: Record) -> Record:
        stem = self._stem(method, item)
        record.image.save(stem.with_suffix(".png"))
        meta = {k: getattr(record, k) for k in ("latency_s", "cloud_calls", "edge_calls", "approx_steps", "transfer_bytes")}
        meta.update(prompt=item.prompt, seed=item.seed)
        tmp = stem.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, stem.with_suffix(".json"))  # written last: its presence marks a complete entry
        with Image.open(stem.with_suffix(".png")) as image:
            return Record(image.convert("RGB"), *(meta[k] for k in ("latency_s", "cloud_calls", "edge_calls",
                                                                     "approx_steps", "transfer_bytes")), from_cache=False)


def run_methods(pair: ModelPair, methods: Sequence[Method], items: Sequence[PromptItem], num_steps: int,
                cache: ImageCache, *, warmup: bool = True, progress: bool = True) -> dict[str, list[Record]]:
    """Every method on every prompt (cached entries are loaded, the rest generated and stored)."""
    results: dict[str, list[Record | None]] = {m.name: [cache.load(m, item) for item in items] for m in methods}
    todo = [(m, i) for m in methods for i, _ in enumerate(items) if results[m.name][i] is None]
    if warmup:  # one untimed run per method to be generated, so one-time costs do not land in a timing
        for method in {m.name: m for m, _ in todo}.values():
            generate(pair, method.strategy, items[0].prompt, items[0].seed, num_steps, method.scheduler)
    for method, i in tqdm(todo, desc="generating", unit="image", disable=not progress):
        g = generate(pair, method.strategy, items[i].prompt, items[i].seed, num_steps, method.scheduler)
        record = Record(g.image, g.latency_s, g.cloud_calls, g.edge_calls, g.approx_steps, g.transfer_bytes, False)
        results[method.name][i] = cache.store(method, items[i], record)
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


def machine_info(device) -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }
