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


# ------------------------------------------------------------------ freezing index, frost number
#: Frost number at and above which ground is mapped as permafrost (Nelson & Outcalt 1987).
FROST_NUMBER_PERMAFROST = 0.5


def ddf_from_composites(lst_degc: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Freezing degree-days (°C·day, positive) = sum over composites of max(−LST, 0) x days."""
    lst = np.asarray(lst_degc, dtype="float64")
    d = np.asarray(days, dtype="float64").reshape((-1,) + (1,) * (lst.ndim - 1))
    return (np.clip(-lst, 0.0, None) * d).sum(axis=0)


def frost_number(ddf_degc_days: np.ndarray, ddt_degc_days: np.ndarray) -> np.ndarray:
    """Surface frost number F = √DDF / (√DDF + √DDT) (Nelson & Outcalt 1987, Arct. Alp. Res.
    19:279), dimensionless 0..1; NaN where either index is unknown or both are zero.

    With land-surface (skin) temperature as the forcing, the n-factors of both seasons (snow in
    winter, vegetation in summer) are those of the skin: F ≥ 0.5 means the skin spends more
    degree-days below than above 0 °C in the sense of the Stefan balance."""
    f = np.sqrt(np.clip(np.asarray(ddf_degc_days, "float64"), 0, None))
    t = np.sqrt(np.clip(np.asarray(ddt_degc_days, "float64"), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(f + t > 0, f / (f + t), np.nan)


# ------------------------------------------------------------------ seasons and sparse composites
def in_season(starts, days, start_mmdd: str, end_mmdd: str) -> np.ndarray:
    """Bool per composite: the composite's middle day falls in ``start_mmdd``..``end_mmdd`` (inclusive)."""
    import datetime as dt

    out = []
    for s, n in zip(starts, np.asarray(days, "float64"), strict=True):
        mid = s + dt.timedelta(days=float(n - 1) / 2.0)
        lo = dt.date(mid.year, int(start_mmdd[:2]), int(start_mmdd[3:5]))
        hi = dt.date(mid.year, int(end_mmdd[:2]), int(end_mmdd[3:5]))
        out.append(lo <= mid <= hi)
    return np.asarray(out, bool)


def before_split(starts, days, split_mmdd: str = "07-01") -> np.ndarray:
    """Bool per composite: its middle day lies before ``split_mmdd`` (the freezing season of
    year Y is the part of year Y−1 from the split on plus the part of year Y before it)."""
    import datetime as dt

    out = []
    for s, n in zip(starts, np.asarray(days, "float64"), strict=True):
        mid = s + dt.timedelta(days=float(n - 1) / 2.0)
        out.append(mid < dt.date(mid.year, int(split_mmdd[:2]), int(split_mmdd[3:5])))
    return np.asarray(out, bool)


def enough_valid(n_valid: np.ndarray, n_composites: int, min_valid_fraction: float) -> np.ndarray:
    """Pixels with at least ``min_valid_fraction`` of the season's composites valid (the EE
    engine's rule: ``n_obs >= min_valid_fraction x windows``)."""
    return np.asarray(n_valid) >= min_valid_fraction * n_composites


def fill_from_climatology(series: np.ndarray, climatology: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaN composites from the pixel's multi-year climatology plus its anomaly.

    ``series`` and ``climatology`` are ``(time, ...)`` (the climatology: per-pixel multi-year
    median of each composite). The anomaly (series − climatology) of the valid composites is
    interpolated linearly in time and held constant beyond the first/last valid one, and added to
    the climatology — so a season end without observations follows the pixel's usual seasonal
    course shifted by the year's anomaly, not the nearest value. Where the climatology itself is
    unknown the series is interpolated as in :func:`fill_gaps_in_time`. Returns
    ``(filled, n_valid)``; pixels with no valid composite stay NaN.
    """
    s = np.asarray(series, dtype="float64")
    if climatology is None:
        return fill_gaps_in_time(s)
    clim = np.asarray(climatology, dtype="float64")
    if clim.shape != s.shape:
        raise ValueError(f"climatology shape {clim.shape} != series shape {s.shape}")
    anom, n_valid = fill_gaps_in_time(s - clim)  # NaN where either is NaN
    out = clim + anom
    rest, _ = fill_gaps_in_time(np.where(np.isfinite(out), out, s))
    out = np.where(np.isfinite(out), out, rest)
    n_valid = np.isfinite(s).sum(axis=0)
    return np.where(n_valid > 0, out, np.nan), n_valid


# ------------------------------------------------------------------ thaw progress through the season
def ddt_fraction_by_doy(lst_degc: np.ndarray, starts, days) -> np.ndarray:
    """The share of the season's DDT reached by the end of each day of the year (366 values,
    day 1..366), as the spatial median over the pixels of ``lst_degc`` (``(composite, ...)``, gaps
    filled) of each pixel's cumulative DDT / its season DDT; linear within a composite.

    In-situ depths read before the end of thaw are calibrated against ``DDT x fraction(day)``."""
    lst = np.asarray(lst_degc, "float64").reshape(len(starts), -1)
    d = np.asarray(days, "float64")
    cum = np.cumsum(np.clip(lst, 0, None) * d[:, None], axis=0)
    ok = np.isfinite(cum[-1]) & (cum[-1] > 0)
    if not ok.any():
        return np.full(366, np.nan)
    frac = np.median(cum[:, ok] / cum[-1, ok], axis=1)
    first = starts[0].timetuple().tm_yday - 1  # the day before the first composite
    ends = [s.timetuple().tm_yday - 1 + float(n) for s, n in zip(starts, d, strict=True)]
    x = np.concatenate([[first], ends])
    y = np.concatenate([[0.0], frac])
    return np.interp(np.arange(1, 367, dtype="float64"), x, y, left=0.0, right=1.0)
