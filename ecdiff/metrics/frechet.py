"""Frechet distance between Gaussians, and an FID computed on a scorer's features.

    d^2 = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})

(Dowson & Landau 1982; the formula of Heusel et al.'s FID.) The matrix square root is
scipy.linalg.sqrtm in float64; its tiny imaginary part from round-off is dropped, and a singular
product is regularised by adding eps * I to both covariances, as pytorch-fid does.

An FID on the alignment scorer's features is NOT comparable to Inception FID: the features, their
dimension and the data they were trained on are different. It only ranks methods on one pair.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from .scorer import Scorer


def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [N, D] features, float64."""
    f = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be [N >= 2, D], got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or infinite values")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape}/{mu2.shape}, sigma {sigma1.shape}/{sigma2.shape}")
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def scorer_fid(scorer: Scorer, images: torch.Tensor, reference: torch.Tensor) -> float:
    """Frechet distance between the scorer's features of `images` and of `reference` images."""
    return frechet_distance(*gaussian_stats(scorer.features(images)), *gaussian_stats(scorer.features(reference)))
