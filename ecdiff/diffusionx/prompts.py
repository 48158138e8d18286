"""Interactive prompt sessions from the toy-world grammar (the analogue of DiffusionX's
COCO2017-Interactive-Prompts-400).

A session is a seed and 2-4 prompts; each prompt after the first revises the one before with one
edit: change one attribute (colour, shape, position, background, size), say the same scene in
another paraphrase template, or rewrite the caption as a new scene. Everything is drawn from one
`numpy.random.Generator(seed)`, so a dataset is a pure function of its `SessionDataConfig`.

`python -m ecdiff.diffusionx.prompts --out data/sessions` (`make session-prompts`) rewrites the
shipped files byte for byte: `train.jsonl` and `heldout.jsonl`, one JSON object a line,
`{"seed": int, "prompts": [str, ...], "edits": [str, ...]}` (`edits[i]` turns prompt i into i + 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecdiff.toyworld import ATTRIBUTES, TEMPLATES, Scene, caption, sample_scenes

ATTRIBUTE_EDITS = ("color", "shape", "position", "background", "size")
EDITS = (*ATTRIBUTE_EDITS, "paraphrase", "rewrite")
# Attribute edits are what people mostly do; whole rewrites and rewordings are rarer.
EDIT_WEIGHTS = (0.16, 0.16, 0.16, 0.14, 0.12, 0.12, 0.14)
DEFAULT_OUT = Path("data/sessions")


@dataclass(frozen=True)
class PromptSession:
    seed: int
    prompts: tuple[str, ...]
    edits: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"seed": self.seed, "prompts": list(self.prompts), "edits": list(self.edits)})


@dataclass(frozen=True)
class SessionDataConfig:
    sessions: int = 400
    heldout: int = 80
    min_rounds: int = 2
    max_rounds: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.min_rounds <= self.max_rounds:
            raise ValueError(f"need 2 <= min_rounds <= max_rounds, got {self.min_rounds}, {self.max_rounds}")
        if not 0 <= self.heldout <= self.sessions:
            raise ValueError(f"heldout must be in [0, sessions={self.sessions}], got {self.heldout}")


def _edit(scene: Scene, template: int, edit: str, rng: np.random.Generator) -> tuple[Scene, int]:
    if edit == "rewrite":
        new = sample_scenes(1, rng)[0]
        while new == scene:
            new = sample_scenes(1, rng)[0]
        return new, int(rng.integers(len(TEMPLATES)))
    if edit == "paraphrase":
        return scene, int((template + rng.integers(1, len(TEMPLATES))) % len(TEMPLATES))
    values = [v for v in ATTRIBUTES[edit] if v != getattr(scene, edit)]
    return Scene(**{**scene.as_dict(), edit: values[int(rng.integers(len(values)))]}), template


def generate_sessions(config: SessionDataConfig = SessionDataConfig()) -> list[PromptSession]:
    rng = np.random.default_rng(config.seed)
    sessions = []
    for _ in range(config.sessions):
        seed = int(rng.integers(0, 2**31))
        rounds = int(rng.integers(config.min_rounds, config.max_rounds + 1))
        scene = sample_scenes(1, rng)[0]
        template = int(rng.integers(len(TEMPLATES)))
        prompts, edits = [caption(scene, template)], []
        for _ in range(rounds - 1):
            edit = EDITS[int(rng.choice(len(EDITS), p=EDIT_WEIGHTS))]
            scene, template = _edit(scene, template, edit, rng)
            prompts.append(caption(scene, template))
            edits.append(edit)
        sessions.append(PromptSession(seed, tuple(prompts), tuple(edits)))
    return sessions


def split(sessions: list[PromptSession], heldout: int) -> tuple[list[PromptSession], list[PromptSession]]:
    """(train, held-out): the last `heldout` sessions are held out."""
    return sessions[: len(sessions) - heldout], sessions[len(sessions) - heldout:]


def write_dataset(out: Path, config: SessionDataConfig = SessionDataConfig()) -> dict[str, Path]:
    train, heldout = split(generate_sessions(config), config.heldout)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.jsonl", "heldout": out / "heldout.jsonl"}
    for name, part in (("train", train), ("heldout", heldout)):
        paths[name].write_text("".join(s.to_json() + "\n" for s in part))
    return paths


def read_sessions(path: Path) -> list[PromptSession]:
    """JSON Lines sessions; keys other than seed / prompts / edits are ignored, edits are optional."""
    sessions = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            seed, prompts = row["seed"], row["prompts"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a session object with seed and prompts ({exc})") from None
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"{path}:{number}: seed must be an integer >= 0, got {seed!r}")
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise ValueError(f"{path}:{number}: prompts must be a non-empty list of non-empty strings")
        sessions.append(PromptSession(seed, tuple(prompts), tuple(row.get("edits", ()))))
    if not sessions:
        raise ValueError(f"{path}: no sessions")
    return sessions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--sessions", type=int, default=SessionDataConfig.sessions)
    parser.add_argument("--heldout", type=int, default=SessionDataConfig.heldout)
    parser.add_argument("--seed", type=int, default=SessionDataConfig.seed)
    args = parser.parse_args(argv)
    try:
        config = SessionDataConfig(sessions=args.sessions, heldout=args.heldout, seed=args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, path in write_dataset(args.out, config).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
