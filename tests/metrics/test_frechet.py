import numpy as np
import pytest
import torch

from ecdiff.metrics import frechet_distance, gaussian_stats, scorer_fid


def test_identical_gaussians_are_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    sigma = a @ a.T + np.eye(5)
    assert frechet_distance(np.ones(5), sigma, np.ones(5), sigma) == pytest.approx(0.0, abs=1e-8)


def test_diagonal_gaussians_closed_form():
    # Commuting (diagonal) covariances: d^2 = |dmu|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = 1.0 + 0.0 + 4.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0.5) ** 2
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_rotated_covariance_closed_form():
    # sigma2 = R sigma1 R^T with sigma1 = diag(1, 4) and a 90-degree rotation gives diag(4, 1):
    # d^2 = (1 - 2)^2 + (2 - 1)^2 = 2, with equal means.
    r = np.array([[0.0, -1.0], [1.0, 0.0]])
    s1 = np.diag([1.0, 4.0])
    assert frechet_distance(np.zeros(2), s1, np.zeros(2), r @ s1 @ r.T) == pytest.approx(2.0, rel=1e-10)


def test_gaussian_stats_and_scorer_fid():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(400, 3))
    mu, sigma = gaussian_stats(torch.from_numpy(f))
    np.testing.assert_allclose(mu, f.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(f.T), rtol=0, atol=1e-12)

    class ShiftScorer:  # features = per-channel means, shifted images shift the features
        def features(self, images):
            return images.mean(dim=(2, 3))

        def fidelity(self, images, prompts):
            return [0.0] * len(prompts)

    imgs = torch.rand(50, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # Shifting every feature by 0.1 moves the mean by 0.1 per dimension and keeps the covariance: d^2 = 3 * 0.01.
    assert scorer_fid(ShiftScorer(), imgs + 0.1, imgs) == pytest.approx(0.03, rel=1e-6)


def test_bad_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(np.zeros((1, 3)))
