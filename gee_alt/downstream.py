"""The shared downstream: DDT cube -> calibration -> ALT -> trend -> NetCDF, on objects.

Both engines end at the same DDT cube (:mod:`gee_alt.cube`) and the same site-screen fields;
nothing here knows which engine made them. Each step takes the objects of the step before and
writes its own products through :mod:`gee_alt.runs`; the single-step commands
(:mod:`gee_alt.pipeline`) rebuild the objects from the run directory and call the same functions.

Memory (issue 12): the cube may be lazily backed (the local engine opens its DDT COGs,
:func:`gee_alt.runs.open_ddt_cube`) and the chain never holds a ``(year, y, x)`` array: the
calibration reads site windows (:func:`gee_alt.science.sites.cube_windows`); ALT, ALT sd,
permafrost and the AOA inflation run one year of a row strip at a time with windowed COG writes
(:func:`stream_alt`); the trend, area means and extent read row windows of the written COGs
(:class:`gee_alt.io.RasterStack`); the NetCDF streams its variables. What still scales with the
extent are 2-D maps: the site fields (DEM, NDVI, land cover), the AOA predictors/DI, the e_source
map and the trend slope/p maps (BH-FDR needs all p-values), ~26 MB each per float32 at the full
study grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from gee_alt import __version__, runs
from gee_alt.cube import DDF_VAR, DDT_SD_VAR, DDT_VAR, FROST_VAR, grid_of
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, bounds, lonlat_to_rowcol
from gee_alt.io import write_json_atomic

STEFAN_METHOD = "Stefan ALT = E*sqrt(DDT)"
BLOCK_CV_M = 5000.0  # block-CV size (m) when the residuals show no spatial range (see _block_size)
UNCERTAINTY_FALLBACK = "parameter (sd of E) and DDT parts only (calibration without a residual spread)"
TREND_MIN_YEARS = 8  # a pixel's trend needs this many valid years (fewer when the run is shorter)


@dataclass
class SiteFields:
    """Rasters on the cube grid that the site screen and per-class calibration use.

    ``dem_m`` elevation (m), ``ndvi_mean`` mean 30 m NDVI over the run's years (1), ``landcover``
    integer classes as float (NaN = none) or ``None`` when the inputs have no land-cover map.
    """

    dem_m: np.ndarray | None = None
    ndvi_mean: np.ndarray | None = None
    landcover: np.ndarray | None = None

    def screen_fields(self) -> dict[str, np.ndarray]:
        """``{"dem": ..., "ndvi": ..., "landcover": ...}`` for the site screen
        (:func:`gee_alt.science.sites.calibrate_from_cube`; land cover for the 1 km footprint purity)."""
        pairs = (("dem", self.dem_m), ("ndvi", self.ndvi_mean), ("landcover", self.landcover))
        return {k: v for k, v in pairs if v is not None}


@dataclass
class Calibrated:
    """A fitted calibration and what it was fitted on.

    ``model`` the fitted :class:`~gee_alt.science.stefan.StefanCalibration`; ``summary`` the
    JSON-ready ``calibration.json`` content; ``table`` the in-situ rows read.
    """

    model: object
    summary: dict
    table: object = None
    validation: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- calibration
def site_bbox_lonlat(grid: Grid) -> tuple[float, float, float, float]:
    """The grid's lon/lat bounds (degrees, west, south, east, north) for selecting in-situ rows."""
    from rasterio.warp import transform_bounds

    return transform_bounds(grid["crs"], "EPSG:4326", *bounds(grid), densify_pts=21)


def classes_at_sites(landcover: np.ndarray | None, grid: Grid, table) -> np.ndarray | None:
    """Land-cover class (int, -1 off the map) at each in-situ row's site, ``None`` without a map."""
    if landcover is None:
        return None
    r, c = lonlat_to_rowcol(grid, table.lon, table.lat)
    h, w = landcover.shape
    ok = np.isfinite(r) & np.isfinite(c) & (r >= 0) & (c >= 0) & (r < h) & (c < w)
    out = np.full(len(table), -1, dtype=object)
    vals = landcover[r[ok].astype(int), c[ok].astype(int)]
    out[ok] = [int(v) if np.isfinite(v) else -1 for v in vals]
    return out


def calibrate(
    cube: xr.Dataset,
    table,
    fields: SiteFields,
    *,
    thresholds: dict | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    by_class: bool | str = "auto",
    insitu_name: str = "",
    disturbance_start: np.ndarray | None = None,
) -> Calibrated:
    """Screen the in-situ sites and fit ``ALT = E·√DDT`` on the cube (see :mod:`gee_alt.science.sites`).

    ``by_class``: ``"auto"`` fits one E per land-cover class with enough sites when
    ``fields.landcover`` exists, ``True`` requires it, ``False`` pools all sites. A threshold on
    a field the run does not have is skipped. Raises :class:`GeeAltError` when fewer than two
    sites survive the screen (no CI, no cross-validation).

    ``disturbance_start``: ``(y, x)`` int year each pixel was first disturbed (0 never, e.g. from
    :func:`gee_alt.science.disturbance.read_disturbance`); site-years at/after their pixel's start
    year then fit an E of disturbed ground, kept when it lowers the leave-one-site-out error
    (:mod:`gee_alt.science.disturbed_e`).
    """
    from pyproj import Transformer

    from gee_alt.science.sites import calibrate_from_cube
    from gee_alt.science.stefan import block_cv

    grid = grid_of(cube)
    classes = classes_at_sites(fields.landcover, grid, table) if by_class in (True, "auto") else None
    if by_class is True and classes is None:
        raise GeeAltError(f"--by-class needs a land-cover raster on the run grid ({runs.LANDCOVER})")
    screen = fields.screen_fields()
    if thresholds:
        have = {"ddt", *screen}
        thresholds = {k: v for k, v in thresholds.items() if k == "min_valid_frac" or k.split("_")[0] in have}
    disturbed = disturbed_site_years(disturbance_start, grid, table)
    res = calibrate_from_cube(
        table,
        cube,
        fields=screen,
        thresholds=thresholds,
        n_boot=n_boot,
        random_state=seed,
        classes=classes,
        by_class=classes is not None,
        disturbed=disturbed,
    )
    cal, keep = res.calibration, res.keep
    n_sites = len(set(table.site_id[keep]))
    if n_sites < 2:
        raise GeeAltError(
            f"only {n_sites} in-situ site left after screening ({int(keep.sum())} rows): the confidence "
            "interval and cross-validation need at least 2 sites; add in-situ sites"
        )
    out = cal.to_dict()
    x, y = Transformer.from_crs("EPSG:4326", grid["crs"], always_xy=True).transform(table.lon, table.lat)
    sqrt_ddt = np.sqrt(np.clip(res.ddt_degc_days, 0, None))
    block = _block_size(cal, sqrt_ddt[keep], table, keep, np.asarray(x), np.asarray(y))
    out["block_cv"] = {
        **block_cv(
            sqrt_ddt[keep],
            table.alt_m[keep],
            np.asarray(x)[keep],
            np.asarray(y)[keep],
            block["block_m"],
            censored=table.censored[keep],
            classes=None if classes is None else classes[keep],
            deployed_classes=list(cal.e_by_class_) or None,
            site_ids=np.asarray(table.site_id)[keep],
            disturbed=np.asarray(disturbed, bool)[keep] if cal.uses_disturbed_e else None,
        ),
        "block_m": block["block_m"],
        "block_m_source": block["source"],
        "residual_range_m": block["range_m"],
    }
    out["n_dropped"] = int((~keep).sum())
    out["dropped"] = [
        {"row": int(i), "site_id": str(table.site_id[i]), "year": int(table.year[i]), "reason": res.reasons[i]}
        for i in np.nonzero(~keep)[0]
    ]
    by_site: dict = {}
    for d in out["dropped"]:
        e = by_site.setdefault(d["site_id"], {"site_id": d["site_id"], "rows": 0, "reason": d["reason"]})
        e["rows"] += 1
    out["dropped_sites"] = [{**e, "reason": f"{e['reason']} ({e['rows']} rows)"} for e in by_site.values()]
    out["n_rejected_rows"] = len(table.rejected)
    out["rejected_rows"] = [{"line": int(r), "reason": str(m)} for r, m in table.rejected]
    out["insitu_file"] = insitu_name
    fitted = cal.predict(res.ddt_degc_days, classes, disturbed)
    out["pairs"] = [
        {
            "site_id": str(table.site_id[i]),
            "year": int(table.year[i]),
            "disturbed": None if disturbed is None else bool(disturbed[i]),
            "alt_obs_m": float(table.alt_m[i]),
            "censored": str(table.censored[i]),
            "ddt_degc_days": float(res.ddt_degc_days[i]),
            "alt_fit_m": float(fitted[i]),
            "alt_loo_m": float(p),
            "class": None if classes is None else int(classes[i]),
        }
        for i, p in zip(np.nonzero(keep)[0], cal.loo_pred_m_, strict=True)
    ]
    out["thresholds"] = thresholds or {}
    out["screen_fields"] = sorted({"ddt", *screen})
    out["gee_alt_version"] = __version__
    validation = {
        "insitu": [
            {"site_id": p["site_id"], "year": p["year"], "alt_obs_m": p["alt_obs_m"], "alt_pred_m": p["alt_loo_m"]}
            for p in out["pairs"]
            if not p["censored"]
        ],
        "insitu_note": "predictions are leave-one-site-out (E refitted without the site)",
        "insitu_loo": out["loo"],
        "insitu_block_cv": out["block_cv"],
    }
    return Calibrated(cal, out, table, validation)


def disturbed_site_years(disturbance_start: np.ndarray | None, grid: Grid, table) -> np.ndarray | None:
    """Bool per in-situ row: its site's pixel has a disturbance start year and the row's year is
    at/after it (:func:`gee_alt.science.disturbed_e.site_years_disturbed`); None without a map."""
    from gee_alt.science.disturbed_e import site_years_disturbed

    if disturbance_start is None:
        return None
    r, c = lonlat_to_rowcol(grid, table.lon, table.lat)
    h, w = disturbance_start.shape
    ok = np.isfinite(r) & np.isfinite(c) & (r >= 0) & (c >= 0) & (r < h) & (c < w)
    start = np.zeros(len(table))
    start[ok] = disturbance_start[r[ok].astype(int), c[ok].astype(int)]
    return site_years_disturbed(start, table.year)


def disturbed_rows(model, disturbance_start: np.ndarray | None, r0: int, r1: int, year: int) -> np.ndarray | None:
    """Bool ``(r1 - r0, x)``: pixels of rows ``r0:r1`` disturbed at/before ``year`` when the model
    has a disturbed-ground E, else None (every pixel uses the undisturbed E)."""
    if disturbance_start is None or not getattr(model, "uses_disturbed_e", False):
        return None
    s = np.asarray(disturbance_start[r0:r1])
    return (s > 0) & (s <= year)


def _block_size(cal, sqrt_ddt_kept, table, keep, x_m, y_m) -> dict:
    """Block-CV size from the residuals' spatial range (issue 17 item 5; :mod:`gee_alt.science.variogram`):
    site-mean LOO residuals in E units; ``BLOCK_CV_M`` when no range can be fitted."""
    from gee_alt.science.variogram import block_size_m

    sid = np.asarray(table.site_id)[keep].astype(str)
    obs = np.asarray(table.alt_m, float)[keep]
    pred = np.asarray(cal.loo_pred_m_, float)  # already one per kept row
    exact = np.array([not c for c in np.asarray(table.censored, dtype=object)[keep]])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(exact & (sqrt_ddt_kept > 0), (obs - pred) / sqrt_ddt_kept, np.nan)
    sites = sorted(set(sid))
    vals = np.array([np.nanmean(r[sid == s]) if np.isfinite(r[sid == s]).any() else np.nan for s in sites])
    xs = np.array([x_m[keep][sid == s][0] for s in sites])
    ys = np.array([y_m[keep][sid == s][0] for s in sites])
    return block_size_m(xs, ys, vals, default_m=BLOCK_CV_M)


def write_calibration(run: str | Path, calibrated: Calibrated) -> None:
    """``calibration.json``, ``insitu_used.csv`` and the in-situ part of ``validation.json``."""
    from gee_alt.insitu.table import write_insitu

    run = Path(run)
    write_insitu(run / runs.INSITU_USED, calibrated.table)
    write_json_atomic(run / runs.CALIBRATION, calibrated.summary)
    val = runs.read_json(run, runs.VALIDATION) or {}
    val.update(calibrated.validation)
    write_json_atomic(run / runs.VALIDATION, val)


def load_calibration(run: str | Path):
    """The fitted :class:`~gee_alt.science.stefan.StefanCalibration` of ``RUN/calibration.json``
    and the file's content; one-line :class:`GeeAltError` if missing, broken or implausible."""
    from gee_alt.science.stefan import StefanCalibration

    run = runs.require_run(run, "calibration")
    path = run / runs.CALIBRATION
    summary = runs.read_json(run, runs.CALIBRATION)
    try:
        model = StefanCalibration.from_dict(summary)
    except (ValueError, KeyError, TypeError) as exc:
        why = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise GeeAltError(f"{path} is not a valid calibration ({why}); rerun 'gee-alt calibrate'") from None
    if not (np.isfinite(model.e_) and 0 < model.e_ < 1):
        raise GeeAltError(
            f"{path}: E = {model.e_} is not a plausible Stefan coefficient (0 < E < 1); rerun 'gee-alt calibrate'"
        )
    return model, summary


# ---------------------------------------------------------------------------------- ALT
@dataclass
class AltMaps:
    """Yearly ALT (m) and its 1-sigma uncertainty (m), ``(year, y, x)`` float32 on ``grid``."""

    years: list[int]
    alt_m: np.ndarray
    alt_sd_m: np.ndarray
    grid: Grid
    e_source: np.ndarray | None = None  # (y, x): 1 class-calibrated E, 0 pooled E, NaN no ALT
    #: frost number (1) per year, ``(year, y, x)``, when the cube has a freezing index
    frost_number: np.ndarray | None = None
    frost_number_min: float = 0.5
    #: ``(y, x)`` float32 user permafrost map (1 / 0 / NaN unknown) that replaces the frost-number
    #: threshold (:mod:`gee_alt.permafrost_map`), or None
    permafrost_map: np.ndarray | None = None
    #: which frost number it is (:func:`gee_alt.science.frost_climate.settings_of`: method, years)
    frost_setting: tuple[str, int] = ("year", 1)
    #: ``(year, y, x)`` permafrost class (1 / 0 / NaN) and presence probability (1) when the
    #: presence model decided (:mod:`gee_alt.science.permafrost_probability`), else None
    permafrost_class: np.ndarray | None = None
    presence_probability: np.ndarray | None = None
    #: the probabilistic area (sum of probabilities) per year with its CI, or None
    presence_area: dict | None = None
    #: ``(y, x)`` float32: the year from which the pixel uses the E of disturbed ground (NaN never),
    #: or None when the calibration has none
    e_disturbed_from: np.ndarray | None = None

    @property
    def permafrost(self) -> np.ndarray | None:
        """``(year, y, x)`` float32: 1 permafrost (F ≥ threshold, or the user map), 0 none, NaN
        unknown; or None."""
        if self.permafrost_map is not None:
            return np.broadcast_to(self.permafrost_map, (len(self.years), *self.permafrost_map.shape)).astype("float32")
        if self.permafrost_class is not None:
            return np.asarray(self.permafrost_class, "float32")
        if self.frost_number is None:
            return None
        f = np.asarray(self.frost_number)  # the whole stack: the streamed chain reads row windows instead
        return np.where(np.isfinite(f), (f >= self.frost_number_min).astype("float32"), np.nan).astype("float32")

    def close_files(self) -> None:
        """Close the files the yearly maps keep open for windowed reads (:class:`gee_alt.io.RasterStack`);
        later reads reopen them."""
        for v in (self.alt_m, self.alt_sd_m, self.frost_number, self.permafrost_class, self.presence_probability):
            if hasattr(v, "close"):
                v.close()

    def permafrost_year(self, i: int) -> np.ndarray | None:
        """Year index ``i`` of :attr:`permafrost` (float32 ``(y, x)``), reading only that year; or None."""
        if self.permafrost_map is not None:
            return np.asarray(self.permafrost_map).astype("float32")
        if self.permafrost_class is not None:
            return np.asarray(self.permafrost_class[i]).astype("float32")
        if self.frost_number is None:
            return None
        f = np.asarray(self.frost_number[i])
        return np.where(np.isfinite(f), (f >= self.frost_number_min).astype("float32"), np.nan).astype("float32")


def frost_setting_of(attrs: dict) -> tuple[str, int]:
    """``(method, window_years)`` of a cube's frost number (its attrs; a DDT or permafrost COG's tags)."""
    from gee_alt.science.frost_climate import settings_of

    return settings_of(attrs)


def _permafrost_tags(setting: tuple[str, int], fmin: float, rule: str, **common) -> dict:
    """Tags of ``permafrost_YYYY.tif``: the rule, which frost number (method, window) and the threshold."""
    from gee_alt.science.frost_climate import describe, tags_of

    return runs.product_tags(
        f"permafrost ({rule}) and surface frost number",
        "1",
        method=describe(*setting),
        frost_number_min=f"{fmin:g}",
        **tags_of(*setting),
        **common,
    )


def _permafrost_bands(setting: tuple[str, int]) -> list[str]:
    from gee_alt.science.frost_climate import band_label

    return ["permafrost_class", band_label(*setting)]


#: rows of a row chunk whose presence probability :meth:`Presence.rows` computes at a time
PRESENCE_ROWS = 64


@dataclass
class Presence:
    """The presence-probability model of a run and the fields its static predictors come from
    (:mod:`gee_alt.science.permafrost_probability`): those of a row chunk are computed when it is
    asked for (:meth:`static`), never kept for the whole grid."""

    model: object
    fields: SiteFields
    pixel_m: float
    _chunk: tuple = field(default=(None, None), repr=False)

    def static(self, r0: int, r1: int) -> dict:
        """The model's static predictors of rows ``r0:r1`` (:func:`~gee_alt.science.permafrost_probability.static_rows`;
        the last chunk's are kept: every year of a row chunk asks for them)."""
        from gee_alt.science.permafrost_probability import static_rows

        if self._chunk[0] != (r0, r1):
            s = static_rows(self.fields.dem_m, self.fields.ndvi_mean, self.pixel_m, r0, r1)
            self._chunk = ((r0, r1), {n: s[n] for n in self.model.names[1:]})
        return self._chunk[1]

    def rows(self, frost: np.ndarray, r0: int, r1: int) -> np.ndarray:
        """float32 presence probability of rows ``r0:r1`` (shape of ``frost``) for one year's frost
        number; :data:`PRESENCE_ROWS` rows at a time (the float64 design matrix of a few rows; the
        probability is pixel by pixel, so the same values)."""
        from gee_alt.science.permafrost_probability import design

        frost = np.asarray(frost)
        out = np.empty(frost.shape, "float32")
        static = self.static(r0, r1)
        for a in range(0, r1 - r0, PRESENCE_ROWS):
            b = min(r1 - r0, a + PRESENCE_ROWS)
            x = design(self.model.names, frost[a:b], {k: v[a:b] for k, v in static.items()})
            out[a:b] = self.model.predict_proba(x).reshape(frost[a:b].shape)
        return out

    def area_accumulator(self, n_years: int, shape: tuple[int, int]) -> tuple:
        """An empty :class:`~gee_alt.science.permafrost_probability.AreaAccumulator` for ``n_years``
        and the bootstrap subsample mask of a ``shape`` grid: ``(acc, sub)``."""
        from gee_alt.science.permafrost_probability import AreaAccumulator, ci_sample_mask

        return AreaAccumulator(n_years, len(self.model.boot_coef_)), ci_sample_mask(shape)

    @staticmethod
    def area(acc, years: list[int], grid: Grid) -> dict:
        """The probabilistic area per year with its CI (``presence_area.json``) from a filled accumulator."""
        from gee_alt.grid import pixel_size

        return {**acc.result(years, pixel_size(grid) ** 2 / 1e6), "rule": PRESENCE_AREA_RULE}

    def add_area(self, acc, i: int, frost: np.ndarray, prob: np.ndarray, sub: np.ndarray, r0: int, r1: int) -> None:
        """Add rows ``r0:r1`` of year index ``i`` to an
        :class:`~gee_alt.science.permafrost_probability.AreaAccumulator`: their probabilities
        (float32 as written) and the bootstrap probabilities of the subsample ``sub``."""
        from gee_alt.science.permafrost_probability import design

        keep = sub & np.isfinite(prob)
        x = design(self.model.names, frost[keep], {k: v[keep] for k, v in self.static(r0, r1).items()})
        acc.add(i, prob, keep, self.model.boot_proba(x))


def presence_of(criterion: dict | None, fields: SiteFields, grid: Grid) -> Presence | None:
    """The :class:`Presence` of a ``permafrost_criterion`` that has a ``presence_model``, else None."""
    from gee_alt.grid import pixel_size
    from gee_alt.science.permafrost_probability import PresenceProbability, static_rows

    if not criterion or not criterion.get("presence_model"):
        return None
    model = PresenceProbability.from_dict(criterion["presence_model"])
    have = static_rows(fields.dem_m, fields.ndvi_mean, pixel_size(grid), 0, 1)
    missing = [n for n in model.names[1:] if n not in have]
    if missing:
        raise GeeAltError(f"the permafrost presence model needs {', '.join(missing)}, which this run does not have")
    return Presence(model, fields, pixel_size(grid))


def permafrost_rows(
    frost: np.ndarray | None,
    fmin: float,
    permafrost_map: np.ndarray | None = None,
    probability: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Permafrost of some rows of one year: ``(pf, pf_class)`` — bool (ALT is kept there) and
    float32 class (1 / 0 / NaN unknown) — from the user map when given, else F ≥ ``fmin`` (a NaN
    frost number is unknown, not permafrost); with a presence ``probability`` (same shape),
    probability ≥ 0.5; ``(None, None)`` without either."""
    if probability is not None and permafrost_map is None:
        from gee_alt.science.permafrost_probability import CLASS_PROBABILITY

        pf = probability >= CLASS_PROBABILITY
        return pf, np.where(np.isfinite(probability), pf.astype("float32"), np.nan).astype("float32")
    if permafrost_map is not None:
        m = np.asarray(permafrost_map, "float32")
        if frost is not None:
            m = np.broadcast_to(m, np.shape(frost))
        return m == 1, m.astype("float32")
    if frost is None:
        return None, None
    pf = frost >= fmin
    return pf, np.where(np.isfinite(frost), pf.astype("float32"), np.nan).astype("float32")


def alt_maps(
    cube: xr.Dataset,
    model,
    landcover: np.ndarray | None = None,
    frost_number_min: float | None = None,
    permafrost_map: np.ndarray | None = None,
    presence: Presence | None = None,
) -> AltMaps:
    """ALT = E·√DDT for every year of the cube, with the estimator's own ``predict``/``predict_sd``
    (per-class E where the calibration has it and a land-cover map is given).

    When the cube has a frost number, ALT is kept only on permafrost pixels (F ≥
    ``frost_number_min``, default the cube's attr ``frost_number_min`` or
    :data:`gee_alt.science.thaw.FROST_NUMBER_PERMAFROST`) and is
    NaN elsewhere: seasonally frozen ground has no active layer. A user ``permafrost_map``
    ((y, x), 1 permafrost) replaces the threshold."""
    from gee_alt.science.thaw import FROST_NUMBER_PERMAFROST

    if frost_number_min is None:
        frost_number_min = cube.attrs.get("frost_number_min", FROST_NUMBER_PERMAFROST)
    fmin = float(frost_number_min)
    classes = landcover if (landcover is not None and model.e_by_class_) else None
    years = [int(y) for y in cube["year"].values]
    ddt = cube[DDT_VAR].values
    ddt_sd = cube[DDT_SD_VAR].values if DDT_SD_VAR in cube else np.zeros_like(ddt)
    alt = np.stack([model.predict(ddt[i], classes) for i in range(len(years))]).astype("float32")
    sd = np.stack([model.predict_sd(ddt[i], ddt_sd[i], classes) for i in range(len(years))]).astype("float32")
    src = np.zeros(alt.shape[1:], "float32")
    if classes is not None:
        src[np.isin(np.asarray(landcover), [float(k) for k in model.e_by_class_ if _is_number(k)])] = 1.0
    frost = cube[FROST_VAR].values.astype("float32") if FROST_VAR in cube else None
    prob = pf_class = area = None
    if presence is not None and frost is not None and permafrost_map is None:
        h = frost.shape[1]
        prob = np.stack([presence.rows(frost[i], 0, h) for i in range(len(years))])
        acc, sub = presence.area_accumulator(len(years), frost.shape[1:])
        for i in range(len(years)):
            presence.add_area(acc, i, frost[i], prob[i], sub, 0, h)
        area = presence.area(acc, years, grid_of(cube))
    pf, pf_class = permafrost_rows(frost, fmin, permafrost_map, prob)
    if pf is not None:
        alt = np.where(pf, alt, np.nan).astype("float32")
        sd = np.where(pf, sd, np.nan).astype("float32")
    src[~np.any(np.isfinite(alt), axis=0)] = np.nan
    return AltMaps(
        years,
        alt,
        sd,
        grid_of(cube),
        src,
        frost,
        fmin,
        permafrost_map,
        frost_setting_of(cube.attrs),
        pf_class if prob is not None else None,
        prob,
        area,
    )


def permafrost_criterion(
    cube: xr.Dataset, insitu_path: str | Path = "", *, seed: int = 0, fields: SiteFields | None = None
) -> dict | None:
    """The permafrost criterion of a run (``calibration.json`` ``permafrost_criterion``); None
    when the cube has no frost number.

    With a ``permafrost_boreholes.csv`` next to the in-situ table and the cube attr
    ``permafrost_criterion``:

    - ``"probability"`` (the default): a presence-probability model (penalised logistic on the
      frost number and the static predictors of ``fields``, :mod:`gee_alt.science.permafrost_probability`)
      decides the class (probability ≥ 0.5) and gives the probabilistic area; the frost-number
      threshold F₅₀ is fitted beside it (``frost_number_min``, for comparison);
    - ``"boreholes"``: the frost-number threshold F₅₀ fitted on the drill holes decides
      (:mod:`gee_alt.science.permafrost`);

    otherwise (``"frost_number"``, or no drill holes) the cube's ``frost_number_min`` (config
    ``season.frost_number_min``) is used as given."""
    from gee_alt.science.permafrost import fit_criterion
    from gee_alt.science.thaw import FROST_NUMBER_PERMAFROST

    if FROST_VAR not in cube:
        return None
    fixed = float(cube.attrs.get("frost_number_min", FROST_NUMBER_PERMAFROST))
    mode = str(cube.attrs.get("permafrost_criterion", "probability"))
    holes = runs.boreholes_csv_path(Path(insitu_path).parent) if insitu_path else None
    if mode == "frost_number" or holes is None or not holes.is_file():
        why = "season.permafrost_criterion = frost_number" if mode == "frost_number" else f"no {runs.BOREHOLES_CSV}"
        return {"rule": f"frost number >= {fixed:g} (fixed; {why})", "frost_number_min": fixed}
    years = [int(y) for y in cube["year"].values]
    from gee_alt.science.frost_climate import PixelFrost

    # the fits read the frost number at the holes (and a map sample) only: from the DDF and DDT of
    # those pixels, never the cube's lazy whole-grid frost number (issue 12)
    frost = PixelFrost(
        cube[DDF_VAR].transpose("year", "y", "x"),
        cube[DDT_VAR].transpose("year", "y", "x"),
        years,
        *frost_setting_of(cube.attrs),
    )
    try:
        fitted = fit_criterion(frost, years, grid_of(cube), holes, seed=seed).to_dict()
    except GeeAltError:
        if mode != "probability":
            raise
        fitted = {"rule": f"frost number >= {fixed:g} (fixed; no threshold could be fitted)", "frost_number_min": fixed}
    out = {**fitted, "frost_number": _describe(frost_setting_of(cube.attrs)), "boreholes_file": holes.name}
    if mode != "probability":
        return out
    from gee_alt.grid import pixel_size
    from gee_alt.science.permafrost_probability import fit_presence, static_predictors

    fields = fields or SiteFields()
    grid = grid_of(cube)
    static = static_predictors(fields.dem_m, fields.ndvi_mean, pixel_size(grid))
    shift = bool(int(cube.attrs.get("permafrost_shift_weights", 0)))
    model = fit_presence(frost, years, grid, holes, static, shift_weights=shift, seed=seed)
    return {
        **out,
        "rule": "permafrost where the presence probability >= 0.5; probability from a penalised logistic "
        f"regression of drill-hole presence (drilling year) on {', '.join(model.names)}",
        "threshold_rule": fitted.get("rule"),
        "source": "probability",
        "shift_weights": shift,
        "presence_model": model.to_dict(),
    }


def _is_number(k) -> bool:
    try:
        float(k)
    except (TypeError, ValueError):
        return False
    return True


def _alt_tags(summary: dict, engine: str, season: str, synthetic: bool) -> dict:
    """Tags every ALT product carries: engine, method, season, synthetic flag and the calibration's E."""
    import json

    return dict(
        engine=engine,
        method=STEFAN_METHOD,
        season=season,
        synthetic=synthetic,
        E=f"{float(summary['E']):.6f}",
        E_ci95=json.dumps(summary.get("E_ci95")),
        E_by_class=json.dumps(summary.get("E_by_class") or {}),
    )


def write_alt(
    run: str | Path,
    maps: AltMaps,
    summary: dict,
    *,
    engine: str = "",
    season: str = "",
    synthetic: bool = False,
    stac: bool = True,
    progress=None,
) -> list[Path]:
    """``RUN/alt/alt_YYYY.tif``, ``alt_sd_YYYY.tif`` and the STAC Item of each year."""

    from gee_alt.export.cog import write_cog
    from gee_alt.export.stac import alt_item, write_item

    common = _alt_tags(summary, engine, season, synthetic)
    paths = []
    pf = maps.permafrost
    alt_band = "alt_m" if pf is None else f"alt_m (NaN: no permafrost, frost number < {maps.frost_number_min:g})"
    if maps.presence_probability is not None and maps.permafrost_map is None:
        alt_band = PRESENCE_ALT_BAND
        if maps.presence_area is not None:
            write_json_atomic(runs.permafrost_area_path(run), maps.presence_area)
    for i, y in enumerate(maps.years):
        if pf is not None:
            paths.append(write_permafrost_year(run, y, pf[i], maps, engine=engine, season=season, synthetic=synthetic))
        a = write_cog(
            runs.alt_path(run, y),
            maps.alt_m[i],
            maps.grid,
            tags=runs.product_tags("active-layer thickness", "m", year=y, **common),
            band_descriptions=[alt_band],
        )
        s = write_cog(
            runs.alt_sd_path(run, y),
            maps.alt_sd_m[i],
            maps.grid,
            tags=runs.product_tags(
                "1-sigma predictive uncertainty of active-layer thickness",
                "m",
                year=y,
                uncertainty=summary.get("alt_sd_definition", UNCERTAINTY_FALLBACK),
                **common,
            ),
            band_descriptions=["alt_sd_m"],
        )
        paths += [a, s]
        if stac:
            item = alt_item(
                maps.grid,
                y,
                a.name,
                s.name,
                properties={"gee_alt:E": float(summary["E"]), "gee_alt:synthetic": bool(synthetic)},
            )
            write_item(runs.alt_stac_path(run, y), item)
        if progress:
            progress(1)
    if maps.e_source is not None:
        paths.append(write_e_source(run, maps, summary, engine=engine, season=season, synthetic=synthetic))
    return paths


def write_permafrost_year(
    run: str | Path, year: int, permafrost: np.ndarray, maps: AltMaps, *, engine="", season="", synthetic=False
) -> Path:
    """``RUN/permafrost/permafrost_YYYY.tif``: band 1 class (1 permafrost, 0 none, NaN unknown),
    band 2 the frost number (which one: its band description and the tags)."""
    from gee_alt.export.cog import write_cog

    i = maps.years.index(year)
    bands = [permafrost, maps.frost_number[i]]
    names = _permafrost_bands(maps.frost_setting)
    rule = "frost number >= threshold"
    if maps.presence_probability is not None and maps.permafrost_map is None:
        bands.append(maps.presence_probability[i])
        names = [*names, "presence_probability"]
        rule = PRESENCE_RULE
    return write_cog(
        runs.permafrost_path(run, year),
        np.stack(bands).astype("float32"),
        maps.grid,
        tags=_permafrost_tags(
            maps.frost_setting,
            maps.frost_number_min,
            rule,
            year=year,
            engine=engine,
            season=season,
            synthetic=synthetic,
        ),
        band_descriptions=names,
    )


#: the permafrost rule of the presence model (COG tags) and the ALT band where it decided
PRESENCE_RULE = "presence probability >= 0.5"
PRESENCE_ALT_BAND = "alt_m (NaN: no permafrost, presence probability < 0.5)"

#: what the probabilistic permafrost area is (trend.json, validation.json, the report)
PRESENCE_AREA_RULE = (
    "expected permafrost area: sum over pixels of the presence probability x pixel area (the Permafrost "
    "Zonation Index area, Gruber 2012); 95 % CI from a bootstrap over drill holes"
)

#: rows per strip of the streamed downstream (ALT, ALT sd, permafrost, AOA inflation), one year
#: at a time: memory about ``rows x width x ~60 B`` (512 x 3215 px: ~100 MB), not the extent. The
#: COG block height, so a strip decodes each block of the DDT COGs once.
DOWNSTREAM_ROWS = 512


def _year_rows(da, i: int, r0: int, r1: int) -> np.ndarray:
    """Rows ``r0:r1`` of year index ``i`` of a ``(year, y, x)`` DataArray (lazily backed or not)."""
    return np.asarray(da.isel(year=i, y=slice(r0, r1)).values)


#: columns of a row chunk whose frost number :class:`FrostRows` computes at a time
FROST_COLS = 512


class FrostRows:
    """The frost number (float32) of rows ``r0:r1`` of each year of a cube, years asked in order.

    The cube's lazy centred frost number reads the DDF and DDT of the whole window (e.g. 9 years)
    for every year it gives, so a pass over the years read each year 9 times. Here each year's DDF
    and DDT rows are read once and kept while a later year's window needs them; the ``memory``
    frost number reads each year's rows twice (the start line, then the recursion) and keeps only
    the states. The values are the cube's (the same function on the same years, pixel by pixel). A
    cube held in memory (its frost number computed) or without DDF (a frost number given as such)
    is read as it is."""

    def __init__(self, cube: xr.Dataset, r0: int, r1: int):
        from gee_alt.science.frost_climate import window_setting

        self.cube, self.r0, self.r1 = cube, r0, r1
        self.years = [int(y) for y in cube["year"].values]
        self.method, self.n = window_setting(*frost_setting_of(cube.attrs))
        lazy = FROST_VAR in cube and hasattr(cube[FROST_VAR].data, "dask")  # in memory: already computed
        self.from_windows = lazy and DDF_VAR in cube and DDT_VAR in cube and "frost_number_method" in cube.attrs
        self._rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._memory = None  # ``memory``: the streamed states of DDF and DDT of these rows

    def __call__(self, i: int) -> np.ndarray:
        if not self.from_windows:
            return _year_rows(self.cube[FROST_VAR], i, self.r0, self.r1).astype("float32")
        from gee_alt.science.frost_climate import frost_number_in_year, window_of

        if self.method == "memory":
            return self._memory_year(i)
        idx = window_of(self.years, self.years[i], self.n)
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        for k in [k for k in self._rows if k < lo or k >= hi]:
            del self._rows[k]
        for k in range(lo, hi):
            if k not in self._rows:
                self._rows[k] = tuple(_year_rows(self.cube[v], k, self.r0, self.r1) for v in (DDF_VAR, DDT_VAR))
        f = np.stack([self._rows[k][0] for k in range(lo, hi)])
        t = np.stack([self._rows[k][1] for k in range(lo, hi)])
        out = np.empty(f.shape[1:], "float32")
        # column blocks: the smoother's float64 temporaries of the window stay small (per-pixel values)
        for c0 in range(0, f.shape[2], FROST_COLS):
            c = slice(c0, c0 + FROST_COLS)
            out[:, c] = frost_number_in_year(
                f[:, :, c], t[:, :, c], self.years[lo:hi], self.years[i], self.method, self.n
            )
        return out

    def _memory_year(self, i: int) -> np.ndarray:
        """``memory``: two passes over the record's rows, each year read once per pass, only the
        states kept (:class:`~gee_alt.science.frost_climate.GroundMemory`): the first fits each
        pixel's start line, the second steps the memory to year ``i`` (a year asked out of order
        restarts the second pass)."""
        from gee_alt.science.frost_climate import GroundMemory, frost_of_indices

        if self._memory is None or i < self._memory[2]:
            mems = [GroundMemory(self.years, self.n) for _ in (DDF_VAR, DDT_VAR)]
            for k in range(len(self.years)):
                for m, v in zip(mems, (DDF_VAR, DDT_VAR), strict=True):
                    m.add(_year_rows(self.cube[v], k, self.r0, self.r1))
            self._memory = [mems, None, 0]
        mems, states, nxt = self._memory
        while nxt <= i:
            states = [
                m.step(_year_rows(self.cube[v], nxt, self.r0, self.r1))
                for m, v in zip(mems, (DDF_VAR, DDT_VAR), strict=True)
            ]
            nxt += 1
        self._memory = [mems, states, nxt]
        return frost_of_indices(*states).astype("float32")


def mapped_years(
    cube: xr.Dataset,
    model,
    landcover: np.ndarray | None = None,
    frost_number_min: float | None = None,
    *,
    permafrost_map: np.ndarray | None = None,
    presence: Presence | None = None,
    rows_per_chunk: int = DOWNSTREAM_ROWS,
) -> np.ndarray:
    """``(y, x)`` int16: how many years each pixel gets a finite ALT — exactly the pixel-years
    :func:`stream_alt` maps (finite E·√DDT, and F ≥ ``frost_number_min`` where the cube has a
    frost number) — read by row chunks of the (possibly lazy) cube."""
    from gee_alt.science.thaw import FROST_NUMBER_PERMAFROST

    if frost_number_min is None:
        frost_number_min = cube.attrs.get("frost_number_min", FROST_NUMBER_PERMAFROST)
    fmin = float(frost_number_min)
    h, w = cube.sizes["y"], cube.sizes["x"]
    classes = landcover if (landcover is not None and model.e_by_class_) else None
    out = np.zeros((h, w), "int16")
    step = max(1, int(rows_per_chunk))
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        cls = None if classes is None else classes[r0:r1]
        frost_rows = FrostRows(cube, r0, r1) if FROST_VAR in cube else None
        for i in range(cube.sizes["year"]):
            ok = np.isfinite(model.predict(_year_rows(cube[DDT_VAR], i, r0, r1), cls))
            frost = frost_rows(i) if frost_rows is not None else None
            prob = presence.rows(frost, r0, r1) if (presence is not None and frost is not None) else None
            pf, _ = permafrost_rows(frost, fmin, None if permafrost_map is None else permafrost_map[r0:r1], prob)
            if pf is not None:
                ok &= pf
            out[r0:r1] += ok
    return out


def stream_alt(
    run: str | Path,
    cube: xr.Dataset,
    model,
    summary: dict,
    landcover: np.ndarray | None = None,
    *,
    applicability=None,
    frost_number_min: float | None = None,
    permafrost_map: np.ndarray | None = None,
    presence: Presence | None = None,
    engine: str = "",
    season: str = "",
    synthetic: bool = False,
    stac: bool = True,
    progress=None,
    rows_per_chunk: int = DOWNSTREAM_ROWS,
    disturbance_start: np.ndarray | None = None,
) -> AltMaps:
    """:func:`alt_maps` + (``applicability``: the ALT sd inflated outside the area of applicability
    and its map-error sums, :class:`gee_alt.applicability_run.Applicability`) + :func:`write_alt`,
    row chunk by row chunk: only ``rows_per_chunk`` rows of every year of the cube are read at a
    time (the cube may be lazily backed, e.g. by the DDT COGs) and each product COG is written by
    windowed writes (:class:`gee_alt.export.cog.CogRows`). The same bytes whatever the chunk size
    (tested). Returns :class:`AltMaps` whose yearly maps are :class:`gee_alt.io.RasterStack` views
    of the written COGs (read again on demand, row windows for the trend).

    ``disturbance_start`` ``(y, x)`` int (0 never): when the calibration has an E of disturbed
    ground, a pixel-year at/after its start year uses it (:func:`disturbed_rows`); ``e_source.tif``
    then has a second band, the year from which the pixel uses it."""

    from gee_alt.export.cog import CogRows
    from gee_alt.export.stac import alt_item, write_item
    from gee_alt.io import RasterStack
    from gee_alt.science.thaw import FROST_NUMBER_PERMAFROST

    if frost_number_min is None:
        frost_number_min = cube.attrs.get("frost_number_min", FROST_NUMBER_PERMAFROST)
    fmin = float(frost_number_min)
    grid = grid_of(cube)
    h, w = cube.sizes["y"], cube.sizes["x"]
    years = [int(y) for y in cube["year"].values]
    classes = landcover if (landcover is not None and model.e_by_class_) else None
    calibrated_classes = [float(k) for k in model.e_by_class_ if _is_number(k)]
    has_frost = FROST_VAR in cube
    has_pf = has_frost or permafrost_map is not None
    setting = frost_setting_of(cube.attrs)
    common = _alt_tags(summary, engine, season, synthetic)
    if permafrost_map is not None:
        alt_band, pf_rule = (
            "alt_m (NaN: no permafrost on the user permafrost map)",
            "user permafrost map (1 = permafrost)",
        )
    elif has_frost and presence is not None:
        alt_band = PRESENCE_ALT_BAND
        pf_rule = PRESENCE_RULE
    elif has_frost:
        alt_band = f"alt_m (NaN: no permafrost, frost number < {fmin:g})"
        pf_rule = "frost number >= threshold"
    else:
        alt_band, pf_rule = "alt_m", ""
    use_p = presence is not None and has_frost and permafrost_map is None
    if use_p:
        acc, sub_mask = presence.area_accumulator(len(years), (h, w))
    writers: dict[tuple[str, int], CogRows] = {}
    try:
        for y in years:
            if has_pf:
                writers["pf", y] = CogRows(
                    runs.permafrost_path(run, y),
                    grid,
                    3 if use_p else 2,
                    tags=_permafrost_tags(
                        setting, fmin, pf_rule, year=y, engine=engine, season=season, synthetic=synthetic
                    ),
                    band_descriptions=_permafrost_bands(setting) + (["presence_probability"] if use_p else []),
                )
            writers["alt", y] = CogRows(
                runs.alt_path(run, y),
                grid,
                tags=runs.product_tags("active-layer thickness", "m", year=y, **common),
                band_descriptions=[alt_band],
            )
            writers["sd", y] = CogRows(
                runs.alt_sd_path(run, y),
                grid,
                tags=runs.product_tags(
                    "1-sigma predictive uncertainty of active-layer thickness",
                    "m",
                    year=y,
                    uncertainty=summary.get("alt_sd_definition", UNCERTAINTY_FALLBACK),
                    **common,
                ),
                band_descriptions=["alt_sd_m"],
            )
        src = np.empty((h, w), "float32")
        step = max(1, int(rows_per_chunk))
        for r0 in range(0, h, step):
            r1 = min(h, r0 + step)
            cls = None if classes is None else classes[r0:r1]
            mapped = np.zeros((r1 - r0, w), bool)
            frost_rows = FrostRows(cube, r0, r1) if has_frost else None
            for i, y in enumerate(years):  # one year of the row strip at a time: every value is per pixel-year
                ddt = _year_rows(cube[DDT_VAR], i, r0, r1)
                ddt_sd = _year_rows(cube[DDT_SD_VAR], i, r0, r1) if DDT_SD_VAR in cube else np.zeros_like(ddt)
                dis = disturbed_rows(model, disturbance_start, r0, r1, y)
                alt = model.predict(ddt, cls, dis).astype("float32")
                sd = model.predict_sd(ddt, ddt_sd, cls, disturbed=dis).astype("float32")
                del ddt_sd
                if has_pf:
                    frost = frost_rows(i) if has_frost else np.full(alt.shape, np.nan, "float32")
                    prob = presence.rows(frost, r0, r1) if use_p else None
                    pf, pf_class = permafrost_rows(
                        frost, fmin, None if permafrost_map is None else permafrost_map[r0:r1], prob
                    )
                    alt = np.where(pf, alt, np.nan).astype("float32")
                    sd = np.where(pf, sd, np.nan).astype("float32")
                    if use_p:
                        presence.add_area(acc, i, frost, prob, sub_mask[r0:r1], r0, r1)
                        writers["pf", y].write(r0, np.stack([pf_class, frost, prob]))
                    else:
                        writers["pf", y].write(r0, np.stack([pf_class, frost]))
                    del frost, pf, pf_class, prob
                mapped |= np.isfinite(alt)
                if applicability is not None:
                    sd = applicability.inflate(r0, r1, ddt[None], sd[None])[0]
                    applicability.add(r0, r1, ddt[None], alt[None])
                writers["alt", y].write(r0, alt)
                writers["sd", y].write(r0, sd)
                del ddt, alt, sd
            s = np.zeros((r1 - r0, w), "float32")
            if classes is not None:
                s[np.isin(np.asarray(landcover[r0:r1]), calibrated_classes)] = 1.0
            s[~mapped] = np.nan
            src[r0:r1] = s
        for y in years:
            if has_pf:
                writers.pop(("pf", y)).close()
            a = writers.pop(("alt", y)).close()
            b = writers.pop(("sd", y)).close()
            if stac:
                item = alt_item(
                    grid,
                    y,
                    a.name,
                    b.name,
                    properties={"gee_alt:E": float(summary["E"]), "gee_alt:synthetic": bool(synthetic)},
                )
                write_item(runs.alt_stac_path(run, y), item)
            if progress:
                progress(1)
    finally:
        for wr in writers.values():
            wr.discard()
    pf_paths = [runs.permafrost_path(run, y) for y in years]
    area = None
    if use_p:
        area = presence.area(acc, years, grid)
        write_json_atomic(runs.permafrost_area_path(run), area)
    maps = AltMaps(
        years,
        RasterStack([runs.alt_path(run, y) for y in years], (h, w)),
        RasterStack([runs.alt_sd_path(run, y) for y in years], (h, w)),
        grid,
        src,
        RasterStack(pf_paths, (h, w), band=2) if has_pf else None,
        fmin,
        permafrost_map,
        setting,
        RasterStack(pf_paths, (h, w), band=1) if use_p else None,
        RasterStack(pf_paths, (h, w), band=3) if use_p else None,
        area,
    )
    if disturbance_start is not None and getattr(model, "uses_disturbed_e", False):
        ds = np.asarray(disturbance_start, "float32")
        maps.e_disturbed_from = np.where((ds > 0) & np.isfinite(src), ds, np.nan).astype("float32")
    write_e_source(run, maps, summary, engine=engine, season=season, synthetic=synthetic)
    return maps


def write_e_source(run: str | Path, maps: AltMaps, summary: dict, *, engine="", season="", synthetic=False) -> Path:
    """``RUN/alt/e_source.tif`` (see :func:`gee_alt.runs.e_source_path`)."""

    from gee_alt.export.cog import write_cog

    common = _alt_tags(summary, engine, season, synthetic)
    what = "source of the Stefan E: 1 calibrated on this land-cover class, 0 extrapolated from the pool"
    data, bands = maps.e_source, ["e_class_calibrated"]
    if maps.e_disturbed_from is not None:
        what += (
            "; band 2: the year from which the pixel uses the E of disturbed ground (its disturbance start; "
            "NaN never), band 1 applies to the years before"
        )
        data, bands = np.stack([maps.e_source, maps.e_disturbed_from]), [*bands, "e_disturbed_from_year"]
    return write_cog(
        runs.e_source_path(run),
        data,
        maps.grid,
        tags=runs.product_tags(what, "1", **common),
        band_descriptions=bands,
    )


def _row_chunks(h: int, rows: int = 64):
    """Row windows for re-reading the written COGs (GDAL caches the decoded 512-row blocks)."""
    for r0 in range(0, h, rows):
        yield r0, min(h, r0 + rows)


def extent_series(maps: AltMaps) -> dict | None:
    """Yearly permafrost extent: area (km²) and fraction of the pixels with a known frost number,
    and the Theil–Sen/Mann–Kendall trend of the area; None without a frost number."""
    from gee_alt.grid import pixel_size
    from gee_alt.io import rows_of
    from gee_alt.science.trend import series_trend

    if maps.frost_number is None and maps.permafrost_map is None:
        return None
    px_km2 = pixel_size(maps.grid) ** 2 / 1e6
    n_years = len(maps.years)
    known = np.zeros(n_years, np.int64)
    n_pf = np.zeros(n_years, np.int64)  # counts: exact, whatever the chunking
    if maps.permafrost_map is not None:  # static: the same extent every year
        m = maps.permafrost_map
        known += int(np.isfinite(m).sum())
        n_pf += int((m == 1).sum())
    elif maps.permafrost_class is not None:  # the presence model's class map (probability >= 0.5)
        for r0, r1 in _row_chunks(maps.permafrost_class.shape[1]):
            c = rows_of(maps.permafrost_class, r0, r1)
            known += np.isfinite(c).sum(axis=(1, 2))
            n_pf += (c == 1).sum(axis=(1, 2))
    else:
        for r0, r1 in _row_chunks(maps.frost_number.shape[1]):
            f = rows_of(maps.frost_number, r0, r1)
            known += np.isfinite(f).sum(axis=(1, 2))
            n_pf += (np.isfinite(f) & (f >= maps.frost_number_min)).sum(axis=(1, 2))
    n_pf = n_pf.astype("float64")
    area = (n_pf * px_km2).astype(float)
    frac = np.where(known > 0, n_pf / np.maximum(known, 1), np.nan)
    if maps.permafrost_map is not None:
        rule = "user permafrost map (static)"
    elif maps.permafrost_class is not None:
        rule = "class map: presence probability >= 0.5 (area = count of class pixels x pixel area)"
    else:
        rule = f"surface frost number >= {maps.frost_number_min:g}"
    out = {
        "years": list(maps.years),
        "area_km2": [float(a) for a in area],
        "fraction": [float(f) for f in frac],
        "frost_number_min": maps.frost_number_min,
        "rule": rule,
        "frost_number": None if maps.permafrost_map is not None else _describe(maps.frost_setting),
        "area_trend_km2_per_yr": series_trend(maps.years, area),
        "fraction_trend_per_yr": series_trend(maps.years, frac),
    }
    if maps.presence_area is not None and maps.permafrost_map is None:
        pa = maps.presence_area
        out["probabilistic"] = {
            **pa,
            "area_trend_km2_per_yr": series_trend(maps.years, np.asarray(pa["area_km2"], float)),
            "note": "the area to quote: the class map's area is biased wherever the classes overlap "
            "(thresholding at 0.5 does not preserve prevalence); area_km2 above is the class map's",
        }
    return out


def _describe(setting: tuple[str, int]) -> str:
    from gee_alt.science.frost_climate import describe

    return describe(*setting)


# -------------------------------------------------------------------------------- trend
def check_mask(mask_geojson: str | Path | None, grid: Grid) -> np.ndarray | None:
    """The pixels inside a lon/lat polygon GeoJSON (bool ``(y, x)``), checked before anything is written."""
    from gee_alt.science.trend import rasterize_geojson

    if mask_geojson is None:
        return None
    p = Path(mask_geojson)
    if not p.is_file():
        raise GeeAltError(f"mask polygon not found: {p}")
    try:
        inside = rasterize_geojson(p, grid)
    except GeeAltError as exc:
        raise GeeAltError(f"mask {p.name}: {exc}; give a Polygon GeoJSON in lon/lat") from None
    except Exception as exc:  # malformed coordinates (rasterio/shapely raise several types)
        raise GeeAltError(
            f"mask {p.name} has an invalid geometry ({type(exc).__name__}); give a Polygon GeoJSON in lon/lat"
        ) from None
    if not inside.any():
        raise GeeAltError(f"{p.name} does not cover any pixel of the run's grid")
    return inside


@dataclass
class TrendMaps:
    """Per-pixel Theil–Sen slope of ALT (cm/yr) and Mann–Kendall p (1), ``(y, x)`` float32."""

    slope_cm_per_yr: np.ndarray
    p_value: np.ndarray
    summary: dict


def write_trend(
    run: str | Path,
    maps: AltMaps,
    *,
    inside: np.ndarray | None = None,
    ring_width_px: int = 10,
    min_valid_years: int = TREND_MIN_YEARS,
    synthetic: bool = False,
    calibration: dict | None = None,
) -> TrendMaps:
    """Per-pixel trend of the ALT maps, the area-mean series and (with ``inside``) the
    inside-vs-ring contrast; writes ``RUN/trend/*``."""
    from gee_alt.export.cog import write_cog
    from gee_alt.science.trend import (
        area_mean_series,
        disturbance_contrast,
        fdr_bh,
        series_trend,
        trend_cube,
    )

    years, alt = maps.years, maps.alt_m
    if len(years) < 3:
        raise GeeAltError(f"a trend needs at least 3 years of ALT, the run has {len(years)}; run more years")
    res = trend_cube(alt, years, min_valid_years=min(min_valid_years, len(years)))
    slope_cm = (res["slope"] * 100.0).astype("float32")
    p_value = res["p_value"].astype("float32")
    common = dict(
        method="Theil-Sen slope, Mann-Kendall test (tie-corrected; Hamed-Rao 1998 AR(1) variance "
        f"correction, map-wide rho={res['serial_rho']:.3f}; exact distribution below 8 years)",
        synthetic=synthetic,
        years=f"{years[0]}-{years[-1]}",
    )
    write_cog(
        runs.trend_slope_path(run),
        slope_cm,
        maps.grid,
        tags=runs.product_tags("trend of active-layer thickness", "cm/yr", **common),
    )
    write_cog(
        runs.trend_p_path(run),
        p_value,
        maps.grid,
        tags=runs.product_tags("Mann-Kendall p-value of the ALT trend", "1", **common),
    )
    series = area_mean_series(alt, years)
    rel_e_sd = 0.0
    ci = (calibration or {}).get("E_ci95")
    if ci and calibration.get("E"):
        rel_e_sd = float((ci[1] - ci[0]) / (2 * 1.959964) / float(calibration["E"]))
    finite_p = np.isfinite(p_value)
    out = {
        "years": years,
        "area_mean_alt_m": series,
        "area_trend": series_trend(years, series["mean"], rel_scale_sd=rel_e_sd),
        "area_trend_note": "Theil-Sen slope of the area-mean ALT; CI from the series itself (Sen's CI with "
        "the Hamed-Rao AR(1) inflation) plus the calibration's E uncertainty (slope * se(E)/E) in quadrature",
        "serial_rho": res["serial_rho"],
        "mk_method": "Hamed-Rao (1998) variance correction with AR(1) rank autocorrelation, one bias-corrected "
        "map-wide rho; exact MK distribution below 8 years",
        "pixels_significant_frac_p05": float(np.nanmean(p_value < 0.05)),
        "pixels_significant_frac_fdr05": float(fdr_bh(p_value, 0.05)[finite_p].mean()) if finite_p.any() else 0.0,
        "fdr_note": "share of pixels significant with Benjamini-Hochberg false-discovery rate 0.05 (the p<0.05 "
        "share has no multiple-testing control)",
        "median_slope_cm_per_yr": float(np.nanmedian(slope_cm)),
    }
    extent = extent_series(maps)
    if extent is not None:
        out["area_note"] = "area means and trends cover permafrost pixels only (ALT is NaN elsewhere)"
        out["permafrost_extent"] = extent
    if inside is not None:
        out["disturbance"] = {
            "alt_slope_cm_per_yr": disturbance_contrast(slope_cm, inside, ring_width_px),
            "alt_mean_m": disturbance_contrast(_mean_over_years(alt), inside, ring_width_px),
        }
    write_json_atomic(runs.trend_json_path(run), out)
    return TrendMaps(slope_cm, p_value, out)


def _mean_over_years(alt) -> np.ndarray:
    """Per-pixel mean ALT over the years (NaN-skipping), ``(y, x)``, row chunk by row chunk."""
    import warnings

    from gee_alt.io import rows_of

    h, w = alt.shape[1:]
    out = np.empty((h, w), "float32")
    for r0, r1 in _row_chunks(h):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[r0:r1] = np.nanmean(rows_of(alt, r0, r1), axis=0)
    return out


# ------------------------------------------------------------------------------- NetCDF
def write_netcdf(run: str | Path, cube: xr.Dataset, maps: AltMaps, summary: dict) -> Path:
    """``RUN/cube.nc``: ALT, ALT sd and DDT of all years (CF)."""
    from gee_alt.export.netcdf import write_alt_netcdf

    return write_alt_netcdf(Path(run) / runs.CUBE_NC, cube, maps.alt_m, maps.alt_sd_m, calibration=summary)
