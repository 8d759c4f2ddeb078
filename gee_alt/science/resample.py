"""Moving rasters between grids with rasterio's warper (any CRS to any CRS).

- :func:`aggregate` fine -> coarse: area-weighted mean (optionally radiance-like for
  temperatures), within-pixel standard deviation and the covered fraction of each coarse pixel.
- :func:`interpolate` coarse -> fine (bilinear, cubic or nearest).

Arrays are ``(band, y, x)`` float with NaN as nodata.
"""

from __future__ import annotations

import ast
import functools
import hashlib

import numpy as np
from rasterio.enums import Resampling
from rasterio.warp import reproject

from gee_alt.grid import Grid, affine_of, shape_yx
from gee_alt.units import KELVIN_AT_0_DEGC


def _warp(src: np.ndarray, src_grid: Grid, dst_grid: Grid, resampling: Resampling, fill=np.nan) -> np.ndarray:
    """rasterio/GDAL warp of ``(band, y, x)`` or ``(y, x)``; float32 stays float32, else float64."""
    dtype = "float32" if np.asarray(src).dtype == np.float32 else "float64"
    src = np.ascontiguousarray(src, dtype=dtype)
    squeeze = src.ndim == 2
    if squeeze:
        src = src[None]
    dst = np.full((src.shape[0], *shape_yx(dst_grid)), fill, dtype=dtype)
    reproject(
        source=src,
        destination=dst,
        src_transform=affine_of(src_grid),
        src_crs=src_grid["crs"],
        dst_transform=affine_of(dst_grid),
        dst_crs=dst_grid["crs"],
        src_nodata=np.nan,
        dst_nodata=np.nan,
        resampling=resampling,
        num_threads=2,
        warp_mem_limit=512,
    )
    return dst[0] if squeeze else dst


def aggregate(
    fine: np.ndarray,
    fine_grid: Grid,
    coarse_grid: Grid,
    *,
    radiance: bool = False,
    with_std: bool = True,
    cache: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Aggregate fine ``(band, y, x)`` onto ``coarse_grid``.

    Returns ``(mean, std, coverage)``: mean and std of the valid fine pixels in each coarse
    pixel (same units as ``fine``; with ``radiance=True`` the input is °C and the mean is
    taken over (T + KELVIN_AT_0_DEGC)^4, i.e. radiance-like, then converted back to °C), and coverage =
    fraction (0..1) of the coarse pixel's area covered by valid fine pixels of band 0.
    With ``cache=True`` bands seen before (same values, same grids) are served from a small
    cache: terrain predictors are then aggregated once per run, not once per year.
    """
    # float32 input is aggregated in float32 when only the mean is wanted (GDAL sums in double)
    fine = np.asarray(fine, dtype="float32" if (np.asarray(fine).dtype == np.float32 and not with_std) else "float64")
    if fine.ndim == 2:
        fine = fine[None]
    if not cache:
        mean, std = _aggregate_bands(fine, fine_grid, coarse_grid, radiance, with_std)
        return mean, std, coverage_fraction(np.isfinite(fine[0]), fine_grid, coarse_grid)
    keys = [
        (
            hashlib.blake2b(np.ascontiguousarray(b).tobytes(), digest_size=16).hexdigest(),
            repr(fine_grid),
            repr(coarse_grid),
            radiance,
            with_std,
        )
        for b in fine
    ]
    todo = [i for i, k in enumerate(keys) if k not in _AGG_CACHE]
    if todo:
        mean, std = _aggregate_bands(fine[todo], fine_grid, coarse_grid, radiance, with_std)
        for j, i in enumerate(todo):
            if len(_AGG_CACHE) >= _AGG_CACHE_MAX:
                _AGG_CACHE.pop(next(iter(_AGG_CACHE)))
            _AGG_CACHE[keys[i]] = (mean[j], None if std is None else std[j])
    means = np.stack([_AGG_CACHE[k][0] for k in keys])
    stds = np.stack([_AGG_CACHE[k][1] for k in keys]) if with_std else None
    coverage = coverage_fraction(np.isfinite(fine[0]), fine_grid, coarse_grid)
    return means, stds, coverage


_AGG_CACHE: dict = {}
_AGG_CACHE_MAX = 64


def _aggregate_bands(fine: np.ndarray, fine_grid: Grid, coarse_grid: Grid, radiance: bool, with_std: bool):
    """Uncached aggregation of ``(band, y, x)``: (mean, std or None)."""
    if radiance:
        k = fine + KELVIN_AT_0_DEGC
        k2 = k * k
        mean = _warp(k2 * k2, fine_grid, coarse_grid, Resampling.average)
        mean = np.where(mean > 0, mean.astype("float64"), np.nan) ** 0.25 - KELVIN_AT_0_DEGC
        m1 = _warp(fine, fine_grid, coarse_grid, Resampling.average) if with_std else None
    else:
        mean = m1 = _warp(fine, fine_grid, coarse_grid, Resampling.average)
    std = None
    if with_std:
        sq = _warp(fine * fine, fine_grid, coarse_grid, Resampling.average)
        std = np.sqrt(np.clip(sq - m1**2, 0.0, None))
    return mean, std


def coverage_fraction(valid: np.ndarray, fine_grid: Grid, coarse_grid: Grid) -> np.ndarray:
    """Fraction (0..1) of each coarse pixel's area covered by ``valid`` fine pixels."""
    full = _full_counts(repr(fine_grid), repr(coarse_grid))
    valid = np.asarray(valid, bool)
    counts = full if valid.all() else _warp(valid.astype("float64"), fine_grid, coarse_grid, Resampling.sum, fill=0.0)
    return coverage_from_counts(counts, full)


def coverage_from_counts(counts: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Covered fraction (0..1) from the area-weighted count of valid fine pixels in each coarse
    pixel (``counts``) and of all fine pixels (``full``); see :func:`coverage_fraction`."""
    interior = full[full > 0]
    if interior.size == 0:
        return np.zeros_like(counts)
    expected = float(np.quantile(interior, 0.9))  # a fully covered pixel (ignores partial edge pixels)
    return np.clip(np.nan_to_num(counts) / expected, 0.0, 1.0)


@functools.lru_cache(maxsize=16)
def _full_counts(fine_key: str, coarse_key: str) -> np.ndarray:
    """Area-weighted count of fine pixels in each coarse pixel (cached per pair of grids)."""
    fine_grid, coarse_grid = ast.literal_eval(fine_key), ast.literal_eval(coarse_key)
    full = _warp(np.ones(shape_yx(fine_grid)), fine_grid, coarse_grid, Resampling.sum, fill=0.0)
    full.setflags(write=False)
    return full


def interpolate(
    coarse: np.ndarray,
    coarse_grid: Grid,
    fine_grid: Grid,
    method: str = "bilinear",
    index: np.ndarray | None = None,
    window: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Resample coarse ``(band, y, x)`` (or ``(y, x)``) onto ``fine_grid``; method: bilinear, cubic, nearest.

    Bilinear and nearest sample the coarse bands at the fine pixel centres, whose positions in
    the coarse grid are computed once per pair of grids (pyproj) and cached, so the many
    per-year calls of a run cost a few milliseconds per band. NaN neighbours are left out of
    the bilinear weights (as GDAL does); a fine pixel with no valid neighbour is NaN. Cubic
    goes through rasterio's warper. With ``index`` (flat fine-pixel indices) only those pixels
    are sampled and ``(band, n)`` is returned. With ``window`` = ``(row_off, col_off, height,
    width)`` only that window of ``fine_grid`` is sampled (a tile): its pixels get exactly the
    values the whole grid's call gives them.
    """
    if method == "cubic":
        return _warp(coarse, coarse_grid, fine_grid, Resampling.cubic)
    if method not in ("bilinear", "nearest"):
        raise ValueError(f"unknown interpolation method {method!r}")
    from scipy.ndimage import map_coordinates

    a = np.asarray(coarse, dtype="float64")
    squeeze = a.ndim == 2
    if squeeze:
        a = a[None]
    if window is None:
        rows, cols = _fine_positions(repr(coarse_grid), repr(fine_grid))
        h, w = shape_yx(fine_grid)
    else:
        rows, cols = _fine_positions(repr(coarse_grid), repr(fine_grid), tuple(int(v) for v in window))
        h, w = int(window[2]), int(window[3])
    if index is not None:
        rows, cols = rows[index], cols[index]
        h, w = 1, len(rows)
    out = np.empty((a.shape[0], h, w), dtype="float64")
    if method == "nearest":
        ri, ci = np.floor(rows + 0.5).astype(np.int64), np.floor(cols + 0.5).astype(np.int64)
        inside = (ri >= 0) & (ri < a.shape[1]) & (ci >= 0) & (ci < a.shape[2])
        for b in range(a.shape[0]):
            v = np.full(rows.shape, np.nan)
            v[inside] = a[b][ri[inside], ci[inside]]
            out[b] = v.reshape(h, w)
    else:
        coords = np.stack([rows, cols])
        dens: dict[bytes, np.ndarray] = {}  # the weight sum depends only on the NaN pattern
        for b in range(a.shape[0]):
            ok = np.isfinite(a[b])
            key = ok.tobytes()
            if key not in dens:
                dens[key] = map_coordinates(ok.astype("float64"), coords, order=1, mode="grid-constant", cval=0.0)
            den = dens[key]
            num = map_coordinates(np.where(ok, a[b], 0.0), coords, order=1, mode="grid-constant", cval=0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[b] = np.where(den > 1e-9, num / np.where(den > 1e-9, den, 1.0), np.nan).reshape(h, w)
    if index is not None:
        out = out[:, 0, :]
    return out[0] if squeeze else out


@functools.lru_cache(maxsize=8)
def _fine_positions(coarse_key: str, fine_key: str, window=None) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, col) array indices in the coarse grid of every fine pixel centre (cached);
    ``window`` (row_off, col_off, height, width): of that window's pixels only, computed with the
    same arithmetic as for the whole grid (pixel by pixel, so the bits are the same)."""
    from pyproj import Transformer

    from gee_alt.grid import coords

    coarse_grid, fine_grid = ast.literal_eval(coarse_key), ast.literal_eval(fine_key)
    x, y = coords(fine_grid)
    if window is not None:
        r0, c0, h, w = window
        x, y = x[c0 : c0 + w], y[r0 : r0 + h]
    xx, yy = np.meshgrid(x, y)
    if coarse_grid["crs"] != fine_grid["crs"]:
        tr = Transformer.from_crs(fine_grid["crs"], coarse_grid["crs"], always_xy=True)
        xx, yy = tr.transform(xx.ravel(), yy.ravel())
    col, row = ~affine_of(coarse_grid) @ (np.ravel(xx), np.ravel(yy))
    rows, cols = np.asarray(row) - 0.5, np.asarray(col) - 0.5  # pixel centres at integer indices
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


def fill_nearest(a: np.ndarray) -> np.ndarray:
    """Fill NaNs of a 2-D array with the nearest finite value (all-NaN stays all-NaN)."""
    from scipy.ndimage import distance_transform_edt

    bad = ~np.isfinite(a)
    if not bad.any() or bad.all():
        return a.copy()
    idx = distance_transform_edt(bad, return_distances=False, return_indices=True)
    return a[tuple(idx)]
