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


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_equal_the_goldens(name):
    golden = torch.load(DATA / f"{name}.pt", weights_only=True)
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
            # Another thread count sums in another order; over a 50-step edge-only trajectory that reaches
            # ~5e-5 of the latents' scale (measured: 2.4e-4 of 5.3 on the issue-19 edge), so the absolute
            # tolerance scales with the tensor's magnitude.
            atol = max(1e-5, 1e-4 * float(want.abs().max())) if want.is_floating_point() else 1e-5
            torch.testing.assert_close(got, want, rtol=1e-4, atol=atol, msg=key)
