"""Thawing degree-days from surface-temperature composites (pure numpy, shared by both engines)."""

from __future__ import annotations

import numpy as np


def ddt_from_composites(lst_degc: np.ndarray, days: np.ndarray) -> np.ndarray:
    """DDT (°C·day) = sum over composites of max(LST, 0 °C) x composite length (days).

    ``lst_degc`` is ``(composite, ...)``; ``days`` is ``(composite,)``. A pixel with any NaN
    composite gets NaN (fill gaps before, see :func:`fill_gaps_in_time`).
    """
    lst = np.asarray(lst_degc, dtype="float64")
    d = np.asarray(days, dtype="float64").reshape((-1,) + (1,) * (lst.ndim - 1))
    return (np.clip(lst, 0.0, None) * d).sum(axis=0)


def ddt_spread(lst_degc: np.ndarray, days: np.ndarray, sigma_degc: np.ndarray) -> np.ndarray:
    """1-sigma DDT spread (°C·day) from per-composite LST errors ``sigma_degc`` (°C, one per composite).

    Errors of neighbouring composites of one year are treated as fully correlated (the same
    model made them), so spreads add linearly over the composites that are thawed.
    """
    lst = np.asarray(lst_degc, dtype="float64")
    shape = (-1,) + (1,) * (lst.ndim - 1)
    w = np.asarray(days, "float64").reshape(shape) * np.asarray(sigma_degc, "float64").reshape(shape)
    return (w * (lst > 0)).sum(axis=0)


def fill_gaps_in_time(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaN composites of each pixel by linear interpolation in time (nearest at the ends).

    ``series`` is ``(time, ...)``. Returns ``(filled, n_valid)``; pixels with no valid
    composite stay NaN. Linear interpolation across a gap smooths weather within it: over a
    thaw season this biases DDT by well under 1 % when gaps are short and scattered.
    """
    s = np.asarray(series, dtype="float64")
    flat = s.reshape(s.shape[0], -1).copy()
    valid = np.isfinite(flat)
    n_valid = valid.sum(axis=0)
    t = np.arange(flat.shape[0], dtype="float64")
    for j in np.nonzero((n_valid > 0) & (n_valid < flat.shape[0]))[0]:
        v = valid[:, j]
        flat[:, j] = np.interp(t, t[v], flat[v, j])
    return flat.reshape(s.shape), n_valid.reshape(s.shape[1:])
