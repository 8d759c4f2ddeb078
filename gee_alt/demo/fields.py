"""Seeded random fields for the synthetic worlds (numpy/scipy only; no engine science).

Every random draw of a world comes from :func:`rng_for` with the world's seed and a fixed key per
purpose, so each quantity can be regenerated on its own and the worlds are deterministic.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """A generator for one purpose of one world: ``SeedSequence([seed, *keys])``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def smooth_field(shape: tuple[int, ...], length_px: float, rng: np.random.Generator) -> np.ndarray:
    """A zero-mean, unit-std Gaussian random field with correlation length ``length_px`` pixels
    (periodic boundaries; over the last two axes if ``shape`` has three)."""
    sigma = (0.0, length_px, length_px) if len(shape) == 3 else length_px
    f = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    axes = (-2, -1)
    f = f - f.mean(axis=axes, keepdims=True)
    return f / (f.std(axis=axes, keepdims=True) + 1e-12)


def fractal_surface(shape: tuple[int, int], beta: float, rng: np.random.Generator) -> np.ndarray:
    """A zero-mean, unit-std fractal surface with power spectrum ~ k^-beta."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2.0)
    amp[0, 0] = 0.0
    spec = amp * (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape))
    f = np.fft.irfft2(spec, s=shape)
    return (f - f.mean()) / f.std()
