"""Prompt files: one prompt per line, or a TSV whose header has a `prompt` column and optionally
`seed` (other columns ignored). Blank lines and lines starting with '#' are skipped. Without a seed
column the i-th prompt (0-based) gets seed `base_seed + i`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..conventions import check_seed


@dataclass(frozen=True)
class PromptItem:
    prompt: str
    seed: int


def parse_prompts(text: str, base_seed: int = 0, source: str = "prompt file") -> list[PromptItem]:
    lines = [line.rstrip("\r\n") for line in text.splitlines()]
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{source} holds no prompts")
    header = [cell.strip().lower() for cell in lines[0].split("\t")]
    if "\t" not in lines[0] or "prompt" not in header:
        return [PromptItem(line.strip(), base_seed + i) for i, line in enumerate(lines)]
    column, seed_column = header.index("prompt"), header.index("seed") if "seed" in header else None
    items = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) <= column or not cells[column].strip():
            raise ValueError(f"{source} row {number}: no prompt in column '{header[column]}'")
        seed = base_seed + len(items)
        if seed_column is not None:
            try:
                seed = int(cells[seed_column])
            except (IndexError, ValueError):
                raise ValueError(f"{source} row {number}: seed must be an integer") from None
            try:
                check_seed(seed)
            except ValueError as exc:
                raise ValueError(f"{source} row {number}: {exc}") from None
        items.append(PromptItem(cells[column].strip(), seed))
    if not items:
        raise ValueError(f"{source} has a header but no prompts")
    return items


def read_prompts(path: str | Path, base_seed: int = 0) -> list[PromptItem]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read prompt file {path}: {exc.strerror}") from None
    return parse_prompts(text, base_seed, str(path))


def add_prompt_arguments(parser) -> None:
    """`--prompts FILE` and `--seed`, read back with `read_prompts(args.prompts, args.seed)`."""
    parser.add_argument("--prompts", type=Path, required=True, help="prompt file (lines, or TSV with prompt[/seed])")
    parser.add_argument("--seed", type=int, default=0, help="first seed for prompts without one (default: 0)")
