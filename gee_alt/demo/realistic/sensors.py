"""Synthetic sensors of the realistic world: MODIS LST (Terra/Aqua overpasses, clear-sky looks,
8-day day/night composites), MODIS 250 m NDVI and Landsat 30 m NDVI across sensor eras.

Each MODIS pixel sees its ground through a point-spread function (triangular across the scan,
flat along the track) on the real sinusoidal lattice; LST is aggregated as radiance (T⁴). The
operator is a sparse matrix from source cells (30 m pixels or 120 m blocks) to MODIS pixels,
written here with pyproj and scipy.sparse (not the engine's resampler).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import gaussian_filter
from scipy.special import ndtr

from gee_alt.demo.fields import rng_for, smooth_field
from gee_alt.demo.realistic.climate import OVERPASS_HOURS, YearWeather, diurnal_shape, overpass_available
from gee_alt.grid import Grid

ZERO_DEGC_IN_K = 273.15
OVERPASSES = ("terra_day", "terra_night", "aqua_day", "aqua_night")


@dataclass
class Footprints:
    """Sparse PSF operator ``weights`` (modis pixels x source cells, rows sum to 1) and which MODIS
    pixels are fully seen (``complete``, flat bool over the MODIS grid)."""

    weights: sp.csr_matrix
    complete: np.ndarray
    shape: tuple[int, int]

    def apply(self, cells: np.ndarray) -> np.ndarray:
        """``(..., n_cells)`` -> ``(..., rows, cols)`` weighted means; incomplete pixels NaN."""
        flat = np.asarray(cells).reshape(-1, cells.shape[-1])
        out = np.asarray(self.weights @ flat.T, "float64").T
        out[:, ~self.complete] = np.nan
        return out.reshape(*cells.shape[:-1], *self.shape)


def footprints(source: Grid, cell_px: int, target: Grid, chunk_cells: int = 1 << 20) -> Footprints:
    """The PSF operator from ``source`` (aggregated into ``cell_px`` x ``cell_px`` cells) to the
    MODIS grid ``target``: weight ``max(0, 1 - |dx|)`` across the scan (x, in target pixels) times
    the share of the cell inside the pixel's row along the track (flat response). A MODIS pixel is
    ``complete`` when its whole footprint lies on the source grid. Built ``chunk_cells`` source
    cells at a time (the operator does not depend on it)."""
    from pyproj import Transformer

    nx, ny = source["shape_2d"]
    a = source["crs_transform"]
    cy, cx = ny // cell_px, nx // cell_px
    to_target = Transformer.from_crs(source["crs"], target["crs"], always_xy=True)
    ta = target["crs_transform"]
    tnx, tny = target["shape_2d"]
    half_h = 0.5 * cell_px * abs(a[4]) / abs(ta[4])  # half a cell's height in target pixels
    n_cells = cy * cx
    idx = np.int32 if max(n_cells, tny * tnx) < 2**31 else np.int64
    r_i, w_i, s_i = [], [], []
    for c0 in range(0, n_cells, chunk_cells):
        cells = np.arange(c0, min(n_cells, c0 + chunk_cells))
        gx = a[2] + ((cells % cx) + 0.5) * cell_px * a[0]
        gy = a[5] + ((cells // cx) + 0.5) * cell_px * a[4]
        tx, ty = to_target.transform(gx, gy)
        fc = (np.asarray(tx) - ta[2]) / ta[0] - 0.5  # fractional target column of each cell centre
        fr = (np.asarray(ty) - ta[5]) / ta[4] - 0.5
        for dc in (-1, 0, 1, 2):
            c = np.floor(fc).astype(int) + dc
            wx = np.clip(1 - np.abs(fc - c), 0, None)
            for dr in (-1, 0, 1):
                r = np.rint(fr).astype(int) + dr
                # the share of the cell's height inside the target row (flat along-track response)
                wy = np.clip(np.minimum(fr + half_h, r + 0.5) - np.maximum(fr - half_h, r - 0.5), 0, None) / (
                    2 * half_h
                )
                w = wx * wy
                ok = (w > 0) & (c >= 0) & (c < tnx) & (r >= 0) & (r < tny)
                r_i.append((r[ok] * tnx + c[ok]).astype(idx))
                w_i.append(w[ok])
                s_i.append(cells[ok].astype(idx))
    rows = np.concatenate(r_i)
    del r_i
    cols = np.concatenate(s_i)
    del s_i
    m = sp.csr_matrix((np.concatenate(w_i), (rows, cols)), shape=(tny * tnx, n_cells))
    del w_i, rows, cols
    total = np.asarray(m.sum(axis=1)).ravel()
    complete = total > 0.97 * total.max()
    m = sp.diags(np.where(total > 0, 1 / np.where(total > 0, total, 1), 0)) @ m
    return Footprints(m.tocsr().astype("float32"), complete, (tny, tnx))


@dataclass
class LstComposites:
    """8-day composites of one year on the MODIS grid: ``lst_degc`` ``(window, y, x)``, first
    days ``starts`` and lengths ``days``; and what MOD11A2/MYD11A2 deliver per sensor:
    ``looks[name]`` ``(window, y, x)`` mean of the clear looks of overpass ``name`` (one of
    :data:`OVERPASSES`, °C, NaN without one) and ``view_hours[name]`` their mean local solar
    view time (hours)."""

    lst_degc: np.ndarray
    starts: list[dt.date]
    days: np.ndarray
    looks: dict[str, np.ndarray] | None = None
    view_hours: dict[str, np.ndarray] | None = None


def composite_windows(year: int, n_days: int, step: int = 8) -> list[tuple[int, int]]:
    """``[(first_day_index, n_days)]`` of the MOD11A2-style 8-day windows of a year (last one shorter)."""
    return [(d0, min(step, n_days - d0)) for d0 in range(0, n_days, step)]


def modis_lst(
    weather: YearWeather,
    clear_sky_blocks: np.ndarray,
    amplitude_blocks: np.ndarray,
    cloud_blocks: np.ndarray,
    ops: Footprints,
    seed: int,
) -> LstComposites:
    """MODIS-like daily-mean LST composites for one year.

    ``clear_sky_blocks``: ``(day, cell)`` daily-mean skin temperature under a clear sky (°C, the
    all-sky truth without its cloud cooling); ``amplitude_blocks`` ``(day, cell)`` clear-sky
    diurnal half-range (°C); ``cloud_blocks`` ``(day, cell)`` cloud fraction (0-1).

    Every existing overpass looks at its view time (nominal ± up to 1 h); a pixel is clear when a
    spatially correlated draw exceeds its cloud fraction (afternoon convection makes Aqua's day
    look cloudier in summer); a clear look sees the clear-sky skin temperature at that time,
    aggregated as radiance through the PSF, plus 0.6 K noise. Some cloud edges pass the cloud
    mask and read 3-12 K too cold. Each 8-day window's value is (mean of day looks + mean of
    night looks) / 2, as the Earth Engine engine composites; NaN without a day or a night look.
    The same looks are also kept per overpass with their mean view time (``looks``,
    ``view_hours``: what the MODIS 8-day products carry), from the same draws.
    """
    year = weather.year
    rng = rng_for(seed, 401, year)
    n_days = len(weather.doy)
    avail = overpass_available(year, n_days)
    cloud_px = ops.apply(cloud_blocks)  # (day, y, x)
    summer = (0.5 + 0.5 * np.sin(2 * np.pi * (weather.doy - 105.0) / 365.25))[:, None, None]
    sums = {"day": np.zeros((n_days, *ops.shape)), "night": np.zeros((n_days, *ops.shape))}
    counts = {"day": np.zeros((n_days, *ops.shape)), "night": np.zeros((n_days, *ops.shape))}
    per_look: dict[str, tuple] = {}
    for k, name in enumerate(OVERPASSES):
        on = avail[name]
        if not on.any():
            continue
        hours = OVERPASS_HOURS[name] + weather.view_jitter_h[:, k]
        shape_at = diurnal_shape(hours[:, None], weather.doy)[:, 0]
        look = amplitude_blocks * shape_at[:, None].astype("float32")
        look += clear_sky_blocks + np.float32(ZERO_DEGC_IN_K)
        look *= look
        look *= look  # radiance ~ T^4
        rad = ops.apply(look)
        t = rad**0.25 - ZERO_DEGC_IN_K + 0.6 * rng.standard_normal(rad.shape)
        extra = {"terra_day": 0.04, "aqua_day": 0.15, "terra_night": -0.05, "aqua_night": -0.05}[name]
        cl = np.clip(cloud_px + extra * summer, 0, 1)
        f = gaussian_filter(rng.standard_normal(cl.shape), (0, 1.2, 1.2), mode="nearest")
        u = ndtr(f / f.std(axis=(1, 2), keepdims=True))  # uniform, correlated over ~2 km
        clear = u > cl
        leak = ~clear & (u > cl - 0.08) & (rng.uniform(size=cl.shape) < 0.25)
        t = np.where(leak, t - rng.uniform(3, 12, size=cl.shape), t)
        valid = (clear | leak) & on[:, None, None] & np.isfinite(t)
        part = "day" if name.endswith("day") else "night"
        sums[part] += np.where(valid, t, 0.0)
        counts[part] += valid
        per_look[name] = (np.where(valid, t, 0.0), valid, np.where(valid, hours[:, None, None], 0.0))
    wins = composite_windows(year, n_days)
    out = np.full((len(wins), *ops.shape), np.nan, "float32")
    for i, (d0, nd) in enumerate(wins):
        means = {}
        for part in ("day", "night"):
            c = counts[part][d0 : d0 + nd].sum(axis=0)
            s = sums[part][d0 : d0 + nd].sum(axis=0)
            means[part] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
        out[i] = (means["day"] + means["night"]) / 2
    looks = {n: np.full((len(wins), *ops.shape), np.nan, "float32") for n in OVERPASSES}
    view = {n: np.full((len(wins), *ops.shape), np.nan, "float32") for n in OVERPASSES}
    for name, (t_sum, valid, h_sum) in per_look.items():
        for i, (d0, nd) in enumerate(wins):
            c = valid[d0 : d0 + nd].sum(axis=0)
            looks[name][i] = np.where(c > 0, t_sum[d0 : d0 + nd].sum(axis=0) / np.maximum(c, 1), np.nan)
            view[name][i] = np.where(c > 0, h_sum[d0 : d0 + nd].sum(axis=0) / np.maximum(c, 1), np.nan)
    starts = [dt.date(year, 1, 1) + dt.timedelta(days=d0) for d0, _ in wins]
    return LstComposites(out, starts, np.array([nd for _, nd in wins], "float64"), looks, view)


def modis_ndvi(ndvi_30m: np.ndarray, ops: Footprints, year: int, seed: int) -> np.ndarray:
    """MODIS-like 250 m growing-season NDVI: PSF-weighted truth, +0.01 from maximum-value
    compositing, 0.015 noise, 3 % of pixels left cloudy (NaN)."""
    rng = rng_for(seed, 402, year)
    obs = ops.apply(ndvi_30m.reshape(1, -1))[0] + 0.01 + 0.015 * rng.standard_normal(ops.shape)
    obs[rng.uniform(size=ops.shape) < 0.03] = np.nan
    return obs.astype("float32")


def landsat_era(year: int) -> str:
    """Which Landsat sensors make the growing-season composite of ``year``."""
    if year <= 2002:
        return "TM+ETM+"
    if year <= 2011:
        return "TM+ETM+ SLC-off"
    if year == 2012:
        return "ETM+ SLC-off only"
    return "OLI"


def landsat_ndvi(ndvi_true: np.ndarray, year: int, seed: int) -> np.ndarray:
    """Landsat-like 30 m growing-season NDVI: clouds (0-35 % of the window), 0.02 noise; the 2012
    composite is ETM+ alone with SLC-off stripes; OLI years read NDVI 0.02 higher (band
    differences)."""
    rng = rng_for(seed, 403, year)
    era = landsat_era(year)
    noise = 0.015 if era == "OLI" else 0.02
    ndvi = ndvi_true + noise * rng.standard_normal(ndvi_true.shape)
    if era == "OLI":
        ndvi = ndvi + 0.02 * (ndvi > 0.1)
    cloud = smooth_field(ndvi.shape, 25, rng)
    cover = rng.uniform(0.0, 0.35)
    gap = cloud > np.quantile(cloud, 1.0 - cover)
    if era == "ETM+ SLC-off only":
        n = ndvi.shape[1]
        yy, xx = np.mgrid[0 : ndvi.shape[0], 0:n]
        along = yy + 0.17 * xx  # scan lines are slightly tilted
        width = 2 + 10 * np.abs(xx - n / 2) / n * 2  # gaps widen away from the swath centre
        gap |= np.mod(along, 34) < np.clip(width, 0, 14)
    return np.where(gap, np.nan, ndvi).astype("float32")
