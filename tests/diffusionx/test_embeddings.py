"""What the strength predictors read from prompts: sentence embeddings and the edit embedding."""

import torch

from ecdiff.diffusionx.embeddings import TextEmbedder

BASE = "a small red circle at the top left on a white background"


def _cos(a, b):
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def test_edit_embedding_pools_the_added_and_removed_words_in_context():
    text = TextEmbedder()
    d = text.dim
    colour = BASE.replace("red", "blue")
    colour2 = BASE.replace("red", "green")
    background = BASE.replace("white", "black")
    previous = [BASE, BASE, BASE, BASE]
    current = [colour, colour2, background, BASE]
    x = text.edit(previous, current)
    assert x.shape == (4, 2 * d + 3)
    added = x[:, :d]
    # One word each way; the same edit kind lands closer together than a colour and a background edit.
    torch.testing.assert_close(x[[0, 2], -2:], torch.full((2, 2), 0.1))
    assert _cos(added[0], added[1]) > _cos(added[0], added[2]) + 0.1  # measured: 0.35 against 0.17
    # Nothing changed: no words either way (zeros), sentence cosine 1.
    assert torch.count_nonzero(x[3, :2 * d]) == 0
    torch.testing.assert_close(x[3, -3:], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(x[0, 2 * d], text([BASE])[0] @ text([colour])[0])


def test_a_repeated_word_is_matched_once():
    text = TextEmbedder()
    x = text.edit(["a red circle on a white background"], ["a red circle on a a white background"])
    torch.testing.assert_close(x[0, -2:], torch.tensor([0.1, 0.0]))  # one extra "a" added, nothing removed
