"""Stage: MiniLM token states for every caption the UNets train on, computed once.

The grammar is finite (1728 scenes x len(TEMPLATES) templates, plus the empty prompt used for
caption dropout), so encoding every caption once is cheaper than encoding per batch and gives the
exact tensors the pipeline's encode_prompt computes at inference.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from ecdiff.models.text_encoder import encode, load_text_encoder, load_tokenizer
from ecdiff.models.training.paths import cache_dir
from ecdiff.toyworld import TEMPLATES, all_scenes, caption

_FILE = "caption-embeddings.pt"


def build_text_cache(batch_size: int = 128) -> None:
    tokenizer, text_encoder = load_tokenizer(), load_text_encoder()
    scenes = all_scenes()
    captions = [caption(scene, t) for scene in scenes for t in range(len(TEMPLATES))]
    chunks = [encode(captions[i:i + batch_size], tokenizer, text_encoder).to(torch.float16)
              for i in tqdm(range(0, len(captions), batch_size), desc="encode captions")]
    table = torch.cat(chunks).reshape(len(scenes), len(TEMPLATES), *chunks[0].shape[1:])
    empty = encode([""], tokenizer, text_encoder)[0].to(torch.float16)
    path = cache_dir() / _FILE
    torch.save({"table": table, "empty": empty}, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def load_text_cache() -> tuple[torch.Tensor, torch.Tensor]:
    """(table (scenes, templates, tokens, hidden), empty-prompt states (tokens, hidden)), fp16."""
    payload = torch.load(cache_dir() / _FILE, map_location="cpu")
    return payload["table"], payload["empty"]
