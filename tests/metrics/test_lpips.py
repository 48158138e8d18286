import torch

from ecdiff.metrics import lpips_or_none
from ecdiff.metrics.lpips import BACKBONE_ENV, unavailable_reason


def test_missing_weights_reports_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv(BACKBONE_ENV, str(tmp_path / "absent.pth"))
    assert unavailable_reason() is not None
    x = torch.rand(1, 3, 16, 16)
    assert lpips_or_none(x, x) is None
