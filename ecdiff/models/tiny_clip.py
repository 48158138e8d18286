"""Tiny random CLIP text encoders and a CLIP tokenizer built offline, for the tiny model families.

The tokenizer is diffusers' own `CLIPTokenizer` (byte-level BPE) on a vocabulary written here:
the 256 byte symbols, each also with CLIP's end-of-word suffix, a few merges, and CLIP's start and
end tokens. Every text tokenizes (unknown words fall back to single bytes), so any prompt works;
nothing comes from the hub.
"""

from __future__ import annotations

from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

START, END = "<|startoftext|>", "<|endoftext|>"
END_OF_WORD = "</w>"
# A few merges so that common words are single tokens, as with the real vocabulary.
MERGES = (("r", "e"), ("re", "d</w>"), ("c", "i"), ("ci", "r"), ("cir", "c"), ("l", "e</w>"), ("circ", "le</w>"),
          ("b", "l"), ("bl", "u"), ("blu", "e</w>"), ("o", "n</w>"), ("t", "h"), ("th", "e</w>"))


def _byte_symbols() -> list[str]:
    """GPT-2's printable stand-in for each of the 256 bytes, which byte-level BPE splits text into."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def tiny_clip_tokenizer(max_length: int) -> CLIPTokenizer:
    symbols = _byte_symbols()
    tokens = symbols + [s + END_OF_WORD for s in symbols] + ["".join(pair) for pair in MERGES] + [START, END]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    return CLIPTokenizer(vocab=vocab, merges=list(MERGES), model_max_length=max_length)


def _config(tokenizer: CLIPTokenizer, hidden: int, projection: int) -> CLIPTextConfig:
    # Two layers: SDXL reads the penultimate hidden state. bos/eos ids must be the tokenizer's:
    # CLIP pools at the end token.
    vocab = tokenizer.get_vocab()
    return CLIPTextConfig(vocab_size=len(vocab), hidden_size=hidden, projection_dim=projection,
                          intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=2,
                          max_position_embeddings=tokenizer.model_max_length, bos_token_id=vocab[START],
                          eos_token_id=vocab[END], pad_token_id=vocab[END])


def tiny_clip_text_model(tokenizer: CLIPTokenizer, hidden: int) -> CLIPTextModel:
    """SD-1.x's encoder class (and SDXL's first)."""
    return CLIPTextModel(_config(tokenizer, hidden, hidden)).eval()


def tiny_clip_text_model_with_projection(tokenizer: CLIPTokenizer, hidden: int,
                                         projection: int) -> CLIPTextModelWithProjection:
    """SDXL's second encoder: its projected pooled output is the UNet's `text_embeds`."""
    return CLIPTextModelWithProjection(_config(tokenizer, hidden, projection)).eval()
