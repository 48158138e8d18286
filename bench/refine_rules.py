"""`ecdiff bench refine-rules`: DiffusionX's approximated refinement under each extrapolation rule.

On prompt sessions (the training sessions by default: the held-out ones stay for `bench sessions`),
each session's preview chain runs on the edge as a session does (`PreviewEngine`; strengths from the
predictors, or --preview-strength), then the cloud refines its last preview (`Refiner`, the code the
services run) exactly, at each refinement strength of --strength (the cloud predictor's, as shipped,
and/or fixed ones), and once per candidate approximation at that same strength. A candidate is a rule
and its damping (RULE:DAMPING as in `bench rule-error`: alpha for the paper's rule, beta for the
others), k and pre_steps; the grid is every combination of --variant, --k and --pre-steps, plus the
shipped `RefineConfig` (the baseline).

Per candidate and strength, over the sessions: SSIM of the decoded image (decoded on the edge, as a
session's final image is) against the exact refinement's, the alignment scorer's fidelity of that
image for the final prompt (hard, in 20-point steps, and soft), real cloud calls and approximated
steps per refinement, and the cost: cloud calls over the exact refinement's (a UNet call is the unit;
an approximated step's arithmetic is not counted). The choice, one default for every strength: the
fewest cloud calls summed over the strengths among the candidates whose mean SSIM and mean fidelity
are at least the baseline's at EACH strength (refine_rules_report.choose). Writes results.json and
tables.md; every session's measurements are cached under OUT/cache, so a run resumes and a wider
grid, more sessions or another strength reuse what was measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from tqdm import tqdm

from ecdiff.cli_options import pair_from_args
from ecdiff.conventions import DEFAULT_NUM_STEPS
from ecdiff.images import decode_images, open_picture
from ecdiff.metrics import ssim, stack_images
from ecdiff.diffusionx.engine import DEFAULT_PREVIEW_STEPS, PreviewConfig, PreviewEngine, check_strength
from ecdiff.diffusionx.predictors import PREDICTORS_DIR_NAME
from ecdiff.diffusionx.prompts import PromptSession, read_sessions
from ecdiff.diffusionx.refine import RefineConfig, Refiner
from ecdiff.diffusionx.store import SessionStore

from .quality_runner import machine_info
from .refine_rules_report import write_outputs
from .rule_error import Variant
from .sessions import predictor_key

PREDICTOR = "predictor"
DEFAULT_VARIANTS = ("paper:0", "paper:0.1", "paper:0.3", "slope:0", "slope:0.25", "slope:0.5",
                    "lsq:0.25", "lsq:0.5", "quadratic:0.25", "quadratic:0.5")


@dataclass(frozen=True)
class Candidate:
    variant: Variant
    k: int
    pre_steps: int

    @classmethod
    def of(cls, config: RefineConfig) -> "Candidate":
        return cls(Variant(config.rule, config.alpha if config.rule == "paper" else config.beta),
                   config.k, config.pre_steps)

    def config(self, num_steps: int) -> RefineConfig:
        """The refinement's config; ValueError for a combination it refuses."""
        damping = {"alpha": self.variant.damping} if self.variant.rule == "paper" else {"beta": self.variant.damping}
        return replace(RefineConfig(num_steps=num_steps), pre_steps=self.pre_steps, k=self.k, rule=self.variant.rule,
                       **damping)

    def __str__(self) -> str:
        return f"{self.variant} k{self.k} p{self.pre_steps}"


def candidates(variants, ks, pre_steps, num_steps: int) -> list[Candidate]:
    """The grid and the baseline (first), in order, without repeats; ValueError for a combination the
    refinement refuses (lsq and quadratic need pre_steps >= 3)."""
    grid = [Candidate.of(RefineConfig())] + [Candidate(v, k, p) for v in variants for k in ks for p in pre_steps]
    unique = list(dict.fromkeys(grid))
    for c in unique:
        c.config(num_steps)
    return unique


def strength_arg(text: str) -> Optional[float]:
    """'predictor' (None: the predictors choose) or a strength in (0, 1]."""
    if text == PREDICTOR:
        return None
    try:
        return check_strength(float(text))
    except ValueError:
        raise ValueError(f"a strength is '{PREDICTOR}' or a number in (0, 1], got {text!r}") from None


@dataclass(frozen=True)
class Setup:
    pair: object  # ecdiff.loading.ModelPair
    scorer: object
    steps: int
    preview_steps: int
    preview_strength: Optional[float]  # None: the edge predictor's
    edge_chooser: Optional[object] = None
    cloud_chooser: Optional[object] = None  # for the strength None: the cloud predictor's


def final_preview(setup: Setup, session: PromptSession):
    """The session's preview chain on the edge; what Finalize sends to the cloud."""
    engine = PreviewEngine(setup.pair.edge, setup.pair.guidance, SessionStore(),
                           PreviewConfig(num_steps=setup.preview_steps), setup.edge_chooser)
    session_id = engine.start(session.prompts[0], session.seed).session_id
    for prompt in session.prompts[1:]:
        engine.revise(session_id, prompt, setup.preview_strength)
    return engine.finalize_input(session_id)


class SessionMeasurements:
    """One session's cache entry: the exact refinement (its image as PNG, strength, scores) and each
    candidate's measurements, rewritten atomically as candidates are added."""

    def __init__(self, folder: Path, session: PromptSession) -> None:
        digest = hashlib.sha256(json.dumps([list(session.prompts), session.seed]).encode()).hexdigest()[:16]
        self.json, self.png = folder / f"{digest}.json", folder / f"{digest}.png"
        try:
            self.data = json.loads(self.json.read_text())
            if not isinstance(self.data, dict) or not {"exact", "candidates"} <= self.data.keys():
                raise ValueError(f"{self.json}: not a cache entry")
            self.image = open_picture(self.png)
        except (OSError, ValueError):
            self.data, self.image = None, None  # absent or damaged: measured again

    def save(self) -> None:
        tmp = self.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.json)


def _scores(setup: Setup, image, prompt: str) -> dict:
    images = stack_images([image])
    return {"fidelity": setup.scorer.fidelity(images, [prompt])[0], "soft": setup.scorer.soft_fidelity(images, [prompt])[0]}


def measure_session(setup: Setup, final, strength: Optional[float], todo: list[Candidate],
                    entry: SessionMeasurements) -> None:
    """Fill `entry` with the exact refinement of the session's `final` preview at `strength` (None: the
    cloud predictor's; once) and every candidate of `todo`."""
    prompt = final.prompt
    if entry.data is None:
        chooser = setup.cloud_chooser if strength is None else None
        exact = Refiner(setup.pair.cloud, setup.pair.guidance, RefineConfig(num_steps=setup.steps),
                        chooser).refine(prompt, final.seed, final.round_index, final.latents, strength)
        image = decode_images(setup.pair.edge, exact.latents)[0].convert("RGB")
        image.save(entry.png)
        entry.image = open_picture(entry.png)  # what every SSIM reads, fresh or cached
        entry.data = {"prompt": prompt, "seed": final.seed, "strength": exact.strength,
                      "strength_source": exact.strength_source, "start_step": exact.start_step,
                      "num_steps": exact.num_steps,
                      "exact": {"calls": exact.cloud_calls, **_scores(setup, entry.image, prompt)}, "candidates": {}}
    reference = stack_images([entry.image])
    for candidate in todo:
        refiner = Refiner(setup.pair.cloud, setup.pair.guidance, candidate.config(setup.steps))
        refined = refiner.refine(prompt, final.seed, final.round_index, final.latents, entry.data["strength"],
                                 approximate=True)
        image = decode_images(setup.pair.edge, refined.latents)[0].convert("RGB")
        entry.data["candidates"][str(candidate)] = {
            "ssim": float(ssim(stack_images([image]), reference)[0]), "calls": refined.cloud_calls,
            "approx": refined.approx_steps, **_scores(setup, image, prompt)}
    entry.save()


def _cache_folder(args, pair, predictors: Optional[Path], strength: Optional[float]) -> Path:
    """Everything that changes a session's exact refinement or its input names the folder."""
    key = [pair.cache_key, args.steps, args.preview_steps, args.preview_strength, strength,
           predictor_key(predictors) if predictors else None]
    folder = args.out / "cache" / hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _setup(args) -> tuple[Setup, Optional[Path]]:
    from ecdiff.diffusionx.choosers import load_choosers
    from ecdiff.models import load_scorer
    from ecdiff.models.training.paths import models_dir

    pair = pair_from_args(args)
    edge_chooser = cloud_chooser = predictors = None
    if args.preview_strength is None or None in args.strength:
        predictors = args.predictors or models_dir() / PREDICTORS_DIR_NAME
        try:
            edge_chooser, cloud_chooser = load_choosers(str(predictors))
        except FileNotFoundError as exc:
            raise ValueError(f"{exc}; or give --preview-strength and --strength") from None
    setup = Setup(pair, load_scorer(), args.steps, args.preview_steps, args.preview_strength,
                  edge_chooser if args.preview_strength is None else None, cloud_chooser)
    return setup, predictors


def _label(strength: Optional[float]) -> str:
    return PREDICTOR if strength is None else f"{strength:g}"


def run(args) -> int:
    try:
        args.preview_strength = strength_arg(args.preview_strength)
        args.strength = list(dict.fromkeys(strength_arg(s) for s in args.strength))
        variants = args.variants or [Variant.parse(v) for v in DEFAULT_VARIANTS]
        grid = candidates(variants, args.k, args.pre_steps, args.steps)
        sessions = read_sessions(args.sessions)[: args.limit]
        if not sessions:
            raise ValueError(f"no sessions in {args.sessions}")
        setup, predictors = _setup(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"ecdiff bench refine-rules: error: {exc}", file=sys.stderr)
        return 2
    folders = {s: _cache_folder(args, setup.pair, predictors, s) for s in args.strength}
    print(f"models: {setup.pair.name}; {len(sessions)} sessions; {len(grid)} candidates; strengths "
          f"{', '.join(map(_label, args.strength))}", file=sys.stderr)
    entries = {s: [] for s in args.strength}
    for session in tqdm(sessions, desc="sessions", unit="session", disable=args.no_progress):
        final = None  # the preview chain runs once per session, only when something is missing
        for strength, folder in folders.items():
            entry = SessionMeasurements(folder, session)
            todo = [c for c in grid if entry.data is None or str(c) not in entry.data["candidates"]]
            if todo:
                if final is None:
                    final = final_preview(setup, session)
                measure_session(setup, final, strength, todo, entry)
            entries[strength].append(entry.data)
    run_info = {"models": setup.pair.name, "sessions_file": str(args.sessions), "sessions": len(sessions),
                "steps": args.steps, "preview_steps": args.preview_steps,
                "preview_strength": _label(args.preview_strength)}
    write_outputs(args.out, {_label(s): e for s, e in entries.items()}, [str(c) for c in grid], run_info,
                  machine_info(setup.pair.cloud.device, setup.pair.cloud.dtype))
    print((args.out / "tables.md").read_text())
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--sessions", type=Path, default=Path("data/sessions/train.jsonl"),
                        help="sessions, JSON Lines {seed, prompts} (default: data/sessions/train.jsonl)")
    parser.add_argument("--limit", type=int, help="only the first N sessions (default: all)")
    parser.add_argument("--out", type=Path, default=Path("out/bench-refine-rules"),
                        help="output folder, cache inside (default: out/bench-refine-rules)")
    parser.add_argument("--steps", type=int, default=DEFAULT_NUM_STEPS,
                        help=f"DDIM steps of the refinement schedule (default: {DEFAULT_NUM_STEPS})")
    parser.add_argument("--preview-steps", type=int, default=DEFAULT_PREVIEW_STEPS,
                        help=f"DDIM steps of a preview schedule (default: {DEFAULT_PREVIEW_STEPS})")
    parser.add_argument("--preview-strength", default=PREDICTOR,
                        help="the revisions' strength: 'predictor' (the edge predictor's, as shipped) or a number "
                             "(default: predictor)")
    parser.add_argument("--strength", nargs="+", default=[PREDICTOR],
                        help="the refinement's strengths, each measured: 'predictor' (the cloud predictor's, as "
                             "shipped; RefineConfig.default_strength where it abstains) and/or numbers (default: "
                             "predictor)")
    parser.add_argument("--predictors", type=Path, help=f"predictor folder (default models/{PREDICTORS_DIR_NAME})")
    parser.add_argument("--variant", dest="variants", action="append", type=Variant.parse, metavar="RULE:DAMPING",
                        help="a rule and its damping (alpha for paper, else beta); repeat for more (default: "
                             f"{', '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                        help="approximated steps per real call (default: 1 2 3 4 5)")
    parser.add_argument("--pre-steps", type=int, nargs="+", default=[3, 5, 7],
                        help="real calls from the start step before approximating (default: 3 5 7)")
    parser.add_argument("--no-progress", action="store_true")
