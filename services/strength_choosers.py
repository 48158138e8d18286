"""Which DiffusionX strength predictors a server uses (`predictors` in its config): the shipped ones,
a folder, or "none" (fixed default strengths). Shipped ones that are missing are logged, and none
are used; a folder asked for by name must exist."""

from __future__ import annotations

import logging
from typing import Optional

log = logging.getLogger(__name__)


def choosers(spec: Optional[str]):
    """(edge chooser, cloud chooser), or (None, None) when asked for none or none is shipped."""
    from ecdiff.diffusionx.choosers import load_choosers

    if spec == "none":
        return None, None
    try:
        return load_choosers(spec)
    except FileNotFoundError as exc:
        if spec is not None:
            raise
        log.warning("no DiffusionX predictors (%s); using fixed default strengths", exc)
        return None, None
