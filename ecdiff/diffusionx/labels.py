"""Strength labels for DiffusionX's predictors, as in the paper: try every candidate strength and
score each result with the alignment scorer for the current prompt.

Two scores per result: the scorer's prompt fidelity (points; it counts the 0..5 attributes read, so
it moves in 20-point steps) and its SOFT fidelity (the mean probability of the prompt's attribute
values, `AlignmentScorer.soft_fidelity`), which moves with the scorer's confidence. Each session is
run as `seeds` replicas (the session's seed, then `replica_seed(seed, k)`), so every revision is
scored under several noise draws; the predictors learn the replica mean of the soft score.

Edge labels, per training session and replica: round 0 is the txt2img preview; for each revision,
img2img from the previous preview at every candidate, on the edge model at the preview schedule;
the candidate with the best soft score (ties to the lower strength) is the next round's input. Each
record also keeps the previous preview's alignment with the new prompt (the scorer's probability of
each attribute value the prompt names), what the edge predictor reads of the image.
Cloud labels, per session (the session's own seed): refine the last preview at every candidate on
the cloud model (refinement schedule, with EC-Diff's approximation as `Finalize(approximate=true)`
runs it unless `approximate` is off) and score for the final prompt.

Sessions are processed in chunks of `batch` sessions (one batched UNet call per step and candidate
for all their replicas). Each finished chunk is one JSON file (plus its final preview latents) in
the cache folder, named by a hash of the chunk's sessions and written atomically: an interrupted
run resumes at the first missing chunk, and a run on the first N sessions (N a multiple of `batch`)
reuses a longer run's chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ecdiff.img2img import img2img_start_step

from .embeddings import preview_images
from .predictors import CANDIDATE_STRENGTHS
from .prompts import PromptSession
from .refine import RefineConfig
from .rounds import RoundSpec, run_rounds

_REPLICA_STRIDE = 7_919_993  # a prime; replica k of a session draws from seed + k * stride
_EDGE_FORMAT = "v2"  # edge records with the previous preview's alignment


def replica_seed(seed: int, k: int) -> int:
    return (seed + k * _REPLICA_STRIDE) % 2**63


@dataclass(frozen=True)
class LabelConfig:
    preview_steps: int = 25
    refine_steps: int = 50
    batch: int = 16
    seeds: int = 2  # replicas per session for the edge labels
    approximate: bool = True  # cloud labels refine with EC-Diff's approximation (RefineConfig)

    def __post_init__(self) -> None:
        if min(self.preview_steps, self.refine_steps, self.batch, self.seeds) < 1:
            raise ValueError(f"steps, batch and seeds must be >= 1, got {self}")

    def cache_fields(self) -> dict:
        """What the labels depend on; batch only groups the work, but it also names the chunks."""
        refine = RefineConfig(num_steps=self.refine_steps)
        return {**asdict(self), "candidates": CANDIDATE_STRENGTHS,
                "approximation": ([refine.pre_steps, refine.k, refine.alpha, refine.rule, refine.beta]
                                  if self.approximate else None)}


def priced_strength(fidelities: Sequence[float], tolerance: float = 0.0) -> float:
    """The lowest candidate within `tolerance` points of the best: strength is the cost (tolerance 0:
    the best, ties to the lower strength)."""
    best = max(fidelities)
    return CANDIDATE_STRENGTHS[next(i for i, f in enumerate(fidelities) if f >= best - tolerance)]


def _try_candidates(pipe, guidance, scorer, specs: list[RoundSpec], role: str, refine: RefineConfig | None,
                    progress: bool = False) -> tuple[list[list[float]], list[list[float]], list[torch.Tensor]]:
    """Fidelity and soft fidelity of every spec at every candidate strength, and the latents per candidate."""
    hard, soft, latents = [], [], []
    for strength in tqdm(CANDIDATE_STRENGTHS, desc=f"{role} candidates", unit="strength", leave=False,
                         disable=not progress):
        batch = [RoundSpec(s.prompt, s.seed, s.round_index, s.num_steps, strength, s.init) for s in specs]
        strategy = refine.strategy(img2img_start_step(refine.num_steps, strength)) if refine is not None else None
        out = run_rounds(pipe, guidance, batch, role=role, strategy=strategy).latents
        images, prompts = preview_images(pipe, out), [s.prompt for s in specs]
        hard.append(scorer.fidelity(images, prompts))
        soft.append(scorer.soft_fidelity(images, prompts))
        latents.append(out)
    return [list(c) for c in zip(*hard)], [list(c) for c in zip(*soft)], latents


def _active(sessions: Sequence[PromptSession], r: int) -> list[int]:
    return [i for i, s in enumerate(sessions) if len(s.prompts) > r]


def revision_order(sessions: Sequence[PromptSession]) -> list[tuple[int, int]]:
    """(session position, round) of each of a chunk's edge records, in `edge_chunk`'s order."""
    return [(i, r) for r in range(1, max(len(s.prompts) for s in sessions)) for i in _active(sessions, r)]


def _mean(rows: list[list[float]]) -> list[float]:
    return [sum(col) / len(col) for col in zip(*rows)]


def edge_chunk(pair, scorer, sessions: Sequence[PromptSession], config: LabelConfig,
               progress: bool = False) -> tuple[list[dict], torch.Tensor]:
    """Edge labels of one chunk (one record per revision, its replicas inside), and the last preview
    latent of each session's first replica (its own seed)."""
    n, k = len(sessions), config.seeds
    seeds = [replica_seed(s.seed, j) for s in sessions for j in range(k)]  # item i * k + j
    specs = [RoundSpec(sessions[i // k].prompts[0], seeds[i], 0, config.preview_steps) for i in range(n * k)]
    current = list(run_rounds(pair.edge, pair.guidance, specs).latents.split(1))
    records = []
    for r in range(1, max(len(s.prompts) for s in sessions)):
        active = [i * k + j for i in _active(sessions, r) for j in range(k)]
        specs = [RoundSpec(sessions[i // k].prompts[r], seeds[i], r, config.preview_steps, 1.0, current[i])
                 for i in active]
        # What the previous preview already shows of the new prompt: the edge predictor's image input.
        before = scorer.attribute_probabilities(preview_images(pair.edge, torch.cat([current[i] for i in active])),
                                                [spec.prompt for spec in specs]).tolist()
        hard, soft, outs = _try_candidates(pair.edge, pair.guidance, scorer, specs, "edge", None, progress)
        for a, i in enumerate(active):
            current[i] = outs[CANDIDATE_STRENGTHS.index(priced_strength(soft[a]))][a:a + 1]
        for start in range(0, len(active), k):
            s = sessions[active[start] // k]
            replicas = [{"seed": seeds[active[a]], "fidelity": hard[a], "soft": soft[a], "alignment": before[a]}
                        for a in range(start, start + k)]
            records.append({"previous": s.prompts[r - 1], "prompt": s.prompts[r], "edit": (s.edits or [None] * r)[r - 1],
                            "fidelity": _mean([x["fidelity"] for x in replicas]),
                            "soft": _mean([x["soft"] for x in replicas]),
                            "alignment": _mean([x["alignment"] for x in replicas]), "replicas": replicas})
    return records, torch.cat(current[::k])


def cloud_chunk(pair, scorer, sessions: Sequence[PromptSession], previews: torch.Tensor, config: LabelConfig,
                progress: bool = False) -> list[dict]:
    specs = [RoundSpec(s.prompts[-1], s.seed, len(s.prompts), config.refine_steps, 1.0, previews[i:i + 1])
             for i, s in enumerate(sessions)]
    refine = RefineConfig(num_steps=config.refine_steps) if config.approximate else None
    hard, soft, _ = _try_candidates(pair.cloud, pair.guidance, scorer, specs, "cloud", refine, progress)
    return [{"prompt": s.prompts[-1], "fidelity": h, "soft": f} for s, h, f in zip(sessions, hard, soft)]


@dataclass(frozen=True)
class LabelSet:
    edge: list[dict]
    cloud: list[dict]  # one per session: the first len(cloud) sessions, in order
    previews: torch.Tensor  # last preview latent of each cloud-labelled session, in order
    edge_sessions: list[int]  # index (into the sessions) of each edge record's session


def _record_sessions(chunk: Sequence[PromptSession], offset: int, records: list[dict], where: Path) -> list[int]:
    """The session of each cached edge record, checked against the record's prompts."""
    order = revision_order(chunk)
    matches = len(order) == len(records) and all(
        (rec["previous"], rec["prompt"]) == (chunk[i].prompts[r - 1], chunk[i].prompts[r])
        for (i, r), rec in zip(order, records))
    if not matches:
        raise ValueError(f"cached labels {where} do not match the sessions; delete that file to rebuild it")
    return [offset + i for i, _ in order]


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


def build_labels(pair, scorer, sessions: Sequence[PromptSession], config: LabelConfig, cache: Path,
                 cloud_sessions: int, progress: bool = True) -> LabelSet:
    """Edge labels for every session, cloud labels for the first `cloud_sessions`; cached per chunk."""
    folder = cache / _digest([pair.cache_key, config.cache_fields()])
    folder.mkdir(parents=True, exist_ok=True)
    chunks = [sessions[i:i + config.batch] for i in range(0, len(sessions), config.batch)]
    edge, cloud, previews, edge_sessions = [], [], [], []
    cloud_chunks = -(-cloud_sessions // config.batch)
    bar = tqdm(total=len(chunks) + min(cloud_chunks, len(chunks)), desc="labels (chunks)", unit="chunk",
               disable=not progress)
    for n, chunk in enumerate(chunks):
        name = _digest([s.to_json() for s in chunk])
        edge_file, latents_file = folder / f"edge-{_EDGE_FORMAT}-{name}.json", folder / f"previews-{name}.safetensors"
        if not edge_file.is_file():
            records, last = edge_chunk(pair, scorer, chunk, config, progress)
            save_file({"previews": last.contiguous()}, str(latents_file))
            _write_json(edge_file, records)
        records = json.loads(edge_file.read_text())
        edge_sessions += _record_sessions(chunk, n * config.batch, records, edge_file)
        edge += records
        bar.update()
        if n < cloud_chunks:
            last = load_file(str(latents_file))["previews"]
            take = min(len(chunk), cloud_sessions - n * config.batch)
            cloud_file = folder / f"cloud-{name}-{take}.json"
            if not cloud_file.is_file():
                _write_json(cloud_file, cloud_chunk(pair, scorer, chunk[:take], last[:take], config, progress))
            cloud += json.loads(cloud_file.read_text())
            previews.append(last[:take])
            bar.update()
    bar.close()
    return LabelSet(edge, cloud, torch.cat(previews) if previews else torch.empty(0), edge_sessions)


def _write_json(path: Path, value) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)  # atomic: a present file is a finished chunk
