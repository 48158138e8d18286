"""Runs one DiffusionX benchmark session per method, in process, with the services' own core code
(`PreviewEngine`, `Refiner`, `run_round`), timing compute and recording what would cross the link.

- cloud: every round a txt2img on the cloud model (`steps`), decoded there, the PNG sent down.
- edge: every round a txt2img on the edge model (`steps`), no link.
- diffusionx-fixed / diffusionx: round 1 a txt2img preview on the edge (`preview_steps`), later rounds
  img2img from the previous preview at a fixed strength / the edge predictor's; the last preview's
  latent goes up, the cloud refines it at the fixed strength / the cloud predictor's (`steps`
  schedule), the latent comes down and the edge decodes it.

What the user sees after each round (each round's image; for DiffusionX the previews, before the
refinement) is scored too: `round_fidelity`, the alignment scorer's prompt fidelity of each round's
picture for that round's prompt; it is what the edge predictor's strengths buy.

Message sizes are the serialized protobuf sizes of the messages the services exchange
(StartSessionRequest + RoundResult for cloud-only rounds; RefineRequest + Refined for the
refinement); the transfer time is modelled from them (`services.link`), not measured.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

from PIL import Image

from ecdiff.images import decode_images, png_bytes
from ecdiff.metrics import stack_images
from ecdiff.search.prompts import PromptItem
from ecdiff.services.link import Link, LinkConfig
from ecdiff.wire.tensors import to_proto
from ecdiff.diffusionx.engine import PreviewConfig, PreviewEngine
from ecdiff.diffusionx.prompts import PromptSession
from ecdiff.diffusionx.refine import RefineConfig, Refiner
from ecdiff.diffusionx.rounds import RoundSpec, run_round
from ecdiff.diffusionx.store import SessionStore
from ecdiff.v1 import diffusionx_pb2

from .quality_runner import ImageCache, Method

METHODS = ("cloud", "edge", "diffusionx-fixed", "diffusionx")


@dataclass
class SessionRecord:
    image: Image.Image
    edge_compute_s: float = 0.0  # denoising + predictor on the edge
    cloud_compute_s: float = 0.0  # denoising (+ decode for cloud-only, + predictor) on the cloud
    decode_s: float = 0.0  # VAE decode + PNG on the edge
    messages: list[int] = field(default_factory=list)  # bytes of each message over the link, in order
    edge_strengths: list[float] = field(default_factory=list)
    refine_strength: Optional[float] = None
    steps_run: int = 0  # denoising steps, all rounds and models
    round_fidelity: list[float] = field(default_factory=list)  # each round's picture for its prompt (points)
    from_cache: bool = False

    def transfer_s(self, link: LinkConfig) -> float:
        """Modelled: each message serialises at the bandwidth and takes the one-way latency."""
        return sum(Link(link).arrival(n, 0.0) for n in self.messages)

    def latency_s(self, link: LinkConfig) -> float:
        return self.edge_compute_s + self.cloud_compute_s + self.decode_s + self.transfer_s(link)


@dataclass(frozen=True)
class SessionSetup:
    pair: object  # ecdiff.loading.ModelPair
    steps: int  # full generations and the refinement schedule
    preview_steps: int
    fixed_strength: float
    approximate: bool = False  # refine with EC-Diff's k-step approximation
    edge_chooser: Optional[object] = None  # EdgeStrength, for "diffusionx"
    cloud_chooser: Optional[object] = None  # CloudStrength, for "diffusionx"
    scorer: Optional[object] = None  # scores each round's picture; None: no round fidelity

    def round_fidelity(self, pngs: list[bytes], prompts: list[str]) -> list[float]:
        if self.scorer is None:
            return []
        images = stack_images([Image.open(io.BytesIO(png)).convert("RGB") for png in pngs])
        return [float(f) for f in self.scorer.fidelity(images, prompts)]


def run_session(method: str, setup: SessionSetup, session: PromptSession) -> SessionRecord:
    if method in ("cloud", "edge"):
        return _txt2img_rounds(method, setup, session)
    if method in ("diffusionx-fixed", "diffusionx"):
        return _diffusionx(method == "diffusionx", setup, session)
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def _txt2img_rounds(role: str, setup: SessionSetup, session: PromptSession) -> SessionRecord:
    pipe = setup.pair.cloud if role == "cloud" else setup.pair.edge
    record = SessionRecord(image=None)  # type: ignore[arg-type]
    pngs = []
    for prompt in session.prompts:
        started = time.perf_counter()
        result = run_round(pipe, setup.pair.guidance, RoundSpec(prompt, session.seed, 0, setup.steps), role=role)
        compute = time.perf_counter() - started
        started = time.perf_counter()
        image = png_bytes(decode_images(pipe, result.latents)[0])
        decode = time.perf_counter() - started
        pngs.append(image)
        record.steps_run += len(result.steps)
        if role == "cloud":
            record.cloud_compute_s += compute + decode
            record.messages += [diffusionx_pb2.StartSessionRequest(prompt=prompt, seed=session.seed).ByteSize(),
                                diffusionx_pb2.RoundResult(prompt=prompt, image_png=image).ByteSize()]
        else:
            record.edge_compute_s += compute
            record.decode_s += decode
    record.image = Image.open(io.BytesIO(image)).convert("RGB")
    record.round_fidelity = setup.round_fidelity(pngs, list(session.prompts))
    return record


def _diffusionx(predicted: bool, setup: SessionSetup, session: PromptSession) -> SessionRecord:
    pair = setup.pair
    edge_chooser = setup.edge_chooser if predicted else None
    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(), PreviewConfig(num_steps=setup.preview_steps),
                           edge_chooser)
    record = SessionRecord(image=None)  # type: ignore[arg-type]
    fixed = None if predicted else setup.fixed_strength
    outcome = engine.start(session.prompts[0], session.seed)
    rounds = [outcome]
    for prompt in session.prompts[1:]:
        rounds.append(engine.revise(outcome.session_id, prompt, fixed))
    for r in rounds:
        record.edge_compute_s += r.compute_seconds  # with the edge predictor's time
        record.decode_s += r.decode_seconds
        record.steps_run += r.steps_run
    record.edge_strengths = [r.strength for r in rounds[1:]]
    record.round_fidelity = setup.round_fidelity([r.image_png for r in rounds], [r.prompt for r in rounds])
    final = engine.finalize_input(outcome.session_id)
    refiner = Refiner(pair.cloud, pair.guidance, RefineConfig(num_steps=setup.steps),
                      setup.cloud_chooser if predicted else None)
    refined = refiner.refine(final.prompt, final.seed, final.round_index, final.latents, fixed, setup.approximate)
    record.cloud_compute_s = refined.compute_seconds
    record.refine_strength = refined.strength
    record.steps_run += refined.num_steps - refined.start_step
    record.messages = [
        diffusionx_pb2.RefineRequest(prompt=final.prompt, seed=final.seed, round=final.round_index,
                                     latents=to_proto(final.latents)).ByteSize(),
        diffusionx_pb2.RefineEvent(refined=diffusionx_pb2.Refined(
            latents=to_proto(refined.latents), strength=refined.strength, start_step=refined.start_step,
            num_steps=refined.num_steps, cloud_calls=refined.cloud_calls)).ByteSize(),
    ]
    started = time.perf_counter()
    image = decode_images(pair.edge, refined.latents)[0]
    record.decode_s += time.perf_counter() - started
    record.image = image.convert("RGB")
    return record


_META = ("edge_compute_s", "cloud_compute_s", "decode_s", "messages", "edge_strengths", "refine_strength", "steps_run",
         "round_fidelity")


class SessionCache(ImageCache):
    """bench quality's cache layout (folder per method + run, file per item), session metadata."""

    def load_session(self, method: Method, session: PromptSession) -> Optional[SessionRecord]:
        stem = self._stem(method, _item(session))
        try:
            meta = json.loads(stem.with_suffix(".json").read_text())
            with Image.open(stem.with_suffix(".png")) as image:
                picture = image.convert("RGB")
            return SessionRecord(picture, **{k: meta[k] for k in _META}, from_cache=True)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or damaged: run again

    def store_session(self, method: Method, session: PromptSession, record: SessionRecord) -> SessionRecord:
        stem = self._stem(method, _item(session))
        record.image.save(stem.with_suffix(".png"))
        meta = {k: v for k, v in asdict(record).items() if k in _META}
        tmp = stem.with_suffix(".tmp")
        tmp.write_text(json.dumps({**meta, "prompts": list(session.prompts), "seed": session.seed}))
        os.replace(tmp, stem.with_suffix(".json"))  # written last: marks a complete entry
        with Image.open(stem.with_suffix(".png")) as image:
            record.image = image.convert("RGB")  # what every metric reads, cached or not
        return record


def _item(session: PromptSession) -> PromptItem:
    return PromptItem(json.dumps(list(session.prompts)), session.seed)
