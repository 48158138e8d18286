"""diffusers' pipeline classes (StableDiffusionPipeline, StableDiffusionXLPipeline, CogVideoXPipeline),
imported without transformers' torchvision notice.

Importing diffusers' pipeline module makes transformers resolve CLIPImageProcessor and
SiglipImageProcessor (for the safety checker and feature extractor, which we never build). Without
torchvision, transformers substitutes their PIL versions and logs a warning per class in every
process. Installing torchvision for that is no improvement: no image processor is ever used, and the
registry's build bundles CUDA libraries for a torch we do not run. So this module drops exactly that
notice, on the one logger that emits it; every other transformers message still shows.

Likewise diffusers warns on every `.to(dtype)` of a model that its float32-only modules might be cast,
even when that list is empty (every UNet and VAE we build): that empty-list warning is dropped too.
"""

from __future__ import annotations

import logging
import re


class _TorchvisionFallbackNotice(logging.Filter):
    PATTERN = re.compile(r"`\w+ImageProcessor` requires torchvision \(not installed\); falling back to `\w+ImageProcessorPil`")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.PATTERN.match(record.getMessage())


class _EmptyKeepInFloat32Notice(logging.Filter):
    PATTERN = re.compile(r"There are modules in \w+ that should be kept in float32: \[\]\.")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.PATTERN.match(record.getMessage())


logging.getLogger("transformers.utils.import_utils").addFilter(_TorchvisionFallbackNotice())
logging.getLogger("diffusers.models.modeling_utils").addFilter(_EmptyKeepInFloat32Notice())

from diffusers import CogVideoXPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline  # noqa: E402  (after the filter, which must see the import)

__all__ = ["CogVideoXPipeline", "StableDiffusionPipeline", "StableDiffusionXLPipeline"]
