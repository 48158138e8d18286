"""Strength labels for DiffusionX's predictors, as in the paper: try every candidate strength,
score each result with the alignment scorer's prompt fidelity for the current prompt, keep the
best. Ties (common: fidelity counts 0..5 attributes) go to the LOWER strength, i.e. the faster one.

Edge labels, per training session: round 0 is the txt2img preview; for each revision, img2img
from the previous preview at every candidate, on the edge model at the preview schedule; the best
candidate's latent is the next round's input. Cloud labels, per session: refine the last preview
at every candidate on the cloud model (refinement schedule) and score for the final prompt.

Sessions are processed in chunks of `batch` (one batched UNet call per step and candidate). Each
finished chunk is one JSON file (plus its final preview latents) under the cache folder, written
atomically, so an interrupted run resumes at the first missing chunk.
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

from .embeddings import preview_images
from .predictors import CANDIDATE_STRENGTHS
from .prompts import PromptSession
from .rounds import RoundSpec, run_rounds


@dataclass(frozen=True)
class LabelConfig:
    preview_steps: int = 25
    refine_steps: int = 50
    batch: int = 16

    def __post_init__(self) -> None:
        if min(self.preview_steps, self.refine_steps, self.batch) < 1:
            raise ValueError(f"steps and batch must be >= 1, got {self}")


def best_strength(fidelities: Sequence[float]) -> float:
    """The candidate with the highest fidelity; ties to the lower (faster) strength."""
    best = max(fidelities)
    return CANDIDATE_STRENGTHS[next(i for i, f in enumerate(fidelities) if f == best)]


def _scores(pipe, scorer, latents: torch.Tensor, prompts: list[str]) -> list[float]:
    return scorer.fidelity(preview_images(pipe, latents), prompts)


def _try_candidates(pipe, guidance, scorer, specs: list[RoundSpec], role: str,
                    progress: bool = False) -> tuple[list[list[float]], list[torch.Tensor]]:
    """Fidelity of every spec at every candidate strength, and the latents per candidate."""
    fidelity, latents = [], []
    for strength in tqdm(CANDIDATE_STRENGTHS, desc=f"{role} candidates", unit="strength", leave=False,
                         disable=not progress):
        batch = [RoundSpec(s.prompt, s.seed, s.round_index, s.num_steps, strength, s.init) for s in specs]
        out = run_rounds(pipe, guidance, batch, role=role).latents
        fidelity.append(_scores(pipe, scorer, out, [s.prompt for s in specs]))
        latents.append(out)
    return [list(col) for col in zip(*fidelity)], latents


def _active(sessions: Sequence[PromptSession], r: int) -> list[int]:
    return [i for i, s in enumerate(sessions) if len(s.prompts) > r]


def revision_order(sessions: Sequence[PromptSession]) -> list[tuple[int, int]]:
    """(session position, round) of each of a chunk's edge records, in `edge_chunk`'s order."""
    return [(i, r) for r in range(1, max(len(s.prompts) for s in sessions)) for i in _active(sessions, r)]


def edge_chunk(pair, scorer, sessions: Sequence[PromptSession], config: LabelConfig,
               progress: bool = False) -> tuple[list[dict], torch.Tensor]:
    """Edge labels of one chunk, and the last preview latent of each session."""
    specs = [RoundSpec(s.prompts[0], s.seed, 0, config.preview_steps) for s in sessions]
    current = list(run_rounds(pair.edge, pair.guidance, specs).latents.split(1))
    records = []
    for r in range(1, max(len(s.prompts) for s in sessions)):
        active = _active(sessions, r)
        specs = [RoundSpec(sessions[i].prompts[r], sessions[i].seed, r, config.preview_steps, 1.0, current[i])
                 for i in active]
        fidelity, outs = _try_candidates(pair.edge, pair.guidance, scorer, specs, "edge", progress)
        for j, i in enumerate(active):
            best = best_strength(fidelity[j])
            current[i] = outs[CANDIDATE_STRENGTHS.index(best)][j:j + 1]
            records.append({"previous": sessions[i].prompts[r - 1], "prompt": sessions[i].prompts[r],
                            "edit": (sessions[i].edits or [None] * r)[r - 1], "fidelity": fidelity[j], "best": best})
    return records, torch.cat(current)


def cloud_chunk(pair, scorer, sessions: Sequence[PromptSession], previews: torch.Tensor, config: LabelConfig,
                progress: bool = False) -> list[dict]:
    specs = [RoundSpec(s.prompts[-1], s.seed, len(s.prompts), config.refine_steps, 1.0, previews[i:i + 1])
             for i, s in enumerate(sessions)]
    fidelity, _ = _try_candidates(pair.cloud, pair.guidance, scorer, specs, "cloud", progress)
    return [{"prompt": s.prompts[-1], "fidelity": f, "best": best_strength(f)} for s, f in zip(sessions, fidelity)]


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
        raise ValueError(f"cached labels {where} do not match the sessions; delete that folder to rebuild it")
    return [offset + i for i, _ in order]


def build_labels(pair, scorer, sessions: Sequence[PromptSession], config: LabelConfig, cache: Path,
                 cloud_sessions: int, progress: bool = True) -> LabelSet:
    """Edge labels for every session, cloud labels for the first `cloud_sessions`; cached per chunk."""
    key = hashlib.sha256(json.dumps([pair.cache_key, asdict(config), [s.to_json() for s in sessions]])
                         .encode()).hexdigest()[:16]
    folder = cache / key
    folder.mkdir(parents=True, exist_ok=True)
    chunks = [sessions[i:i + config.batch] for i in range(0, len(sessions), config.batch)]
    edge, cloud, previews, edge_sessions = [], [], [], []
    cloud_chunks = -(-cloud_sessions // config.batch)
    bar = tqdm(total=len(chunks) + min(cloud_chunks, len(chunks)), desc="labels (chunks)", unit="chunk",
               disable=not progress)
    for n, chunk in enumerate(chunks):
        edge_file, latents_file = folder / f"edge-{n:04d}.json", folder / f"previews-{n:04d}.safetensors"
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
            cloud_file = folder / f"cloud-{n:04d}.json"
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
