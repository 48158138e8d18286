"""Today's outputs equal the golden ones recorded before the groundwork refactor (issue 14).

Bit-identical on the platform they were recorded on (same torch build, CPU kernel family and thread
count: float results depend on them); elsewhere within float rounding, and PNGs within one level.
"""

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES  # noqa: E402
from fingerprint import platform_fingerprint  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def _pixels(png: torch.Tensor) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png.numpy().tobytes())).convert("RGB"), dtype=np.int16)


@pytest.fixture
def recorded_threads():
    """Compute with the thread count the goldens were recorded with (float sums depend on it)."""
    previous = torch.get_num_threads()
    yield lambda golden: torch.set_num_threads(golden["platform"]["threads"])
    torch.set_num_threads(previous)


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_equal_the_goldens(name, recorded_threads):
    golden = torch.load(DATA / f"{name}.pt", weights_only=True)
    recorded_threads(golden)
    expected = golden["tensors"]
    actual = CASES[name]()
    assert sorted(actual) == sorted(expected)
    same_platform = golden["platform"] == platform_fingerprint()
    for key, want in expected.items():
        got = actual[key].detach().cpu()
        assert got.dtype == want.dtype and got.shape == want.shape, key
        if same_platform:
            assert torch.equal(got, want), f"{key}: not bit-identical (max |diff| {(got.double() - want.double()).abs().max()})"
        elif want.dtype == torch.uint8:
            assert np.abs(_pixels(got) - _pixels(want)).max() <= 1, key
        else:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=key)
