"""Screen in-situ sites for homogeneity of their 30 m surroundings before calibrating E.

A point measurement only represents a 30 m pixel (and the ~1 km MODIS footprint behind the
downscaled DDT) when the terrain, vegetation and thaw index around it are uniform. For each
site we look at a ``(2r+1) × (2r+1)`` pixel window (r = ``radius_px``, default 3 → 7 × 7 px =
210 m at 30 m) and compute, per field:

- ``<name>_std``: standard deviation of the finite values (field units; m for a DEM),
- ``<name>_cv``: coefficient of variation ``std / |mean|`` (only meaningful for ratio-scale
  fields such as DDT; elevation is not ratio-scale, so use ``dem_std`` for a DEM),
- ``<name>_valid_frac``: fraction of finite pixels in the window,

plus ``inside`` (window fully on the grid), ``row`` and ``col`` (pixel of the site).

Default thresholds (:data:`DEFAULT_THRESHOLDS`; a site is dropped when a metric exceeds its
threshold, applied only to metrics that were computed):

- ``dem_std`` 15 m — a uniform slope s over 7 px at 30 m gives std ≈ 60 m·s, so 15 m ≈ a 14°
  slope; plateau calibration sites are gentle, hill-slope sites are not representative.
- ``ndvi_std`` 0.10 — mixes of bare ground and meadow in the window.
- ``ddt_cv`` 0.10 — ALT ∝ √DDT, so a 10 % DDT spread is ≈ 5 % ALT spread across the window.
- ``min_valid_frac`` 0.5 — at least half of each field's window must be finite.

The 1 km footprint metrics (``dem_std_1km``, ``ndvi_std_1km``, ``landcover_impurity_1km``) are
computed by :mod:`gee_alt.science.footprint_screen` and screened here with the same rule.

Pass ``thresholds={...}`` to override any of them (``None`` disables one).
"""

from __future__ import annotations

import numpy as np

from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, lonlat_to_rowcol, shape_yx

DEFAULT_THRESHOLDS: dict[str, float | None] = {
    "dem_std": 15.0,
    "ndvi_std": 0.10,
    "ddt_cv": 0.10,
    "min_valid_frac": 0.5,
    # the 1 km MODIS footprint (gee_alt.science.footprint_screen documents them)
    "dem_std_1km": 80.0,
    "ndvi_std_1km": 0.15,
    "landcover_impurity_1km": 0.6,
}


def window_stack(field: np.ndarray, row: np.ndarray, col: np.ndarray, radius_px: int) -> tuple[np.ndarray, np.ndarray]:
    """``(windows, inside)``: ``(n, 2r+1, 2r+1)`` float windows around integer pixels (NaN off-grid)."""
    a = np.asarray(field, dtype=float)
    h, w = a.shape
    off = np.arange(-radius_px, radius_px + 1)
    rr = np.asarray(row)[:, None, None] + off[None, :, None]
    cc = np.asarray(col)[:, None, None] + off[None, None, :]
    on = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    win = np.where(on, a[np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)], np.nan)
    return win, on.all(axis=(1, 2))


def window_stats(win: np.ndarray) -> dict[str, np.ndarray]:
    """Per-window ``std``, ``mean``, ``cv`` (std/|mean|) and ``valid_frac`` over finite values."""
    n_tot = win.shape[1] * win.shape[2]
    fin = np.isfinite(win)
    n = fin.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(fin, win, 0.0).sum(axis=(1, 2))
        mean = np.where(n > 0, s / n, np.nan)
        dev = np.where(fin, win - mean[:, None, None], 0.0)
        std = np.where(n > 0, np.sqrt((dev**2).sum(axis=(1, 2)) / np.maximum(n, 1)), np.nan)
        cv = np.where(np.abs(mean) > 0, std / np.abs(mean), np.nan)
    return {"std": std, "mean": mean, "cv": cv, "valid_frac": n / n_tot}


def site_heterogeneity(
    fields: dict, grid: Grid, lon, lat, radius_px: int = 3, *, windows: dict | None = None
) -> dict[str, np.ndarray]:
    """Window metrics around each site (lon/lat degrees) for every 2-D field on ``grid``.

    ``windows``: name -> ``(windows (n, 2r+1, 2r+1), inside (n,))`` of fields already read at the
    sites (e.g. the multi-year mean DDT read by windows, :func:`gee_alt.science.sites.cube_windows`);
    they come first, in their order, then ``fields``.

    Returns ``{"inside", "row", "col", "<name>_std", "<name>_cv", "<name>_valid_frac", ...}``,
    one entry per site. Sites whose window leaves the grid get ``inside=False`` and NaN metrics.
    """
    if radius_px < 0:
        raise ValueError(f"radius_px must be >= 0, got {radius_px}")
    lon = np.atleast_1d(np.asarray(lon, float))
    lat = np.atleast_1d(np.asarray(lat, float))
    rowf, colf = lonlat_to_rowcol(grid, lon, lat)
    finite = np.isfinite(rowf) & np.isfinite(colf)
    row = np.where(finite, np.floor(np.where(finite, rowf, -1)), -(10**6)).astype(np.int64)
    col = np.where(finite, np.floor(np.where(finite, colf, -1)), -(10**6)).astype(np.int64)
    out: dict[str, np.ndarray] = {"row": row, "col": col}
    inside = None
    read = {name: (np.asarray(win, float), np.asarray(ins, bool)) for name, (win, ins) in (windows or {}).items()}
    for name, field in [*read.items(), *fields.items()]:
        if name in read and field is read[name]:
            win, ins = field
        else:
            a = np.asarray(field, dtype=float)
            if a.shape != shape_yx(grid):
                raise GeeAltError(f"field '{name}' has shape {a.shape}, grid is {shape_yx(grid)}")
            win, ins = window_stack(a, row, col, radius_px)
        st = window_stats(win)
        for k in ("std", "cv"):
            out[f"{name}_{k}"] = np.where(ins, st[k], np.nan)
        out[f"{name}_valid_frac"] = np.where(ins, st["valid_frac"], 0.0)
        inside = ins if inside is None else inside & ins
    if inside is None:
        h, w = shape_yx(grid)
        inside = (row - radius_px >= 0) & (row + radius_px < h) & (col - radius_px >= 0) & (col + radius_px < w)
    out["inside"] = inside
    return out


def screen_sites(table, het: dict, thresholds: dict | None = None) -> tuple[np.ndarray, list[str]]:
    """``(keep_mask, reasons)`` for the rows of ``table`` given their :func:`site_heterogeneity`.

    ``table`` is an :class:`~gee_alt.insitu.table.InsituTable` (its ``homogeneous`` column is honoured:
    ``false`` drops the row) or ``None``. ``thresholds`` update :data:`DEFAULT_THRESHOLDS`
    (``None`` value disables one); a threshold given explicitly for a metric that was not
    computed is an error. ``reasons[i]`` is ``""`` for kept rows, else the reasons joined by ``; ``.
    """
    n = len(np.asarray(het["inside"]))
    if table is not None and len(table) != n:
        raise ValueError(f"het has {n} sites but the table has {len(table)} rows")
    thr = dict(DEFAULT_THRESHOLDS)
    user = dict(thresholds or {})
    for k in user:
        if k != "min_valid_frac" and user[k] is not None and k not in het:
            raise GeeAltError(
                f"homogeneity threshold '{k}' names no computed metric "
                f"(have: {', '.join(sorted(k2 for k2 in het if k2 not in ('row', 'col', 'inside')))})"
            )
    thr.update(user)
    reasons: list[list[str]] = [[] for _ in range(n)]
    inside = np.asarray(het["inside"], bool)
    for i in np.flatnonzero(~inside):
        reasons[i].append("window leaves the grid")
    minv = thr.pop("min_valid_frac", None)
    if minv is not None:
        for k in sorted(het):
            if k.endswith("_valid_frac"):
                v = np.asarray(het[k], float)
                for i in np.flatnonzero(inside & (v < minv)):
                    reasons[i].append(f"{k[: -len('_valid_frac')]} window mostly NaN ({v[i]:.0%} valid < {minv:.0%})")
    for k, t in thr.items():
        if t is None or k not in het:
            continue
        v = np.asarray(het[k], float)
        with np.errstate(invalid="ignore"):
            bad = inside & (v > t)
        for i in np.flatnonzero(bad):
            reasons[i].append(f"{k} {v[i]:.4g} > {t:g}")
    if table is not None:
        for i, h in enumerate(table.homogeneous):
            if h is False:
                reasons[i].append("flagged homogeneous=false in the in-situ table")
    keep = np.array([not r for r in reasons], bool)
    return keep, ["; ".join(r) for r in reasons]
