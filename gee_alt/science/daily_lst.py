"""Daily-mean land-surface temperature from MODIS day/night looks: one Terra-referenced record.

MOD11A2/MYD11A2 give, per 8-day window and sensor, the mean clear-sky day and night LST and the
mean local solar view time of each. (day + night) / 2 is not the daily mean: the overpasses do
not sit symmetrically on the diurnal cycle (Terra ~10:30/22:30, Aqua ~13:30/01:30), so the two
sensors read different "daily means" and a record that is Terra-only in 2000-2002 and Terra + Aqua
afterwards has a step. Here:

1. **Diurnal model** (:func:`diurnal_shape`): the shape of the diurnal cycle of Göttsche & Olesen
   (2001, *Remote Sens. Environ.* 76, 337-348; "GOT01"): a cosine by day with its maximum at
   :data:`T_MAX_H` solar time and its minimum at sunrise, then from :data:`DECAY_LEAD_H` before
   sunset an exponential decay to the next sunrise; its time constant follows from a smooth
   (C¹) join as in GOT01, its residual term ``δT`` from meeting the next morning's minimum. Day
   length from latitude and declination (Cooper 1969). The shape is fixed (no per-pixel fit):
   two looks of one sensor at known view times determine the daily mean ``m`` and half-range
   ``A`` of ``T(t) = m + A·s(t)`` (:func:`daily_mean_from_pair`).
2. **Cold outliers** (:func:`screen_cold_outliers`): undetected cloud reads too cold; a window
   whose daily mean falls more than ``max(min_drop_k, n_mad x robust sd)`` below the running
   median of its neighbours is dropped.
3. **Terra reference** (:func:`aqua_offset`, :func:`terra_referenced`): Aqua enters only after a
   per-pixel, per-window-of-year offset to Terra, the median of ``aqua - terra`` over every year
   where both exist (pooled over ±2 windows), so the record has no step when Aqua starts. Gaps
   are then filled from the pixel's climatology plus the year's anomaly (not interpolated: a
   record with fewer clear windows would otherwise read a lower DDT, a step of its own).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.optimize import brentq

from gee_alt.science.nanstats import nanmean_first_axis, nanmedian_first_axis

#: Local solar time of the diurnal maximum (h): 1-1.5 h after noon in GOT01's fits.
T_MAX_H = 13.0
#: The nocturnal decay starts this long before sunset (h) (GOT01: "t_s", around an hour before sunset).
DECAY_LEAD_H = 1.0


def day_length_h(doy, lat_deg: float) -> np.ndarray:
    """Hours from sunrise to sunset on day of year ``doy`` at ``lat_deg`` (Cooper 1969 declination)."""
    decl = np.radians(23.45) * np.sin(2 * np.pi * (284 + np.asarray(doy, "float64")) / 365.0)
    x = np.clip(-np.tan(np.radians(lat_deg)) * np.tan(decl), -1, 1)
    return 2 * np.degrees(np.arccos(x)) / 15.0


@lru_cache(maxsize=4096)
def got01_terms(day_len_q: int) -> dict[str, float]:
    """The constants of the GOT01 shape for a day length of ``day_len_q``/100 h (local solar
    hours): ``tr`` sunrise, ``ts`` start of the decay, ``omega`` (h), ``d_t``/``u``/``k`` of the
    night branch ``d_t + u·exp(−(t − ts)/k)``; ``mean`` and ``half_range`` of the raw shape on
    the 0.05 h table that normalises it (see :func:`_shape_table`). Earth Engine evaluates the
    same shape from these numbers (:mod:`gee_alt.engines.ee.daily_lst`)."""
    n = day_len_q / 100.0
    tr, ss = 12.0 - n / 2, 12.0 + n / 2
    omega = T_MAX_H - tr  # cosine minimum at sunrise
    ts = max(ss - DECAY_LEAD_H, T_MAX_H + 0.5)
    th = np.pi / omega * (ts - T_MAX_H)
    c = omega / (np.pi * np.sin(th))
    span = tr + 24.0 - ts
    # u = Ta·cos(th) − δT (Ta = 1): u(1 − exp(−span/(c u))) = 1 + cos(th) meets the next sunrise's minimum
    target = 1.0 + np.cos(th)
    u = brentq(lambda v: v * (1 - np.exp(-span / (c * v))) - target, 1e-6, 1e6)
    terms = {"tr": tr, "ts": ts, "omega": omega, "d_t": float(np.cos(th) - u), "u": float(u), "k": float(c * u)}
    s = _raw_shape(np.arange(0.0, 24.0, 0.05), terms)
    return {**terms, "mean": float(s.mean()), "half_range": float((s.max() - s.min()) / 2)}


def _raw_shape(h: np.ndarray, t_: dict) -> np.ndarray:
    t = np.where(h < t_["tr"], h + 24.0, h)  # the cycle from sunrise to the next sunrise
    day = np.cos(np.pi / t_["omega"] * (t - T_MAX_H))
    night = t_["d_t"] + t_["u"] * np.exp(-(t - t_["ts"]) / t_["k"])
    return np.where(t < t_["ts"], day, night)


@lru_cache(maxsize=4096)
def _shape_table(day_len_q: int) -> tuple[np.ndarray, np.ndarray]:
    """The zero-mean GOT01 shape on a 0.05 h grid for a day length of ``day_len_q``/100 h."""
    terms = got01_terms(day_len_q)
    h = np.arange(0.0, 24.0, 0.05)
    return h, (_raw_shape(h, terms) - terms["mean"]) / terms["half_range"]


def diurnal_shape(hours, doy, lat_deg: float) -> np.ndarray:
    """Zero-mean diurnal shape (unit half-range) at local solar ``hours`` on days ``doy``
    (broadcast together); NaN where ``hours`` is NaN."""
    hours, doy = np.broadcast_arrays(np.asarray(hours, "float64"), np.asarray(doy, "float64"))
    out = np.full(hours.shape, np.nan)
    q = np.rint(day_length_h(doy, lat_deg) * 100).astype(int)
    ok = np.isfinite(hours)
    for key in np.unique(q[ok]):
        sel = ok & (q == key)
        h, s = _shape_table(int(key))
        out[sel] = np.interp(np.mod(hours[sel], 24.0), h, s, period=24.0)
    return out


def daily_mean_from_pair(t_day, t_night, h_day, h_night, doy, lat_deg: float) -> np.ndarray:
    """Daily mean (°C) from one sensor's day and night LST (°C) at view times ``h_day``/``h_night``
    (local solar hours): solves ``T = m + A·s(h)`` for both looks; NaN unless both are valid."""
    s_d = diurnal_shape(h_day, doy, lat_deg)
    s_n = diurnal_shape(h_night, doy, lat_deg)
    den = s_d - s_n
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (np.asarray(t_night) * s_d - np.asarray(t_day) * s_n) / den
    return np.where(np.isfinite(m) & (np.abs(den) > 0.2), m, np.nan)


def screen_cold_outliers(series: np.ndarray, min_drop_k: float = 3.0, n_mad: float = 3.0) -> np.ndarray:
    """``series`` ``(time, ...)`` with cold outliers set to NaN: values below the running median
    of five neighbours (gaps left out) by more than ``max(min_drop_k, n_mad x 1.4826 x MAD)`` of
    the pixel's residuals (K)."""
    s = np.asarray(series, "float64")
    big = np.where(np.isfinite(s), s, np.nan)
    pad = np.concatenate([np.full((2, *s.shape[1:]), np.nan), big, np.full((2, *s.shape[1:]), np.nan)])
    windows = np.stack([pad[i : i + len(s)] for i in range(5)])
    med = nanmedian_first_axis(windows)
    res = s - med
    mad = 1.4826 * nanmedian_first_axis(np.abs(res - nanmedian_first_axis(res)))
    limit = np.maximum(min_drop_k, n_mad * np.nan_to_num(mad, nan=0.0))
    return np.where(res < -limit, np.nan, s)


def aqua_offset(terra: list[np.ndarray], aqua: list[np.ndarray], pool: int = 2) -> np.ndarray:
    """``(window, y, x)`` Aqua − Terra offset (K) per pixel and window of the year: the median of
    ``aqua − terra`` over every year where both have a daily mean, in that window and the
    ``pool`` windows either side (the offset follows the season: it grows with the diurnal
    range); 0 where the two never overlap. ``terra``/``aqua``: per year ``(window, y, x)`` (°C)."""
    n_win = max(t.shape[0] for t in terra)
    shape = terra[0].shape[1:]
    diffs = np.full((len(terra), n_win, *shape), np.nan)
    for i, (t, a) in enumerate(zip(terra, aqua, strict=True)):
        diffs[i, : t.shape[0]] = a - t
    off = np.stack(
        [nanmedian_first_axis(diffs[:, max(0, k - pool) : k + pool + 1].reshape(-1, *shape)) for k in range(n_win)]
    )
    return np.nan_to_num(off, nan=0.0)


def terra_referenced(terra: np.ndarray, aqua: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """One record (°C, ``(window, y, x)``): Terra where only Terra, Aqua − offset where only Aqua,
    their mean where both."""
    a = aqua - offset[: aqua.shape[0]]
    return nanmean_first_axis(np.stack([terra, a]))
