"""LPIPS (Zhang et al. 2018, AlexNet variant) only when it can run from local files.

It needs the official `lpips` package (which ships the learned linear layers) and torchvision's
AlexNet backbone checkpoint on local disk: `$ECDIFF_LPIPS_BACKBONE`, else
`models/lpips/alexnet-owt-7be5be79.pth` under the working directory. Nothing is downloaded. When
any piece is missing, `lpips_or_none` returns None and reports say 'n/a': LPIPS is never
approximated by another network.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import torch

from .convert import paired_frames, per_item

BACKBONE_ENV = "ECDIFF_LPIPS_BACKBONE"
DEFAULT_BACKBONE = Path("models/lpips/alexnet-owt-7be5be79.pth")


class LPIPSUnavailable(RuntimeError):
    pass


def backbone_path() -> Path:
    return Path(os.environ.get(BACKBONE_ENV) or DEFAULT_BACKBONE)


def unavailable_reason() -> str | None:
    """Why LPIPS cannot run here, or None when it can."""
    for package in ("lpips", "torchvision"):
        if importlib.util.find_spec(package) is None:
            return f"the '{package}' package is not installed"
    if not backbone_path().is_file():
        return f"no AlexNet backbone weights at {backbone_path()} (set {BACKBONE_ENV})"
    return None


@lru_cache(maxsize=1)
def _model():
    reason = unavailable_reason()
    if reason is not None:
        raise LPIPSUnavailable(reason)
    import lpips  # the official implementation; imported only when usable

    # pnet_rand=True builds the backbone without downloading; its weights come from the local file.
    model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
    features = torch.load(backbone_path(), map_location="cpu", weights_only=True)
    # lpips' AlexNet slices keep torchvision's layer indices: sliceK.<i>.* is features.<i>.*
    state = {key: features["features." + key.split(".", 1)[1]] for key in model.net.state_dict()}
    model.net.load_state_dict(state)
    return model


@torch.no_grad()
def lpips_or_none(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """Per-image LPIPS [N] (videos: per frame, averaged), or None when LPIPS is unavailable."""
    x, y, frames = paired_frames(x, y)
    if unavailable_reason() is not None:
        return None
    model = _model()
    values = model(x.float() * 2 - 1, y.float() * 2 - 1).flatten()  # lpips expects [-1, 1]
    return per_item(values.double(), frames)
