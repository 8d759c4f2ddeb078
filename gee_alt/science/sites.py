"""Glue between the DDT cube and the in-situ table: sample DDT at sites, screen, calibrate.

:func:`calibrate_from_cube` is the one call the pipeline needs:
in-situ table + DDT cube (+ optional DEM/NDVI fields) → homogeneity screen → Stefan fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from gee_alt.cube import DDT_VAR, grid_of
from gee_alt.errors import GeeAltError
from gee_alt.grid import lonlat_to_rowcol, shape_yx
from gee_alt.insitu.table import InsituTable
from gee_alt.science.footprint_screen import footprint_metrics
from gee_alt.science.homogeneity import screen_sites, site_heterogeneity, window_stats
from gee_alt.science.stefan import StefanCalibration


def site_pixels(grid, table: InsituTable) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``(row, col)`` of each table row's site on ``grid`` (far off the grid when it does not project)."""
    rowf, colf = lonlat_to_rowcol(grid, table.lon, table.lat)
    fin = np.isfinite(rowf) & np.isfinite(colf)  # far-away sites can project to inf
    row = np.where(fin, np.floor(np.where(fin, rowf, -1e6)), -(10**6)).astype(np.int64)
    col = np.where(fin, np.floor(np.where(fin, colf, -1e6)), -(10**6)).astype(np.int64)
    return row, col


def cube_windows(cube: xr.Dataset, row: np.ndarray, col: np.ndarray, radius_px: int, var: str = DDT_VAR) -> np.ndarray:
    """``(year, n, 2r+1, 2r+1)`` float64 windows of ``cube[var]`` around the pixels ``(row, col)``,
    NaN off the grid: a pointwise read, so a lazily backed cube (e.g. the DDT COGs) decodes only
    the blocks under the windows, never the whole cube."""
    h, w = cube.sizes["y"], cube.sizes["x"]
    off = np.arange(-radius_px, radius_px + 1)
    rr = np.asarray(row)[:, None, None] + off[None, :, None]
    cc = np.asarray(col)[:, None, None] + off[None, None, :]
    on = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    dims = ("site", "wy", "wx")
    rr_i = xr.DataArray(np.broadcast_to(np.clip(rr, 0, h - 1), on.shape), dims=dims)
    cc_i = xr.DataArray(np.broadcast_to(np.clip(cc, 0, w - 1), on.shape), dims=dims)
    da = cube[var]
    out = np.empty((da.sizes["year"], *on.shape))
    for t in range(da.sizes["year"]):  # a year at a time: at most the blocks under the sites are held
        out[t] = np.asarray(da.isel(year=t).isel(y=rr_i, x=cc_i).transpose(*dims).values, float)
    return np.where(on[None], out, np.nan)


def sample_ddt_at_sites(
    cube: xr.Dataset,
    table: InsituTable,
    radius_px: int = 0,
    *,
    windows: np.ndarray | None = None,
    window_radius_px=None,
) -> np.ndarray:
    """DDT (°C·day) for each table row: the cube value at the site pixel in the row's year.

    With ``radius_px`` > 0, the mean of the finite values in a ``(2r+1)²`` window. NaN where the
    year is not in the cube, the site is off the grid, or the pixel(s) are NaN. Read by windows at
    the sites (:func:`cube_windows`; ``windows`` of radius ``window_radius_px`` >= ``radius_px``
    when already read).
    """
    if windows is None:
        row, col = site_pixels(grid_of(cube), table)
        windows, window_radius_px = cube_windows(cube, row, col, radius_px), radius_px
    k = int(window_radius_px) - int(radius_px)
    sub = windows[:, :, k : windows.shape[2] - k, k : windows.shape[3] - k]
    cube_years = {int(y): k for k, y in enumerate(cube["year"].values)}
    out = np.full(len(table), np.nan)
    years = table.year
    for y in np.unique(years):
        if int(y) not in cube_years:
            continue
        sel = years == y
        out[sel] = window_stats(sub[cube_years[int(y)]][sel])["mean"]
    return out * fraction_at_obs_date(cube, table)


def fraction_at_obs_date(cube: xr.Dataset, table: InsituTable) -> np.ndarray:
    """Per table row, the share of the season's DDT reached on the row's ``obs_date`` (1 where
    no date is given or the cube has no thaw-progress curve, ``ddt_fraction_by_doy``)."""
    import datetime as dt

    from gee_alt.cube import THAW_FRACTION_VAR

    out = np.ones(len(table))
    dates = getattr(table, "obs_date", None)
    if dates is None or THAW_FRACTION_VAR not in cube:
        return out
    cube_years = {int(y): k for k, y in enumerate(cube["year"].values)}
    curve = np.asarray(cube[THAW_FRACTION_VAR].values, float)
    for i, (y, d) in enumerate(zip(table.year, dates, strict=True)):
        if d and int(y) in cube_years:
            f = curve[cube_years[int(y)], dt.date.fromisoformat(d).timetuple().tm_yday - 1]
            out[i] = f if np.isfinite(f) else 1.0
    return out


@dataclass
class CalibrationResult:
    """What :func:`calibrate_from_cube` found: the fitted model and the per-row bookkeeping."""

    calibration: StefanCalibration
    ddt_degc_days: np.ndarray  # sampled DDT per table row
    keep: np.ndarray  # rows used for the fit
    reasons: list[str]  # why a row was not used ("" if used)
    heterogeneity: dict

    def to_dict(self) -> dict:
        d = self.calibration.to_dict()
        d["screen"] = {
            "n_rows": int(self.keep.size),
            "n_kept": int(self.keep.sum()),
            "dropped": [r for r in self.reasons if r],
        }
        return d


def calibrate_from_cube(
    table: InsituTable,
    cube: xr.Dataset,
    *,
    fields: dict | None = None,
    thresholds: dict | None = None,
    radius_px: int = 3,
    sample_radius_px: int = 0,
    classes=None,
    disturbed=None,
    **calibration_params,
) -> CalibrationResult:
    """Screen sites and fit ``ALT = E·√DDT`` on the DDT cube sampled at each row's site and year.

    ``fields`` (name → 2-D array on the cube grid, e.g. ``{"dem": ..., "ndvi": ...}``) feed the
    homogeneity screen together with the multi-year mean DDT (``"ddt"``), at 210 m and over the
    1 km MODIS footprint (:mod:`gee_alt.science.footprint_screen`; ``"landcover"`` there only,
    for the footprint's land-cover purity). Rows whose year is
    missing from the cube or whose DDT is NaN are dropped with a reason.
    ``calibration_params`` go to :class:`StefanCalibration` (``n_boot``, ``random_state``,
    ``by_class``...); ``classes`` (one per table row, e.g. land cover at the site) feed ``by_class``; ``disturbed``
    (bool per table row: the site-year is on disturbed ground) the disturbed-ground E
    (:mod:`gee_alt.science.disturbed_e`).
    """
    grid = grid_of(cube)
    # DDT is read only in windows at the sites (all years), never as the whole cube
    row, col = site_pixels(grid, table)
    r_win = max(radius_px, sample_radius_px)
    windows = cube_windows(cube, row, col, r_win)
    k = r_win - radius_px
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_win = np.nanmean(windows[:, :, k : windows.shape[2] - k, k : windows.shape[3] - k], axis=0)
    fields = dict(fields or {})
    landcover = fields.pop("landcover", None)
    h, w = shape_yx(grid)
    on = (row - radius_px >= 0) & (row + radius_px < h) & (col - radius_px >= 0) & (col + radius_px < w)
    het = site_heterogeneity(fields, grid, table.lon, table.lat, radius_px=radius_px, windows={"ddt": (mean_win, on)})
    het.update(footprint_metrics(fields, landcover, grid, het["row"], het["col"]))
    keep, reasons = screen_sites(table, het, thresholds)
    ddt = sample_ddt_at_sites(cube, table, radius_px=sample_radius_px, windows=windows, window_radius_px=r_win)
    cube_years = {int(y) for y in cube["year"].values}
    reasons = list(reasons)
    for i, (y, d) in enumerate(zip(table.year, ddt, strict=True)):
        extra = ""
        if int(y) not in cube_years:
            extra = f"year {int(y)} not in the DDT cube"
        elif not np.isfinite(d):
            extra = "no DDT at the site pixel"
        if extra:
            keep[i] = False
            reasons[i] = f"{reasons[i]}; {extra}" if reasons[i] else extra
    if not keep.any():
        first = next((r for r in reasons if r), "")
        raise GeeAltError(
            f"no in-situ row left for calibration after screening ({len(table)} rows; e.g. {first}); "
            "add sites at homogeneous places or loosen the screen (gee-alt calibrate --ddt-cv-max, "
            "--dem-std-max, --ndvi-std-max, --dem-std-1km-max, --ndvi-std-1km-max, --landcover-impurity-1km-max)"
        )
    cls = None if classes is None else np.asarray(classes, dtype=object)[keep]
    cal = StefanCalibration(**calibration_params).fit(
        ddt[keep],
        table.alt_m[keep],
        table.site_id[keep],
        classes=cls,
        censored=table.censored[keep],
        disturbed=None if disturbed is None else np.asarray(disturbed, bool)[keep],
    )
    return CalibrationResult(cal, ddt, keep, reasons, het)
