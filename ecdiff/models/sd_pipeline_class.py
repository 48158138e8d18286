"""diffusers' pipeline classes (StableDiffusionPipeline, StableDiffusionXLPipeline), imported without transformers' torchvision notice.

Importing diffusers' pipeline module makes transformers resolve CLIPImageProcessor and
SiglipImageProcessor (for the safety checker and feature extractor, which we never build). Without
torchvision, transformers substitutes their PIL versions and logs a warning per class in every
process. Installing torchvision for that is no improvement: no image processor is ever used, and the
registry's build bundles CUDA libraries for a torch we do not run. So this module drops exactly that
notice, on the one logger that emits it; every other transformers message still shows.
"""

from __future__ import annotations

import logging
import re


class _TorchvisionFallbackNotice(logging.Filter):
    PATTERN = re.compile(r"`\w+ImageProcessor` requires torchvision \(not installed\); falling back to `\w+ImageProcessorPil`")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.PATTERN.match(record.getMessage())


logging.getLogger("transformers.utils.import_utils").addFilter(_TorchvisionFallbackNotice())

from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline  # noqa: E402  (after the filter, which must see the import)

__all__ = ["StableDiffusionPipeline", "StableDiffusionXLPipeline"]
