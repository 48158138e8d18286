"""Image-quality metrics: PSNR and SSIM against a reference, LPIPS when its weights exist locally,
Frechet distance on feature sets, and the scorer protocol behind prompt fidelity and scorer-FID.

Every metric takes images as float tensors in [0, 1]: [N, C, H, W] for images, or [N, F, C, H, W]
for videos, which are scored per frame and averaged per video. See docs/evaluation.md.
"""

from .convert import pil_to_tensor, stack_images
from .frechet import frechet_distance, gaussian_stats, scorer_fid
from .lpips import LPIPSUnavailable, lpips_or_none
from .psnr import psnr
from .scorer import Scorer
from .ssim import ssim

__all__ = [
    "LPIPSUnavailable",
    "Scorer",
    "frechet_distance",
    "gaussian_stats",
    "lpips_or_none",
    "pil_to_tensor",
    "psnr",
    "scorer_fid",
    "ssim",
    "stack_images",
]
