"""Block-CV size from the residuals' spatial range: recovered on a simulated field of known range."""

import numpy as np
import pytest

from gee_alt.science.variogram import block_size_m, residual_range_m


def _field(range_m, n=150, seed=0):
    """Gaussian field with an exponential covariance of practical range ``range_m`` at random sites
    (Cholesky of the covariance: an independent simulation of the model the fit assumes)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 30_000, (n, 2))
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    cov = np.exp(-3 * d / range_m) + 1e-9 * np.eye(n)
    return xy, np.linalg.cholesky(cov) @ rng.standard_normal(n)


def test_range_of_a_simulated_field_is_recovered():
    est = []
    for seed in range(8):
        xy, v = _field(6000.0, seed=seed)
        est.append(residual_range_m(xy[:, 0], xy[:, 1], v)["range_m"])
    assert np.nanmedian(est) == pytest.approx(6000.0, rel=0.4)


def test_white_noise_falls_back_to_the_default():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 30_000, (120, 2))
    out = block_size_m(xy[:, 0], xy[:, 1], rng.standard_normal(120), default_m=5000.0)
    assert out["block_m"] == 5000.0 and out["source"].startswith("default")
    assert block_size_m([0, 1], [0, 1], [0.1, 0.2])["block_m"] == 5000.0  # too few sites
