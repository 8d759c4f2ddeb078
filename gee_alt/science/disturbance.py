"""Disturbance (e.g. mining) effect on ALT as a before/after–control/impact (BACI) design.

- :func:`read_disturbance` — the disturbance start year (and restoration year) per pixel of a
  run grid, from a GeoJSON whose features carry ``start_year`` (optional ``restoration_year``)
  or from a raster of disturbance year (0 or nodata = never).
- :func:`match_controls` — for every impact pixel, the stratum of undisturbed pixels at least
  ``buffer_m`` from any disturbance with the same elevation band, aspect class and land cover;
  where such a stratum has fewer than ``min_controls`` pixels, land cover and then aspect are
  dropped (the level used is counted). A one-date land-cover map shows the disturbance itself
  on the impact pixels (e.g. "mine"): a class that exists only there is matched on terrain.
- :func:`baci_quantity` — the effect on any yearly map (the thaw index DDT and permafrost
  presence 0/1, defined on every pixel; ALT, defined only where there is permafrost), and on its
  trend, with a CI; :func:`baci_effect` — the same on ALT with ALT-named keys.

**Estimator.** Each impact pixel ``p`` gets a counterfactual series, the mean of the quantity
over its control stratum in the same year; ``d_t = mean_p(V_pt − C_pt)`` over the impact pixels
that have the quantity in every year of both periods, and the controls are likewise only pixels
with the quantity in every year of both periods (ALT is NaN off permafrost: a pixel whose
permafrost the disturbance removed has no effect on ALT defined, and letting it drop out of the
after mean only would change the pixels compared; a control whose permafrost comes and goes
would do the same on the control side). The effect of the disturbance on the permafrost itself is
therefore measured by the BACI on permafrost presence (the share of impact pixels with permafrost
against the share of their controls), and the effect on ALT is the effect *where permafrost
persists*. The effect is
``mean(d_after) − mean(d_before)``; the effect on the trend is the change of slope of ``d_t``
between the periods (piecewise-linear model). Periods: *before* = years before the earliest
start, *after* = years after the latest start of the impact pixels (the transition in between
is left out), unless given.

**CI (how correlation is respected).** Spatial: impact and control pixels are averaged within
each year before any variance is estimated, so the unit of replication is the year, never the
pixel (pixels of one year share their weather, their DDT error and their map error; counting
them as independent would shrink the CI by √n_pixels). Temporal: ``d_t`` is modelled as
``α + δ·after + ε_t`` with AR(1) errors, ``corr(ε_s, ε_t) = ρ^|s−t|`` (ρ from the residuals of
the ordinary fit, bias-corrected, 0 ≤ ρ ≤ 0.9), and δ is the generalised-least-squares estimate with its
Student-t interval (n − p degrees of freedom). The calibration's E uncertainty scales the whole
map, hence the effect: ``effect · sd(E)/E`` is added in quadrature.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

from gee_alt.errors import GeeAltError

__all__ = [
    "BaciDesign",
    "read_disturbance",
    "aspect_class",
    "ControlStrata",
    "control_strata",
    "match_controls",
    "BaciQuantity",
    "baci_quantity",
    "baci_quantities",
    "baci_effect",
    "gls_ar1",
]


@dataclass(frozen=True)
class BaciDesign:
    """Matching rules: controls at ≥ ``buffer_m`` from any disturbance, elevation bands of
    ``elev_band_m``, ``n_aspect`` aspect sectors (+ one "flat" class below ``flat_slope_deg``),
    a stratum needs ``min_controls`` control pixels."""

    buffer_m: float = 1500.0
    elev_band_m: float = 100.0
    n_aspect: int = 4
    flat_slope_deg: float = 5.0
    min_controls: int = 30


# ------------------------------------------------------------------------------ input
def read_disturbance(path: str | Path, grid) -> tuple[np.ndarray, np.ndarray]:
    """``(start_year, restoration_year)`` int32 ``(y, x)`` on ``grid`` (0 = none) from a GeoJSON
    (lon/lat; features with ``start_year``, optional ``restoration_year``) or a raster of
    disturbance year. One-line :class:`GeeAltError` for anything unusable."""
    p = Path(path)
    if not p.is_file():
        raise GeeAltError(f"disturbance file not found: {p}")
    if p.suffix.lower() in (".geojson", ".json"):
        return _from_geojson(p, grid)
    return _from_raster(p, grid)


def check_disturbance_file(path: str | Path) -> None:
    """Check a MINES file before a run computes or writes anything: a GeoJSON whose features all
    carry a plausible ``start_year`` (and ``restoration_year`` not before it), or a georeferenced
    raster of disturbance years (0 = never) with at least one disturbed pixel. One-line
    :class:`GeeAltError` otherwise (the geometry is checked against the grid by
    :func:`read_disturbance`)."""
    p = Path(path)
    if not p.is_file():
        raise GeeAltError(f"disturbance file not found: {p}")
    if p.suffix.lower() in (".geojson", ".json"):
        for i, f in enumerate(_features(p)):
            props = f.get("properties") or {}
            if "start_year" not in props:
                raise GeeAltError(f"{p.name}: feature {i} has no 'start_year' property")
            y0 = _year(props["start_year"], "start_year", p.name)
            yr = props.get("restoration_year")
            if yr not in (None, "") and _year(yr, "restoration_year", p.name) < y0:
                raise GeeAltError(f"{p.name}: feature {i} is restored ({yr}) before it starts ({y0})")
        return
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(p) as src:
            if src.crs is None:
                raise GeeAltError(f"{p.name} has no coordinate reference system")
            v = np.nan_to_num(src.read(1, masked=True).filled(0).astype("float64"), nan=0.0)
    except RasterioIOError:
        raise GeeAltError(f"{p.name} is neither a GeoJSON nor a readable raster") from None
    if not (v > 0).any():
        raise GeeAltError(f"{p.name} has no disturbed pixel (year > 0)")
    if v[v > 0].min() < 1900 or v.max() > 2100:
        raise GeeAltError(f"{p.name}: values must be years of disturbance (0 = never)")


def _features(p: Path) -> list[dict]:
    """The features of a MINES GeoJSON (a FeatureCollection, or one Feature); one-line
    :class:`GeeAltError` for invalid JSON or no features."""
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GeeAltError(f"{p.name} is not valid JSON ({type(exc).__name__})") from None
    feats = doc.get("features") if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" else None
    if feats is None and isinstance(doc, dict) and doc.get("type") == "Feature":
        feats = [doc]
    if not feats or not all(isinstance(f, dict) for f in feats):
        raise GeeAltError(f"{p.name}: give a GeoJSON FeatureCollection whose features carry 'start_year'")
    return feats


def _year(v, what: str, name: str) -> int:
    try:
        y = int(v)
    except (TypeError, ValueError):
        raise GeeAltError(f"{name}: {what} must be a year, got {v!r}") from None
    if not 1900 <= y <= 2100:
        raise GeeAltError(f"{name}: {what} {y} is not a plausible year")
    return y


def _from_geojson(p: Path, grid) -> tuple[np.ndarray, np.ndarray]:
    from rasterio import features
    from rasterio.warp import transform_geom

    from gee_alt.grid import affine_of, shape_yx

    feats = _features(p)
    start = np.zeros(shape_yx(grid), "int32")
    restore = np.zeros(shape_yx(grid), "int32")
    for i, f in enumerate(feats):
        props = f.get("properties") or {}
        if "start_year" not in props:
            raise GeeAltError(f"{p.name}: feature {i} has no 'start_year' property")
        y0 = _year(props["start_year"], "start_year", p.name)
        yr = props.get("restoration_year")
        yr = _year(yr, "restoration_year", p.name) if yr not in (None, "") else 0
        if yr and yr < y0:
            raise GeeAltError(f"{p.name}: feature {i} is restored ({yr}) before it starts ({y0})")
        try:
            geom = transform_geom("EPSG:4326", grid["crs"], f.get("geometry"))
            m = features.rasterize([(geom, 1)], out_shape=shape_yx(grid), transform=affine_of(grid), dtype="uint8")
        except Exception as exc:  # malformed geometry (rasterio/shapely raise several types)
            raise GeeAltError(f"{p.name}: feature {i} has an invalid geometry ({type(exc).__name__})") from None
        m = m.astype(bool)
        # overlapping features: the earliest start counts, the latest restoration
        start[m] = np.where(start[m] > 0, np.minimum(start[m], y0), y0)
        restore[m] = np.maximum(restore[m], yr)
    if not (start > 0).any():
        raise GeeAltError(f"{p.name} does not cover any pixel of the run's grid")
    return start, restore


def _from_raster(p: Path, grid) -> tuple[np.ndarray, np.ndarray]:
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.warp import Resampling, reproject

    from gee_alt.grid import affine_of, shape_yx

    try:
        with rasterio.open(p) as src:
            if src.crs is None:
                raise GeeAltError(f"{p.name} has no coordinate reference system")
            out = np.zeros(shape_yx(grid), "float64")
            reproject(
                rasterio.band(src, 1),
                out,
                dst_transform=affine_of(grid),
                dst_crs=grid["crs"],
                dst_nodata=0.0,
                resampling=Resampling.nearest,
            )
    except RasterioIOError:
        raise GeeAltError(f"{p.name} is neither a GeoJSON nor a readable raster") from None
    out = np.nan_to_num(out, nan=0.0)
    start = np.where(out > 0, np.round(out), 0).astype("int32")
    if not (start > 0).any():
        raise GeeAltError(f"{p.name} has no disturbed pixel (year > 0) on the run's grid")
    if start[start > 0].min() < 1900 or start.max() > 2100:
        raise GeeAltError(f"{p.name}: values must be years of disturbance (0 = never)")
    return start, np.zeros_like(start)


# --------------------------------------------------------------------------- matching
def aspect_class(dem_m: np.ndarray, pixel_m: float, n_aspect: int = 4, flat_slope_deg: float = 5.0) -> np.ndarray:
    """0 for ground flatter than ``flat_slope_deg``, else 1..``n_aspect`` (sectors of the
    downslope direction clockwise from north, the first centred on north)."""
    from gee_alt.science.terrain import gradients

    gx, gy = gradients(dem_m, pixel_m)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    az = np.degrees(np.arctan2(-gx, -gy)) % 360.0  # downslope azimuth from north
    sector = np.floor(((az + 180.0 / n_aspect) % 360.0) / (360.0 / n_aspect)).astype(int) + 1
    return np.where(slope < flat_slope_deg, 0, sector)


def _stratum_keys(dem_m: np.ndarray, landcover: np.ndarray | None, pixel_m: float, design: BaciDesign) -> list:
    """The stratum key ``(y, x)`` int64 of every pixel at each matching level: (elevation band,
    aspect class, land cover), (elevation band, aspect class), (elevation band); pixels with equal
    keys share a stratum."""
    band = np.where(np.isfinite(dem_m), np.floor(np.nan_to_num(dem_m) / design.elev_band_m), -1).astype(np.int64)
    asp = aspect_class(np.nan_to_num(dem_m), pixel_m, design.n_aspect, design.flat_slope_deg).astype(np.int64)
    lc = (
        np.full(dem_m.shape, -1, np.int64)
        if landcover is None
        else np.where(np.isfinite(landcover), np.nan_to_num(landcover), -1).astype(np.int64)
    )
    return [band * 1000 + asp * 100 + lc + 1, band * 1000 + asp * 100, band * 1000]


LEVEL_NAMES = ("elevation, aspect, land cover", "elevation, aspect", "elevation")


@dataclass(frozen=True, eq=False)
class ControlStrata:
    """The matching strata of one disturbance map on one grid, whatever the quantity compared
    (built once by :func:`control_strata`: the distance transform, the aspect and the strata are
    the costly part of the matching at the full grid; a quantity only restricts the controls to
    the pixels where it is defined).

    ``control`` ``(y, x)`` bool: undisturbed pixels at ≥ ``design.buffer_m`` from any
    disturbance with a finite DEM. ``codes[level]`` flat ``(y·x,)`` intp: the pixel's stratum at
    that level as a dense code (equal stratum keys, equal codes) in ``0..n_codes[level]-1``."""

    disturbed: np.ndarray
    control: np.ndarray
    codes: tuple
    n_codes: tuple
    design: BaciDesign


def control_strata(
    disturbed: np.ndarray,
    dem_m: np.ndarray,
    landcover: np.ndarray | None,
    pixel_m: float,
    design: BaciDesign = BaciDesign(),
) -> ControlStrata:
    """The :class:`ControlStrata` of the ``disturbed`` (y, x) pixels (every start year, impact or
    not) on a grid of DEM ``dem_m`` and ``landcover`` (None: no land-cover level)."""
    disturbed = np.asarray(disturbed, bool)
    dist_m = ndimage.distance_transform_edt(~disturbed, sampling=pixel_m)
    control = (~disturbed) & (dist_m >= design.buffer_m) & np.isfinite(dem_m)
    del dist_m
    codes, n_codes = [], []
    for key in _stratum_keys(dem_m, landcover, pixel_m, design):
        uniq, code = np.unique(key.ravel(), return_inverse=True)
        codes.append(code.reshape(-1).astype(np.intp, copy=False))
        n_codes.append(int(uniq.size))
        del key, uniq, code
    return ControlStrata(disturbed, control, tuple(codes), tuple(n_codes), design)


def _match_levels(strata: ControlStrata, impact_idx: np.ndarray, control: np.ndarray) -> np.ndarray:
    """The matching level of each impact pixel (flat indices ``impact_idx``, ascending): the first
    level whose stratum holds ``design.min_controls`` pixels of ``control`` (flat bool), −1 when
    none does. A pixel's level depends on its stratum and the controls only, not on the other
    impact pixels."""
    level = np.full(impact_idx.size, -1, np.int64)
    for li, (code, n) in enumerate(zip(strata.codes, strata.n_codes, strict=True)):
        counts = np.bincount(code[control], minlength=n)
        todo = np.flatnonzero(level < 0)
        ok = counts[code[impact_idx[todo]]] >= strata.design.min_controls
        level[todo[ok]] = li
    return level


def _level_counts(level: np.ndarray) -> dict:
    """Impact pixels matched at each level (``level`` of :func:`_match_levels`) and unmatched."""
    return {n: int((level == i).sum()) for i, n in enumerate(LEVEL_NAMES)} | {"unmatched": int((level < 0).sum())}


def match_controls(
    impact: np.ndarray,
    disturbed_any: np.ndarray,
    dem_m: np.ndarray,
    landcover: np.ndarray | None,
    pixel_m: float,
    design: BaciDesign = BaciDesign(),
    control_valid: np.ndarray | None = None,
    strata: ControlStrata | None = None,
) -> dict:
    """Strata for the impact pixels: ``{"control": bool (y, x), "level": (y, x) int, the level
    each impact pixel is matched on (−1 = none or not impact), "level_counts": counts of impact
    pixels matched on (elevation, aspect, land cover) / (elevation, aspect) / (elevation) /
    unmatched, "codes": the strata (:class:`ControlStrata`)}``. A control stratum is a set of
    control pixels sharing a stratum code at a level (a control pixel belongs to a stratum at
    every level). ``control_valid`` (y, x) bool: only these pixels can be controls (e.g. those
    where the quantity compared is defined in every year: ALT where permafrost persists).
    ``strata``: the :class:`ControlStrata` of ``disturbed_any`` when already built."""
    if strata is None:
        strata = control_strata(disturbed_any, dem_m, landcover, pixel_m, design)
    control = strata.control if control_valid is None else strata.control & np.asarray(control_valid, bool)
    imp_idx = np.flatnonzero(np.asarray(impact, bool).ravel())
    lev = _match_levels(strata, imp_idx, control.ravel())
    level = np.full(control.shape, -1, np.int64)
    level.ravel()[imp_idx] = lev
    return {"control": control, "level": level, "codes": strata.codes, "level_counts": _level_counts(lev)}


# ---------------------------------------------------------------------------- statistics
def gls_ar1(t, d, design_x, rho_max: float = 0.9) -> dict:
    """GLS fit of ``d = X β + ε``, ``corr(ε_s, ε_t) = ρ^|t_s − t_t|``: ``{beta, cov, rho, dof}``.

    ρ is the lag-1 autocorrelation of the ordinary-least-squares residuals (in time order) plus
    its small-sample bias ``(1 + 3ρ)/n`` (Kendall 1954), clipped to [0, ``rho_max``]; σ² from the
    GLS residuals with n − p degrees of freedom."""
    t = np.asarray(t, float)
    d = np.asarray(d, float)
    x = np.asarray(design_x, float)
    n, k = x.shape
    b_ols, *_ = np.linalg.lstsq(x, d, rcond=None)
    r = d - x @ b_ols
    o = np.argsort(t)
    r = r[o]
    rho = float(np.sum(r[1:] * r[:-1]) / np.sum(r**2)) if n > 2 and np.sum(r**2) > 0 else 0.0
    rho = rho + (1.0 + 3.0 * rho) / n  # small-sample bias of the lag-1 estimate (Kendall 1954)
    rho = min(max(rho, 0.0), rho_max)
    omega = rho ** np.abs(t[:, None] - t[None, :])
    w = np.linalg.inv(omega)
    xtwx = x.T @ w @ x
    cov0 = np.linalg.inv(xtwx)
    beta = cov0 @ x.T @ w @ d
    e = d - x @ beta
    dof = n - k
    s2 = float(e @ w @ e / dof) if dof > 0 else float("nan")
    return {"beta": beta, "cov": cov0 * s2, "rho": rho, "dof": dof}


def _ci(est: float, sd: float, dof: int, level: float = 0.95) -> list[float]:
    if not (np.isfinite(sd) and dof > 0):
        return [float("nan"), float("nan")]
    h = float(stats.t.ppf(0.5 + level / 2, dof)) * sd
    return [est - h, est + h]


def _periods(years, start_year, before_last, after_first):
    disturbed = start_year > 0
    y_first = int(start_year[disturbed].min())
    after_first = int(after_first) if after_first is not None else int(start_year[disturbed].max()) + 1
    before_last = int(before_last) if before_last is not None else y_first - 1
    if before_last >= y_first or after_first <= before_last:
        raise GeeAltError(
            f"the before period must end before the first disturbance ({y_first}) and the after period start "
            f"after it: got before <= {before_last}, after >= {after_first}"
        )
    before = [i for i, y in enumerate(years) if y <= before_last]
    after = [i for i, y in enumerate(years) if y >= after_first]
    if len(before) < 1 or len(after) < 1 or len(before) + len(after) < 4:
        raise GeeAltError(
            f"the run's years {years[0]}-{years[-1]} do not span before (<= {before_last}) and after "
            f"(>= {after_first}) the disturbance with at least 4 years in all; run more years"
        )
    return before, after, after_first


def _series(x: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in x]


@dataclass(frozen=True)
class BaciQuantity:
    """A yearly quantity for :func:`baci_quantities`: its maps ``values`` ``(year, y, x)`` (an array,
    or anything whose ``values[i]`` is year ``i``'s 2-D map), ``what`` it is (in messages), and the
    relative uncertainties ``rel_scale_sd`` and ``rel_impact_after_sd`` of :func:`baci_quantity`."""

    values: object
    what: str = "the quantity"
    rel_scale_sd: float = 0.0
    rel_impact_after_sd: float = 0.0


def baci_quantity(
    values: np.ndarray,
    years: list[int],
    start_year: np.ndarray,
    dem_m: np.ndarray,
    pixel_m: float,
    *,
    landcover: np.ndarray | None = None,
    design: BaciDesign = BaciDesign(),
    before_last: int | None = None,
    after_first: int | None = None,
    rel_scale_sd: float = 0.0,
    impact_mask: np.ndarray | None = None,
    what: str = "the quantity",
    rel_impact_after_sd: float = 0.0,
    strata: ControlStrata | None = None,
) -> dict:
    """The BACI effect of the disturbance on any yearly map ``values`` ``(year, y, x)`` (NaN =
    undefined; an array, or anything whose ``values[i]`` is year ``i``'s 2-D map, e.g. a
    :class:`~gee_alt.io.RasterStack` or :class:`~gee_alt.io.YearMaps`: read a year at a time),
    in its own units (see the module docstring): ``{effect, effect_sd, effect_ci95,
    effect_trend_per_yr, effect_trend_ci95_per_yr, impact_series, control_series,
    difference_series, ...}``. Impact and control pixels alike count only where ``values`` is
    defined in every year of both periods (for ALT: where permafrost persists), so both sides
    are the same pixels before and after. ``rel_scale_sd``: a relative uncertainty scaling the
    whole map (E for ALT), added in quadrature. ``rel_impact_after_sd``: a relative uncertainty
    scaling only the impact pixels after the disturbance (the E of disturbed ground, when the ALT
    model has one), added in quadrature as ``mean impact level after × rel``. ``strata``: the
    :class:`ControlStrata` of ``start_year > 0`` when already built. Raises
    :class:`GeeAltError` when the years do not span before and after or no impact pixel has a
    matched control stratum. Several quantities or impact masks: :func:`baci_quantities`."""
    if strata is None:
        strata = control_strata(start_year > 0, dem_m, landcover, pixel_m, design)
    elif strata.design != design:
        raise ValueError(f"strata built for {strata.design}, not {design}")
    q = BaciQuantity(values, what, rel_scale_sd, rel_impact_after_sd)
    r = baci_quantities({"q": q}, years, start_year, strata, [impact_mask], before_last, after_first)["q"][0]
    if isinstance(r, GeeAltError):
        raise r
    return r


def baci_quantities(
    quantities: dict[str, BaciQuantity],
    years: list[int],
    start_year: np.ndarray,
    strata: ControlStrata,
    impact_masks=(None,),
    before_last: int | None = None,
    after_first: int | None = None,
) -> dict[str, list]:
    """:func:`baci_quantity` of each of ``quantities`` on each of ``impact_masks`` ((y, x) bool,
    None = every impact pixel): ``{name: [result or GeeAltError, one per mask]}``, the same
    results as one :func:`baci_quantity` call each. The maps are read a year at a time, the years
    of every quantity in turn (a quantity computed from another, e.g. a depth from the thaw index,
    can reuse its read), and each year of a quantity twice whatever the number of masks: once for
    the pixels where it is defined in every year of both periods, once for its values. Raises
    :class:`GeeAltError` when the years do not span before and after the disturbance."""
    years = [int(y) for y in years]
    disturbed = start_year > 0
    before, after, after_first = _periods(years, start_year, before_last, after_first)
    impact = disturbed & (start_year < after_first)
    masks = [impact if m is None else impact & m for m in impact_masks]
    passes = {name: _QuantityPass(q, strata, masks, len(years)) for name, q in quantities.items()}
    in_before = set(before)
    for i in before + after:
        for p in passes.values():
            p.panel_year(i, np.asarray(p.q.values[i], float).reshape(-1), i in in_before)
    for p in passes.values():
        p.match()
    todo = [p for p in passes.values() if p.imp_idx.size]
    for t in range(len(years)):
        for p in todo:
            p.value_year(t, np.asarray(p.q.values[t], float).reshape(-1))
    return {
        name: [p.result(k, years, before, after, after_first) for k in range(len(masks))] for name, p in passes.items()
    }


class _QuantityPass:
    """One quantity of :func:`baci_quantities`: its panel (the pixels with the quantity in every
    year of both periods), then its controls and the matched impact pixels of all the masks (a
    pixel's stratum does not depend on the other impact pixels), then, a year at a time, the values
    of those impact pixels and the control sums per stratum (never the controls' values of all
    years: at the full grid they are millions of pixels)."""

    def __init__(self, q: BaciQuantity, strata: ControlStrata, masks: list, n_years: int):
        self.q, self.strata, self.masks, self.n_years = q, strata, masks, n_years
        self.panel = np.ones(strata.control.size, bool)
        self.before_ok = np.ones(strata.control.size, bool)
        self.panel_years: set[int] = set()

    def panel_year(self, i: int, v: np.ndarray, in_before: bool) -> None:
        """Year ``i`` (flat float64 map ``v``) of the before or after period."""
        fin = np.isfinite(v)
        self.panel &= fin
        if in_before:
            self.before_ok &= fin
        self.panel_years.add(i)

    def match(self) -> None:
        """The controls, and the levels of the impact pixels (of any mask) with the quantity."""
        self.control = self.strata.control.ravel() & self.panel
        union = np.zeros(self.panel.size, bool)
        for m in self.masks:
            union |= m.ravel()
        union_idx = np.flatnonzero(union & self.panel)
        level = _match_levels(self.strata, union_idx, self.control)
        self.union_idx, self.union_level = union_idx, level
        self.imp_idx, self.lev_imp = union_idx[level >= 0], level[level >= 0]
        self.imp_vals = np.empty((self.n_years, self.imp_idx.size))
        self.levels = {}  # level -> (sums, counts) (year, stratum), only the levels some pixel uses
        for li in np.unique(self.lev_imp):
            n = self.strata.n_codes[li]
            self.levels[int(li)] = (np.zeros((self.n_years, n)), np.zeros((self.n_years, n)))
        # every control is defined in the panel years: the counts of those years are the strata's sizes
        self.sizes = {
            li: np.bincount(self.strata.codes[li][self.control], minlength=self.strata.n_codes[li]).astype(float)
            for li in self.levels
        }

    def value_year(self, t: int, v: np.ndarray) -> None:
        """Year ``t`` (flat float64 map ``v``): the impact values and the control sums per stratum."""
        self.imp_vals[t] = v[self.imp_idx]
        # outside the controls and where undefined the weight is 0: each stratum's sum is that of its
        # control values in pixel order, as over the controls alone (adding +0.0 changes no float sum)
        use = self.control if t in self.panel_years else self.control & np.isfinite(v)
        w = np.where(use, v, 0.0)
        for li, (sums, cnts) in self.levels.items():
            code, n = self.strata.codes[li], self.strata.n_codes[li]
            sums[t] = np.bincount(code, w, minlength=n)
            cnts[t] = self.sizes[li] if t in self.panel_years else np.bincount(code[use], minlength=n)

    def result(self, k: int, years: list[int], before: list, after: list, after_first: int):
        """The :func:`baci_quantity` result of mask ``k`` (its impact pixels of the union), or the
        :class:`GeeAltError` it raises."""
        what, design = self.q.what, self.strata.design
        impact = self.masks[k].ravel()
        if not (impact & self.panel).any():
            had = int((impact & self.before_ok).sum())
            return GeeAltError(
                f"no disturbed pixel has {what} in every year of both periods ({had} of {int(impact.sum())} have it "
                f"in every year before; for ALT: the disturbance removed the mapped permafrost)"
            )
        in_mask = impact[self.imp_idx]
        if not in_mask.any():
            return GeeAltError(
                f"no disturbed pixel with {what} in every year has {design.min_controls} control pixels with {what} "
                f"at >= {design.buffer_m:.0f} m in its elevation band; lower --buffer-m or --min-controls"
            )
        imp_vals = self.imp_vals[:, in_mask]
        lev_imp = self.lev_imp[in_mask]
        imp_idx = self.imp_idx[in_mask]
        counter = np.full((len(years), imp_idx.size), np.nan)
        for li, (sums, cnts) in self.levels.items():
            sel = lev_imp == li
            if sel.any():
                with np.errstate(invalid="ignore", divide="ignore"):
                    means = np.where(cnts > 0, sums / np.maximum(cnts, 1), np.nan)
                counter[:, sel] = means[:, self.strata.codes[li][imp_idx[sel]]]
        try:
            out = _baci_fit(years, before, after, after_first, imp_vals, counter, self.q)
        except GeeAltError as exc:
            return exc
        lev_mask = self.union_level[impact[self.union_idx]]
        out.update(
            {
                "impact_pixels": int(impact.sum()),
                "impact_pixels_matched": int((lev_mask >= 0).sum()),
                "impact_pixels_used": int(imp_idx.size),
                "impact_pixels_undefined": int((impact & ~self.panel).sum()),
                "control_pixels": int(self.control.sum()),
                "matched_on": _level_counts(lev_mask),
            }
        )
        return out


def _baci_fit(years, before, after, after_first, imp_vals, counter, q: BaciQuantity) -> dict:
    """The effect and its trend from the impact values and their counterfactuals ``(year, pixel)``
    (the statistics of :func:`baci_quantity`)."""
    import warnings

    what, rel_scale_sd, rel_impact_after_sd = q.what, q.rel_scale_sd, q.rel_impact_after_sd
    diff = imp_vals - counter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        d_t = np.nanmean(diff, axis=1)
        impact_series = np.nanmean(np.where(np.isfinite(diff), imp_vals, np.nan), axis=1)
        control_series = np.nanmean(np.where(np.isfinite(diff), counter, np.nan), axis=1)
    use = [i for i in before + after if np.isfinite(d_t[i])]
    tt = np.array([years[i] for i in use], float)
    dd = d_t[use]
    aft = np.array([1.0 if i in after else 0.0 for i in use])
    if aft.sum() < 1 or (1 - aft).sum() < 1 or len(use) < 4:
        raise GeeAltError(f"the impact pixels have {what} in too few years before or after the disturbance")
    fit = gls_ar1(tt, dd, np.column_stack([np.ones_like(tt), aft]))
    eff = float(fit["beta"][1])
    sd_series = math.sqrt(fit["cov"][1, 1]) if np.isfinite(fit["cov"][1, 1]) else float("nan")
    sd = math.hypot(sd_series, eff * rel_scale_sd)
    impact_after_sd = 0.0
    if rel_impact_after_sd > 0:
        a_after = impact_series[[i for i in use if i in after]]
        impact_after_sd = abs(float(np.nanmean(a_after))) * rel_impact_after_sd
        sd = math.hypot(sd, impact_after_sd)
    out = {
        "effect": eff,
        "effect_sd": sd,
        "effect_ci95": _ci(eff, sd, fit["dof"]),
        "series_sd": sd_series,
        "scale_sd": abs(eff) * rel_scale_sd,
        "impact_after_scale_sd": impact_after_sd,
        "ar1_rho": fit["rho"],
        "dof": fit["dof"],
    }
    # trend: piecewise linear, change of slope between the periods (needs >= 2 years in each)
    t0 = float(after_first)
    if aft.sum() >= 2 and (1 - aft).sum() >= 2 and len(use) >= 5:
        xt = np.column_stack([np.ones_like(tt), tt - t0, aft, aft * (tt - t0)])
        ft = gls_ar1(tt, dd, xt)
        g = float(ft["beta"][3])
        gsd = math.sqrt(ft["cov"][3, 3]) if np.isfinite(ft["cov"][3, 3]) else float("nan")
        gsd = math.hypot(gsd, abs(g) * rel_scale_sd)
        out["effect_trend_per_yr"] = g
        out["effect_trend_ci95_per_yr"] = _ci(g, gsd, ft["dof"])
        out["trend_ar1_rho"] = ft["rho"]
    else:
        out["effect_trend_per_yr"] = None
        out["effect_trend_note"] = "fewer than 2 years before or after: no change of trend estimated"
    out.update(
        {
            "years": years,
            "before": [years[i] for i in before],
            "after": [years[i] for i in after],
            "impact_series": _series(impact_series),
            "control_series": _series(control_series),
            "difference_series": _series(d_t),
        }
    )
    return out


def _design_dict(design: BaciDesign) -> dict:
    return {
        "buffer_m": design.buffer_m,
        "elev_band_m": design.elev_band_m,
        "n_aspect": design.n_aspect,
        "flat_slope_deg": design.flat_slope_deg,
        "min_controls": design.min_controls,
    }


CI_METHOD = (
    "yearly impact-minus-matched-control differences (the year is the replicate: spatial correlation within a "
    "year cannot shrink the CI); GLS with AR(1) errors over years, Student-t interval; for ALT the calibration's "
    "relative E uncertainty added in quadrature (and, where the ALT model has an E of disturbed ground, the "
    "impact pixels' after-disturbance ALT times its relative uncertainty)"
)


def baci_effect(
    alt_m: np.ndarray,
    years: list[int],
    start_year: np.ndarray,
    dem_m: np.ndarray,
    pixel_m: float,
    *,
    landcover: np.ndarray | None = None,
    restoration_year: np.ndarray | None = None,
    design: BaciDesign = BaciDesign(),
    before_last: int | None = None,
    after_first: int | None = None,
    rel_e_sd: float = 0.0,
    impact_mask: np.ndarray | None = None,
    rel_disturbed_e_sd: float = 0.0,
    strata: ControlStrata | None = None,
) -> dict:
    """The BACI effect of the disturbance on ALT (m) and on its trend (cm/yr), see the module
    docstring: :func:`baci_quantity` on ALT (impact and controls where permafrost persists, i.e.
    ALT in every year of both periods), with ALT-named keys (``effect_alt_m`` ...)."""
    r = baci_quantity(
        alt_m,
        years,
        start_year,
        dem_m,
        pixel_m,
        landcover=landcover,
        design=design,
        before_last=before_last,
        after_first=after_first,
        rel_scale_sd=rel_e_sd,
        impact_mask=impact_mask,
        what="ALT",
        rel_impact_after_sd=rel_disturbed_e_sd,
        strata=strata,
    )
    return alt_named(r, years, start_year, restoration_year, design, before_last, after_first)


def alt_named(
    r: dict,
    years: list[int],
    start_year: np.ndarray,
    restoration_year: np.ndarray | None,
    design: BaciDesign,
    before_last: int | None = None,
    after_first: int | None = None,
) -> dict:
    """The :func:`baci_effect` result (ALT-named keys, restored pixels, design) of the
    :func:`baci_quantity` result ``r`` on ALT."""
    out = {
        "effect_alt_m": r["effect"],
        "effect_alt_sd_m": r["effect_sd"],
        "effect_alt_ci95_m": r["effect_ci95"],
        "series_sd_m": r["series_sd"],
        "e_scale_sd_m": r["scale_sd"],
        "ar1_rho": r["ar1_rho"],
        "dof": r["dof"],
    }
    if r["effect_trend_per_yr"] is not None:
        out["effect_trend_cm_per_yr"] = 100.0 * r["effect_trend_per_yr"]
        out["effect_trend_ci95_cm_per_yr"] = [100.0 * c for c in r["effect_trend_ci95_per_yr"]]
        out["trend_ar1_rho"] = r["trend_ar1_rho"]
    else:
        out["effect_trend_cm_per_yr"] = None
        out["effect_trend_note"] = r["effect_trend_note"]
    impact = (start_year > 0) & (start_year < _periods(list(years), start_year, before_last, after_first)[2])
    restored = None
    if restoration_year is not None and (restoration_year[impact] > 0).any():
        restored = int((restoration_year[impact] > 0).sum())
    out.update(
        {
            "years": r["years"],
            "before": r["before"],
            "after": r["after"],
            "impact_series_m": r["impact_series"],
            "control_series_m": r["control_series"],
            "difference_series_m": r["difference_series"],
            "impact_pixels": r["impact_pixels"],
            "impact_pixels_matched": r["impact_pixels_matched"],
            "impact_pixels_used": r["impact_pixels_used"],
            "impact_pixels_without_alt": r["impact_pixels_undefined"],
            "control_pixels": r["control_pixels"],
            "impact_restored_pixels": restored,
            "matched_on": r["matched_on"],
            "design": _design_dict(design),
            "ci_method": CI_METHOD,
        }
    )
    return out
