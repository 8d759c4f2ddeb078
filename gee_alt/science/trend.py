"""Per-pixel trends (Theil–Sen slope, Mann–Kendall test), area-mean series, disturbance contrast.

Everything works on a ``(year, y, x)`` stack. The per-pixel statistics are vectorised over
pixels (all year pairs at once) and run chunk by chunk over rows, so a full study grid
(≈ 3200 × 2050 px × 25 years) runs in bounded memory: :func:`trend_cube` accepts a numpy array,
a ``numpy.memmap``, an xarray DataArray (lazy/on-disk is fine) or a reader callback
``read_rows(row0, row1) -> (n_years, row1 - row0, width)``, and hands results to a writer
callback or fills (memmap-able) output arrays.

Units: the Theil–Sen slope is in input units per year (m/yr for ALT in m; multiply by 100
for cm/yr). Years need not be contiguous; missing years are NaN.

Mann–Kendall: ``S = Σ_{i<j} sign(x_j − x_i)`` over valid years,
``Var(S) = [n(n−1)(2n+5) − Σ_g t_g(t_g−1)(2t_g+5)] / 18`` (tie groups g of size t_g),
``Z = (S − sign(S)) / √(Var(S)·f)`` (continuity correction, default) and two-sided
``p = 2·(1 − Φ(|Z|))``. Without the continuity correction, with distinct years and ``f = 1``
this equals the asymptotic p-value of Kendall's tau against time (``scipy.stats.kendalltau``).

Serial correlation (``serial=``): yearly ALT inherits the year-to-year persistence of the
climate, and the plain MK test assumes independent years (AR(1) ρ = 0.4 → ≈ 17 % false
positives at α = 0.05 with 25 years). The variance of S is inflated by the Hamed & Rao (1998,
*J. Hydrol.* 204:182–196) factor
``f = 1 + 2/(n(n−1)(n−2)) · Σ_{k=1}^{n−2} (n−k)(n−k−1)(n−k−2) ρ_k``
with the rank autocorrelations ρ_k of the Theil–Sen-detrended series modelled as AR(1),
``ρ_k = ρ^k`` (Hamed & Rao keep only lags significant at 5 %, which with 10–30 years misses
most of ρ = 0.4 and still gives ≈ 16 % false positives). ρ is the lag-1 autocorrelation of the
detrended ranks, bias-corrected for the short series, ``ρ = (n·r₁ + 2)/(n − 4)`` (the
Kendall/Marriott–Pope small-sample bias of r₁ plus the mean and slope removed), clipped to
[0, 0.95]. ``serial="pixel"``: ρ of each series (one series: ≈ 7 % false positives at nominal
5 %, ρ = 0.4, n = 25 — ρ of a single short series is noisy); ``serial="pooled"`` (maps,
:func:`trend_cube`): one ρ for the map, the median of the pixels' corrected estimates (a
regional AR(1) coefficient: pixels share the climate series; simulated 4–5 % at ρ = 0–0.6,
n = 10–30); a number: that ρ; ``"none"``: f = 1 (the old independent-years test).

Few years: with fewer than :data:`EXACT_MK_MAX_N` + 1 valid years (n < 8) the p-value is taken
from the exact permutation distribution of S (no ties, no serial correction — too few years to
estimate ρ), never the normal approximation. Pixels with fewer than ``min_valid_years`` valid
years get NaN.

Many pixels: a "significant" map tested at α pixel by pixel has no false-discovery control;
:func:`fdr_bh` gives the Benjamini–Hochberg (1995) rejections at a false-discovery rate q
(valid under positive dependence, Benjamini & Yekutieli 2001; Wilks 2016, *BAMS* 97:2263).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

from gee_alt.errors import GeeAltError

__all__ = [
    "pair_indices",
    "theil_sen_mk",
    "trend_cube",
    "area_mean_series",
    "series_trend",
    "ring_mask",
    "disturbance_contrast",
    "rasterize_geojson",
    "effective_sample_size",
    "fdr_bh",
    "mk_exact_p",
    "serial_rho",
    "hamed_rao_factor",
    "mk_p_value",
    "pooled_serial_rho",
]

EXACT_MK_MAX_N = 7  # series with at most this many valid years get the exact MK distribution
SERIAL_RHO_MAX = 0.95


# ---------------------------------------------------------------- MK significance helpers


def _mahonian(n: int) -> np.ndarray:
    """Counts of permutations of n items by number of inversions (0 … n(n−1)/2)."""
    c = np.array([1.0])
    for m in range(2, n + 1):
        c = np.convolve(c, np.ones(m))
    return c


def mk_exact_p(s, n) -> np.ndarray:
    """Two-sided exact p-value ``P(|S| ≥ |s|)`` of Mann–Kendall S for ``n`` distinct values
    (all n! orderings equally likely; ``S = n(n−1)/2 − 2·inversions``). ``n`` ≤ 12."""
    s = np.asarray(s, float)
    n = np.broadcast_to(np.asarray(n, int), s.shape)
    out = np.full(s.shape, np.nan)
    for nn in np.unique(n):
        if nn < 2:
            continue
        c = _mahonian(int(nn))
        prob = c / c.sum()
        s_vals = nn * (nn - 1) / 2 - 2.0 * np.arange(c.size)
        sel = (n == nn) & np.isfinite(s)
        a = np.abs(s[sel])[:, None]
        out[sel] = np.minimum((prob[None, :] * (np.abs(s_vals)[None, :] >= a - 1e-9)).sum(axis=1), 1.0)
    return out


def hamed_rao_factor(rho, n) -> np.ndarray:
    """Hamed & Rao (1998) variance-inflation factor of MK S for AR(1) rank autocorrelation
    ``rho_k = rho**k``: ``1 + 2/(n(n−1)(n−2)) Σ_{k=1}^{n−2} (n−k)(n−k−1)(n−k−2) rho^k``."""
    rho = np.asarray(rho, float)
    n = np.asarray(n, float)
    rho, n = np.broadcast_arrays(rho, n)
    out = np.ones(rho.shape)
    r = np.clip(np.nan_to_num(rho, nan=0.0), 0.0, SERIAL_RHO_MAX)
    for nn in np.unique(n[np.isfinite(n)]):
        if nn < 3:
            continue
        k = np.arange(1, int(nn) - 1, dtype=float)
        w = (nn - k) * (nn - k - 1) * (nn - k - 2)
        sel = n == nn
        out[sel] = 1.0 + 2.0 / (nn * (nn - 1) * (nn - 2)) * (w[None, :] * r[sel][:, None] ** k[None, :]).sum(axis=1)
    return out


def serial_rho(x, t, slope) -> np.ndarray:
    """Bias-corrected lag-1 autocorrelation of the ranks of each Theil–Sen-detrended series.

    ``x`` ``(n_pix, n_years)`` with NaN gaps (lag 1 = consecutive entries both valid), ``slope``
    per pixel. ``rho = (n·r1 + 2)/(n − 4)`` (small-sample bias of r1 with mean and slope
    removed), NaN for fewer than 6 valid years; not clipped (see :func:`hamed_rao_factor`).
    """
    x = np.asarray(x, float)
    t = np.asarray(t, float)
    d = x - np.asarray(slope, float)[:, None] * t[None, :]
    fin = np.isfinite(d)
    n = fin.sum(axis=1).astype(float)
    order = np.argsort(np.where(fin, d, np.inf), axis=1, kind="stable")
    ranks = np.empty_like(d)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(d.shape[1], dtype=float), d.shape), axis=1)
    ranks = np.where(fin, ranks, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_rank = (n - 1.0) / 2.0  # ranks 0 … n−1 of the valid years
        c = ranks - mean_rank[:, None]
        c0 = np.where(fin, c, 0.0)
        den = (c0 * c0).sum(axis=1)
        r1 = (c0[:, :-1] * c0[:, 1:]).sum(axis=1) / den
        rho = (n * r1 + 2.0) / (n - 4.0)
    return np.where((n >= 6) & (den > 0), rho, np.nan)


def mk_p_value(s, var_s, n_valid, rho=None, continuity: bool = True) -> dict[str, np.ndarray]:
    """``{"p_value", "z", "factor"}`` of Mann–Kendall S: normal approximation with the variance
    inflated by :func:`hamed_rao_factor` (``rho`` None or NaN → factor 1), exact distribution
    (:func:`mk_exact_p`) for ``n_valid`` ≤ :data:`EXACT_MK_MAX_N`."""
    s = np.asarray(s, float)
    var = np.asarray(var_s, float)
    n = np.asarray(n_valid, float)
    f = np.ones(s.shape) if rho is None else hamed_rao_factor(np.broadcast_to(np.asarray(rho, float), s.shape), n)
    v = var * f
    with np.errstate(invalid="ignore", divide="ignore"):
        num = s - np.sign(s) if continuity else s
        z = np.where(v > 0, num / np.sqrt(np.where(v > 0, v, 1.0)), 0.0)
    p = 2.0 * stats.norm.sf(np.abs(z))
    small = (n <= EXACT_MK_MAX_N) & (n >= 2)
    if np.any(small):
        p = np.where(small, mk_exact_p(np.where(small, s, 0.0), np.where(small, n, 2).astype(int)), p)
    return {"p_value": p, "z": z, "factor": f}


def fdr_bh(p_values, q: float = 0.05) -> np.ndarray:
    """Benjamini–Hochberg rejections (bool, same shape) at false-discovery rate ``q``; NaN → False.

    Sort the m finite p-values, find the largest k with ``p_(k) ≤ k·q/m``, reject the k smallest.
    """
    p = np.asarray(p_values, float)
    out = np.zeros(p.shape, bool)
    fin = np.isfinite(p)
    m = int(fin.sum())
    if m == 0:
        return out
    pv = p[fin]
    order = np.argsort(pv, kind="stable")
    ok = pv[order] <= q * np.arange(1, m + 1) / m
    if ok.any():
        k = int(np.nonzero(ok)[0].max()) + 1
        rej = np.zeros(m, bool)
        rej[order[:k]] = True
        out[fin] = rej
    return out


# ---------------------------------------------------------------- per-pixel statistics (vectorised)


def pair_indices(n_years: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(i, j)`` of all year pairs with ``i < j``."""
    i, j = np.triu_indices(n_years, k=1)
    return i, j


def theil_sen_mk(
    values, years, min_valid_years: int = 10, continuity: bool = True, serial="none"
) -> dict[str, np.ndarray]:
    """Theil–Sen slope and Mann–Kendall test along axis 0 of ``values`` (``(n_years, ...)``).

    Returns float32 arrays of the trailing shape: ``slope`` (units/yr), ``p_value`` (two-sided),
    ``z``, ``s`` (Kendall S), ``var_s`` (tie-corrected Var(S) before any serial correction),
    ``rho`` (bias-corrected lag-1 rank autocorrelation of the detrended series, NaN < 6 years)
    and ``n_valid`` (int16). ``serial``: ``"none"`` (independent years), ``"pixel"`` (each
    series' own ρ) or a number (that ρ for all) — see the module docstring. Pixels with fewer than
    ``min_valid_years`` finite values get NaN slope/p/z/s. Memory: about
    ``12 · n_pairs · n_pixels`` bytes of temporaries (n_pairs = n_years·(n_years−1)/2).
    """
    v = np.asarray(values, dtype=np.float32)
    t = np.asarray(years, dtype=np.float64)
    if v.shape[0] != t.size:
        raise ValueError(f"values has {v.shape[0]} years along axis 0, years has {t.size}")
    if np.unique(t).size != t.size:
        raise ValueError("years must be distinct")
    trailing = v.shape[1:]
    x = v.reshape(t.size, -1).T  # (n_pix, n_years) view/copy
    n_pix = x.shape[0]
    fin = np.isfinite(x)
    n_valid = fin.sum(axis=1)
    i, j = pair_indices(t.size)
    dt = (t[j] - t[i]).astype(np.float32)
    # pair differences (n_pix, n_pairs), NaN where a year is missing: built pair by pair on contiguous
    # year rows, then transposed once (much faster than gathering columns of x)
    v2 = v.reshape(t.size, -1)
    d_t = np.empty((i.size, n_pix), np.float32)
    for p_ in range(i.size):
        np.subtract(v2[j[p_]], v2[i[p_]], out=d_t[p_])
    diff = np.ascontiguousarray(d_t.T)
    del d_t
    # Mann-Kendall S: comparisons with NaN are False, so no NaN-aware sum (and no copy) is needed
    s = (np.count_nonzero(diff > 0, axis=1) - np.count_nonzero(diff < 0, axis=1)).astype(np.float64)
    # tie term: only pixels with a repeated valid value need the tie-group sizes (fast path)
    xs = np.sort(x, axis=1)
    has_tie = np.any(xs[:, 1:] == xs[:, :-1], axis=1)
    del xs
    tie = np.zeros(n_pix, np.float64)
    if has_tie.any():
        eq = (diff[has_tie] == 0).astype(np.float32)  # tied valid pairs
        inc = np.zeros((t.size, i.size), np.float32)
        inc[i, np.arange(i.size)] = 1.0
        inc[j, np.arange(i.size)] = 1.0
        c = 1.0 + eq @ inc.T  # (n_tied_pix, n_years): size of each value's tie group
        del eq
        tie[has_tie] = np.where(fin[has_tie], (c - 1.0) * (2.0 * c + 5.0), 0.0).sum(axis=1, dtype=np.float64)
    n = n_valid.astype(np.float64)
    var = (n * (n - 1.0) * (2.0 * n + 5.0) - tie) / 18.0
    # Theil-Sen: median of pair slopes, NaN sorted last, median of the first k valid per pixel
    # (k = n_valid (n_valid - 1) / 2: the pairs with both years valid)
    diff /= dt
    diff.sort(axis=1)
    k = n_valid * (n_valid - 1) // 2
    lo = np.clip((k - 1) // 2, 0, None)
    hi = np.clip(k // 2, 0, None)
    rows = np.arange(n_pix)
    slope = 0.5 * (diff[rows, np.minimum(lo, diff.shape[1] - 1)] + diff[rows, np.minimum(hi, diff.shape[1] - 1)])
    del diff
    rho = serial_rho(x, t, slope)
    if isinstance(serial, str):
        if serial not in ("none", "pixel"):
            raise ValueError(f"serial must be 'none', 'pixel' or a number, got {serial!r}")
        rho_use = None if serial == "none" else rho
    else:
        rho_use = float(serial)
    mk = mk_p_value(s, var, n_valid, rho_use, continuity)
    bad = n_valid < max(int(min_valid_years), 2)
    out = {"slope": slope, "p_value": mk["p_value"], "z": mk["z"], "s": s, "var_s": var, "rho": rho}
    for key in out:
        a = np.asarray(out[key], dtype=np.float32)
        a[bad] = np.nan
        out[key] = a.reshape(trailing)
    out["n_valid"] = n_valid.astype(np.int16).reshape(trailing)
    return out


# ---------------------------------------------------------------- chunked driver


def _as_reader(cube, var: str | None):
    """(reader(row0, row1) -> (T, r, W) float32, n_rows, n_cols) for array / memmap / xarray inputs."""
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        xr = None
    if xr is not None and isinstance(cube, xr.Dataset):
        if var is None:
            if len(cube.data_vars) != 1:
                raise GeeAltError(f"cube has several variables ({', '.join(map(str, cube.data_vars))}); pass var=")
            var = next(iter(cube.data_vars))
        cube = cube[var]
    if xr is not None and isinstance(cube, xr.DataArray):
        da = cube.transpose("year", "y", "x") if set(cube.dims) == {"year", "y", "x"} else cube
        if da.ndim != 3:
            raise GeeAltError(f"trend needs a (year, y, x) cube, got dims {da.dims}")
        return (lambda r0, r1: np.asarray(da[:, r0:r1, :].values, np.float32)), da.shape[1], da.shape[2]
    a = cube
    if not hasattr(a, "shape") or len(a.shape) != 3:
        raise GeeAltError("trend needs a (year, y, x) array, memmap, xarray cube or a reader callback")
    return (lambda r0, r1: np.asarray(a[:, r0:r1, :], np.float32)), a.shape[1], a.shape[2]


def rows_per_chunk_for(n_years: int, width: int, mem_budget_mb: float = 256.0) -> int:
    """Rows per chunk so the pair temporaries (~16 bytes per pair and pixel) fit ``mem_budget_mb``."""
    n_pairs = max(n_years * (n_years - 1) // 2, 1)
    per_row = 16.0 * n_pairs * width
    return max(1, int(mem_budget_mb * 1e6 // per_row))


def trend_cube(
    cube,
    years,
    *,
    var: str | None = None,
    shape_yx: tuple[int, int] | None = None,
    min_valid_years: int = 10,
    continuity: bool = True,
    rows_per_chunk: int | None = None,
    mem_budget_mb: float = 256.0,
    writer: Callable | None = None,
    out: dict | None = None,
    progress: Callable | None = None,
    n_threads: int = 2,
    serial="pooled",
) -> dict | None:
    """Theil–Sen slope and Mann–Kendall p per pixel of a ``(year, y, x)`` cube, chunked over rows.

    ``cube``: numpy array / memmap, xarray DataArray or Dataset (``var``), or a callable
    ``read_rows(row0, row1)`` returning ``(n_years, rows, width)`` (then ``shape_yx`` is required).
    Results go to ``writer(row0, row1, result_dict)`` if given (returns None), else into ``out``
    (dict of preallocated ``(H, W)`` arrays for some of ``slope``, ``p_value``, ``n_valid``, ``z``,
    ``s`` — e.g. memmaps), else into new float32 arrays that are returned.
    Chunks are computed on ``n_threads`` threads (results identical to one thread).
    Peak memory ≈ ``n_threads`` × (one input chunk + ``mem_budget_mb``) (+ outputs when held in memory).

    ``serial="pooled"`` (default) corrects MK for serial correlation with one map-wide ρ
    (:func:`pooled_serial_rho`, from up to 64 evenly spaced rows, read first); the ρ used is
    returned as ``out["serial_rho"]`` (a float) when the outputs are returned. ``"pixel"``,
    ``"none"`` or a number as in :func:`theil_sen_mk`.
    """
    years = np.asarray(years)
    if callable(cube) and not hasattr(cube, "shape"):
        if shape_yx is None:
            raise GeeAltError("trend_cube with a reader callback needs shape_yx=(height, width)")
        reader, h, w = cube, int(shape_yx[0]), int(shape_yx[1])
    else:
        reader, h, w = _as_reader(cube, var)
    step = rows_per_chunk or rows_per_chunk_for(years.size, w, mem_budget_mb)
    rho_used = None
    if isinstance(serial, str) and serial == "pooled":
        rho_used = pooled_serial_rho(reader, h, w, years, min_valid_years=min_valid_years)
        serial = rho_used
    fresh = writer is None and out is None
    if writer is None and out is None:
        out = {
            "slope": np.full((h, w), np.nan, np.float32),
            "p_value": np.full((h, w), np.nan, np.float32),
            "n_valid": np.zeros((h, w), np.int16),
        }

    def consume(r0: int, r1: int, res: dict) -> None:
        if writer is not None:
            writer(r0, r1, res)
        else:
            for key, arr in out.items():
                arr[r0:r1] = res[key]
        if progress is not None:
            progress(r1, h)

    def compute(block):
        return theil_sen_mk(block, years, min_valid_years=min_valid_years, continuity=continuity, serial=serial)

    # Chunks are read in order on this thread and computed on ``n_threads`` threads (numpy releases
    # the GIL); results are consumed in row order, with at most ``n_threads`` chunks in flight.
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, n_threads)) as pool:
        pending: deque = deque()
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            block = reader(r0, r1)
            if block.shape != (years.size, r1 - r0, w):
                raise GeeAltError(
                    f"reader returned shape {block.shape} for rows {r0}:{r1}, expected {(years.size, r1 - r0, w)}"
                )
            pending.append((r0, r1, pool.submit(compute, block)))
            del block
            while len(pending) >= max(1, n_threads):
                a, b, fut = pending.popleft()
                consume(a, b, fut.result())
        while pending:
            a, b, fut = pending.popleft()
            consume(a, b, fut.result())
    if fresh:
        out["serial_rho"] = rho_used
    return None if writer is not None else out


def pooled_serial_rho(reader, h: int, w: int, years, *, min_valid_years: int = 10, max_rows: int = 64) -> float:
    """Map-wide AR(1) coefficient for the MK serial correction: the median of the pixels'
    bias-corrected detrended-rank lag-1 autocorrelations (:func:`serial_rho`) over up to
    ``max_rows`` evenly spaced rows, clipped to [0, 0.95]; 0 when no pixel has ≥ 6 valid years."""
    years = np.asarray(years)
    rows = np.unique(np.linspace(0, h - 1, min(h, max_rows)).round().astype(int))
    vals = []
    for r in rows:
        res = theil_sen_mk(reader(int(r), int(r) + 1), years, min_valid_years=min(min_valid_years, years.size))
        rr = res["rho"].ravel()
        vals.append(rr[np.isfinite(rr)])
    v = np.concatenate(vals) if vals else np.array([])
    if v.size == 0:
        return 0.0
    return float(np.clip(np.median(v), 0.0, SERIAL_RHO_MAX))


# ---------------------------------------------------------------- area means and series trends


def area_mean_series(
    cube, years, mask=None, *, var: str | None = None, level: float = 0.95, n_eff=None, rows_per_chunk: int = 256
) -> dict:
    """Yearly mean over valid pixels (inside ``mask`` if given) with a CI, chunked over rows.

    Returns lists: ``years``, ``mean``, ``sd`` (spatial sd), ``n`` (valid pixels), ``ci_lo``,
    ``ci_hi`` where the CI is ``mean ± t·sd/√n_eff``. ``n_eff`` (number or per-year array)
    defaults to ``n``; because neighbouring pixels are correlated that is a *lower bound* on
    the CI width — pass an effective sample size (e.g. from :func:`effective_sample_size`)
    for an honest interval.
    """
    years = np.asarray(years)
    if callable(cube) and not hasattr(cube, "shape"):
        raise GeeAltError("area_mean_series needs an array or xarray cube")
    reader, h, w = _as_reader(cube, var)
    m = None if mask is None else np.asarray(mask, bool)
    if m is not None and m.shape != (h, w):
        raise GeeAltError(f"mask shape {m.shape} != cube (y, x) {(h, w)}")
    s1 = np.zeros(years.size)
    s2 = np.zeros(years.size)
    cnt = np.zeros(years.size)
    for r0 in range(0, h, rows_per_chunk):
        r1 = min(h, r0 + rows_per_chunk)
        b = reader(r0, r1).astype(np.float64)
        ok = np.isfinite(b)
        if m is not None:
            ok &= m[None, r0:r1]
        b = np.where(ok, b, 0.0)
        s1 += b.sum(axis=(1, 2))
        s2 += (b * b).sum(axis=(1, 2))
        cnt += ok.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        sd = np.sqrt(np.maximum(s2 / cnt - mean**2, 0.0) * cnt / np.maximum(cnt - 1, 1))
        ne = cnt if n_eff is None else np.broadcast_to(np.asarray(n_eff, float), cnt.shape)
        tq = stats.t.ppf(0.5 + level / 2.0, np.maximum(ne - 1, 1))
        half = tq * sd / np.sqrt(ne)
    half = np.where(cnt >= 2, half, np.nan)
    mean = np.where(cnt > 0, mean, np.nan)
    return {
        "years": [int(y) for y in years],
        "mean": mean.tolist(),
        "sd": sd.tolist(),
        "n": cnt.astype(int).tolist(),
        "ci_lo": (mean - half).tolist(),
        "ci_hi": (mean + half).tolist(),
        "level": level,
    }


def series_trend(years, values, level: float = 0.95, *, serial="pixel", rel_scale_sd: float = 0.0) -> dict:
    """Theil–Sen slope (units/yr) with its CI and the Mann–Kendall p of one series (NaN skipped).

    The error model is the series' own: MK p with the Hamed–Rao AR(1) correction (``serial`` as
    in :func:`theil_sen_mk`; ``"pixel"`` = this series' own ρ), and Sen's (1968) slope CI from the
    ordered pair slopes with ranks ``(N ∓ z·√(Var(S)·f))/2`` — the same serial-correlation
    inflation ``f``, so autocorrelated years widen the CI. ``rel_scale_sd``: relative sd of a
    multiplicative error common to the whole series (for ALT = E·√DDT the calibration's
    ``se(E)/E``: it scales every year's ALT and therefore the slope); it is added in quadrature,
    ``sd_total² = sd_Sen² + (slope·rel_scale_sd)²`` with ``sd_Sen = (hi − lo)/(2z)``.
    Returns ``slope``, ``intercept``, ``slope_lo``, ``slope_hi`` (with the scale part),
    ``slope_lo_sen``/``slope_hi_sen`` (serial-corrected Sen CI alone), ``p_value``, ``rho``,
    ``variance_factor``, ``n``.
    """
    t = np.asarray(years, float)
    y = np.asarray(values, float)
    ok = np.isfinite(t) & np.isfinite(y)
    nan = float("nan")
    if ok.sum() < 3:
        return {
            "slope": nan,
            "slope_lo": nan,
            "slope_hi": nan,
            "intercept": nan,
            "p_value": nan,
            "n": int(ok.sum()),
        }
    t, y = t[ok], y[ok]
    n = t.size
    mk = theil_sen_mk(y[:, None], t, min_valid_years=3, serial=serial)
    slope = float(mk["slope"][0])
    intercept = float(np.median(y) - slope * np.median(t))  # scipy.stats.theilslopes' convention
    fac = (
        float(
            mk_p_value(
                mk["s"],
                mk["var_s"],
                [n],
                None if serial == "none" else (mk["rho"] if serial == "pixel" else float(serial)),
            )["factor"][0]
        )
        if n > EXACT_MK_MAX_N
        else 1.0
    )
    i, j = pair_indices(n)
    ps = np.sort((y[j] - y[i]) / (t[j] - t[i]))
    npairs = ps.size
    z = stats.norm.ppf(0.5 + level / 2.0)
    c = z * math.sqrt(max(float(mk["var_s"][0]), 0.0) * fac)
    lo = float(ps[min(max(int(np.round((npairs - c) / 2.0)) - 1, 0), npairs - 1)])  # scipy's rank rule
    hi = float(ps[min(int(np.round((npairs + c) / 2.0)), npairs - 1)])
    sd_sen = (hi - lo) / (2.0 * z)
    sd_tot = math.sqrt(sd_sen**2 + (slope * rel_scale_sd) ** 2)
    return {
        "slope": slope,
        "intercept": intercept,
        "slope_lo": float(slope - z * sd_tot) if rel_scale_sd else lo,
        "slope_hi": float(slope + z * sd_tot) if rel_scale_sd else hi,
        "slope_lo_sen": lo,
        "slope_hi_sen": hi,
        "p_value": float(mk["p_value"][0]),
        "rho": float(mk["rho"][0]),
        "variance_factor": fac,
        "rel_scale_sd": float(rel_scale_sd),
        "n": int(n),
    }


# ---------------------------------------------------------------- disturbance contrast


def ring_mask(mask_inside, ring_width_px: float, valid=None) -> np.ndarray:
    """Pixels outside ``mask_inside`` within ``ring_width_px`` (Euclidean, pixel units) of it."""
    m = np.asarray(mask_inside, bool)
    if not m.any():
        raise GeeAltError("disturbance polygon covers no pixel of the grid")
    dist = ndimage.distance_transform_edt(~m)
    ring = (~m) & (dist <= ring_width_px)
    if valid is not None:
        ring &= np.asarray(valid, bool)
    return ring


def effective_sample_size(field, mask) -> tuple[float, float]:
    """``(n_eff, rho)``: pixels in ``mask`` discounted for spatial autocorrelation.

    ``rho`` is the lag-1 correlation of the field between 4-neighbours both in ``mask`` (x and y
    pooled), and ``n_eff = n·(1 − rho)/(1 + rho)`` — the AR(1) variance-inflation rule, a rough
    but standard correction (Dale & Fortin 2009); ``n_eff`` is clipped to [2, n].
    """
    f = np.asarray(field, float)
    m = np.asarray(mask, bool) & np.isfinite(f)
    n = int(m.sum())
    if n < 3:
        return float(n), float("nan")
    mu = f[m].mean()
    a_parts, b_parts = [], []
    for sl_a, sl_b in (
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ):
        both = m[sl_a] & m[sl_b]
        a_parts.append(f[sl_a][both] - mu)
        b_parts.append(f[sl_b][both] - mu)
    a = np.concatenate(a_parts)
    b = np.concatenate(b_parts)
    var = np.mean((f[m] - mu) ** 2)
    rho = float(np.mean(a * b) / var) if a.size and var > 0 else 0.0
    rho = min(max(rho, 0.0), 0.999)
    return float(min(max(n * (1 - rho) / (1 + rho), 2.0), n)), rho


def disturbance_contrast(data, mask_inside, ring_width_px: float = 10, *, years=None, exclude_px: float = 0) -> dict:
    """Compare a map (e.g. ALT slope) inside a disturbance polygon with a ring around it.

    ``data`` is 2-D ``(y, x)`` (a slope map) or 3-D ``(year, y, x)`` (then the per-pixel mean
    over years is compared, and ``by_year`` holds the yearly inside − ring differences).
    ``exclude_px`` leaves a buffer between polygon and ring (edge pixels mix both).

    Returns ``inside_mean``, ``ring_mean``, ``difference`` (inside − ring), ``n_inside``,
    ``n_ring``, Welch t-test (``welch_t``, ``welch_p``), Mann–Whitney (``mw_u``, ``mw_p``) and
    ``welch_p_neff``: the Welch test with each group's n replaced by its effective sample size
    (:func:`effective_sample_size`), because neighbouring pixels are not independent and the
    plain p-values overstate significance. Report ``welch_p_neff``.
    """
    a = np.asarray(data, float)
    m = np.asarray(mask_inside, bool)
    if a.ndim == 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels -> NaN
            field = np.nanmean(a, axis=0)
    elif a.ndim == 2:
        field = a
    else:
        raise GeeAltError(f"disturbance_contrast needs a 2-D map or 3-D cube, got {a.ndim}-D")
    if m.shape != field.shape:
        raise GeeAltError(f"mask shape {m.shape} != data (y, x) {field.shape}")
    valid = np.isfinite(field)
    dist = ndimage.distance_transform_edt(~m) if m.any() else None
    if dist is None:
        raise GeeAltError("disturbance polygon covers no pixel of the grid")
    ring = (~m) & (dist > exclude_px) & (dist <= exclude_px + ring_width_px) & valid
    inside = m & valid
    xi, xr = field[inside], field[ring]
    if xi.size < 2 or xr.size < 2:
        raise GeeAltError(f"too few valid pixels to compare (inside {xi.size}, ring {xr.size})")
    wt = stats.ttest_ind(xi, xr, equal_var=False)
    mw = stats.mannwhitneyu(xi, xr, alternative="two-sided")
    ni, rho_i = effective_sample_size(field, inside)
    nr, rho_r = effective_sample_size(field, ring)
    vi, vr = xi.var(ddof=1), xr.var(ddof=1)
    se = math.sqrt(vi / ni + vr / nr)
    diff = float(xi.mean() - xr.mean())
    dof = (
        (vi / ni + vr / nr) ** 2 / ((vi / ni) ** 2 / max(ni - 1, 1) + (vr / nr) ** 2 / max(nr - 1, 1))
        if se > 0
        else 1.0
    )
    t_eff = diff / se if se > 0 else 0.0
    out = {
        "inside_mean": float(xi.mean()),
        "ring_mean": float(xr.mean()),
        "difference": diff,
        "n_inside": int(xi.size),
        "n_ring": int(xr.size),
        "ring_width_px": ring_width_px,
        "exclude_px": exclude_px,
        "welch_t": float(wt.statistic),
        "welch_p": float(wt.pvalue),
        "mw_u": float(mw.statistic),
        "mw_p": float(mw.pvalue),
        "n_eff_inside": ni,
        "n_eff_ring": nr,
        "rho_inside": rho_i,
        "rho_ring": rho_r,
        "welch_p_neff": float(2 * stats.t.sf(abs(t_eff), dof)),
        "note": "pixels are spatially autocorrelated: welch_p and mw_p overstate significance; "
        "welch_p_neff uses effective sample sizes n(1-rho)/(1+rho)",
    }
    if a.ndim == 3:
        by = []
        for k in range(a.shape[0]):
            fi, fr = a[k][m & np.isfinite(a[k])], a[k][ring & np.isfinite(a[k])]
            by.append(float(fi.mean() - fr.mean()) if fi.size and fr.size else float("nan"))
        out["by_year"] = {
            "years": [int(y) for y in (years if years is not None else range(a.shape[0]))],
            "difference": by,
        }
    return out


# ---------------------------------------------------------------- polygons


def _load_geojson(geojson) -> list[dict]:
    if isinstance(geojson, (str, os.PathLike)) and not str(geojson).lstrip().startswith("{"):
        p = Path(geojson)
        if not p.is_file():
            raise GeeAltError(f"GeoJSON not found: {p}")
        try:
            geojson = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise GeeAltError(f"{p.name} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    elif isinstance(geojson, str):
        geojson = json.loads(geojson)
    kind = geojson.get("type") if isinstance(geojson, dict) else None
    if kind == "FeatureCollection":
        geoms = [f.get("geometry") for f in geojson.get("features", [])]
    elif kind == "Feature":
        geoms = [geojson.get("geometry")]
    elif kind in ("Polygon", "MultiPolygon", "GeometryCollection"):
        geoms = [geojson]
    else:
        raise GeeAltError(f"GeoJSON must be a FeatureCollection, Feature, Polygon or MultiPolygon, got {kind!r}")
    geoms = [g for g in geoms if g]
    if not geoms:
        raise GeeAltError("GeoJSON holds no geometry")
    return geoms


def rasterize_geojson(geojson, grid, *, src_crs: str = "EPSG:4326", all_touched: bool = False) -> np.ndarray:
    """Boolean ``(y, x)`` mask of a GeoJSON polygon (path, text or dict) on ``grid``.

    Coordinates are lon/lat (RFC 7946) unless ``src_crs`` says otherwise; they are reprojected
    to the grid CRS. A pixel is inside when its centre is (or any touch with ``all_touched``).
    """
    from rasterio import features
    from rasterio.warp import transform_geom

    from gee_alt.grid import affine_of, shape_yx

    geoms = _load_geojson(geojson)
    shapes = [transform_geom(src_crs, grid["crs"], g) for g in geoms]
    mask = features.rasterize(
        [(s, 1) for s in shapes],
        out_shape=shape_yx(grid),
        transform=affine_of(grid),
        fill=0,
        all_touched=all_touched,
        dtype="uint8",
    )
    return mask.astype(bool)
