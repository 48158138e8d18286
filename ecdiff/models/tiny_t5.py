"""A tiny random T5 text encoder and a T5 tokenizer built offline, for the tiny video family.

The tokenizer is transformers' own `T5Tokenizer` (a `tokenizers` Unigram model, as the real
SentencePiece one is) on a vocabulary written here: T5's pad, end and unknown tokens, the
word-start marker, every printable ASCII character alone and word-initial, and a few whole words.
Every ASCII text tokenizes (other characters become <unk>, as with T5's own vocabulary), so any
prompt works; nothing comes from the hub.
"""

from __future__ import annotations

import string

from transformers import T5Config, T5EncoderModel, T5Tokenizer

WORD_START = "\u2581"  # SentencePiece's word-start marker
SPECIAL = (("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0))  # T5's ids 0, 1, 2
# Whole words score higher than their characters, so a known word is one token, as with the real vocabulary.
WORDS = ("a", "red", "circle", "on", "the", "blue", "panda", "guitar")


def tiny_t5_tokenizer(max_length: int) -> T5Tokenizer:
    characters = [c for c in string.printable if not c.isspace()]
    # A dict: one entry per piece (a one-letter word is also a word-initial character; the word's score wins).
    scores = {**dict(SPECIAL), WORD_START: -2.0, **{c: -3.0 for c in characters},
              **{WORD_START + c: -3.5 for c in characters}, **{WORD_START + w: -1.0 for w in WORDS}}
    return T5Tokenizer(vocab=list(scores.items()), extra_ids=0, model_max_length=max_length)


def tiny_t5_encoder(tokenizer: T5Tokenizer, hidden: int) -> T5EncoderModel:
    """CogVideoX's encoder class (T5 v1.1: gated GELU feed-forward), two layers."""
    config = T5Config(vocab_size=len(tokenizer), d_model=hidden, d_kv=hidden // 4, d_ff=2 * hidden,
                      num_layers=2, num_heads=4, relative_attention_num_buckets=8,
                      relative_attention_max_distance=tokenizer.model_max_length, feed_forward_proj="gated-gelu",
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    return T5EncoderModel(config).eval()
