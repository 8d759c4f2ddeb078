"""The yearly 30 m thawing-degree-day image (pure graph builder): the local engine's method.

Per year:

1. NDVI: growing-season MODIS NDVI (250 m) is sharpened to 30 m on terrain (without
   illumination) + Landsat NDVI (gaps filled with bilinear MODIS NDVI); clear Landsat pixels
   are kept and the gaps take the sharpened value, clamped to -0.2..1 (the local ``ndvi_fusion``).
2. LST: each calendar month of the thaw season is sharpened on its own — target = mean of the
   month's raw 8-day windows (1 km), predictors = all terrain + the 30 m NDVI — giving a
   month's 30 m anomaly ``dlst = sharpened − bilinear(month target)`` (0 where the month had no
   look). Each window's 30 m LST = bilinear(gap-filled window) + its month's anomaly.
3. DDT (°C·day) = Σ_windows days · max(LST_30m, 0); ``ddt_sd_degc_days`` = Σ_windows days ·
   err_month · [LST_30m > 0], err_month the month forest's hold-out RMSE (the local engine's
   out-of-bag RMSE, errors of one year fully correlated as in
   :func:`gee_alt.science.thaw.ddt_spread`); ``n_obs`` = windows with a raw LST observation.

Every forest is :func:`gee_alt.engines.ee.sharpen.sharpen`: homogeneity weights by scene sd,
ridge trend + forest on its residuals, radiance-like residual correction for LST. The
remaining differences from the local engine are tabled in the README ("Earth Engine and local
engine: what still differs").

4. DDF (°C·day) of the winter before (autumn of Y−1 + spring of Y, 8-day windows, same
   sparse-season rule) at 1 km, bilinear to 30 m (the local engine sums its sharpened 30 m
   LST); the frost number F = √DDF/(√DDF+√DDT) is derived from it in the shared cube.

Output bands: ``ddt_degc_days``, ``ddt_sd_degc_days``, ``n_obs``, ``ddf_degc_days`` (float32), reprojected to the
output grid (``crs`` + ``crsTransform``). See :mod:`gee_alt.engines.ee.composite` for the LST
time step, day/night handling, gap filling and empty-window guards.
"""

from __future__ import annotations

from dataclasses import dataclass

import ee

from gee_alt.config import StudyConfig
from gee_alt.engines.ee import collections as col
from gee_alt.engines.ee import composite
from gee_alt.engines.ee.footprint import required_max_pixels
from gee_alt.engines.ee.sharpen import Predictors, prepare_predictors, sharpen
from gee_alt.grid import MODIS_1KM, MODIS_250M, Grid, pixel_size
from gee_alt.science.terrain import NDVI_TERRAIN_PREDICTORS, TERRAIN_PREDICTORS

MODIS_1KM_SCALE_M = MODIS_1KM  # MOD11A1 sinusoidal pixel (m)
MODIS_250M_SCALE_M = MODIS_250M  # MOD13Q1 / MOD09GQ sinusoidal pixel (m)

NDVI_SEED_OFFSET = 0  # NDVI forest / sampling seed = rf.random_state + this
LST_SEED_OFFSET = 1  # LST forest of month k (0-based in the season) = rf.random_state + this + k
NDVI_PREDICTORS = [*NDVI_TERRAIN_PREDICTORS, "landsat_ndvi"]  # the NDVI forest's 30 m predictors (local order)
LST_PREDICTORS = [*TERRAIN_PREDICTORS, "ndvi"]  # the LST forests'
NDVI_FUSED_RANGE = (-0.2, 1.0)  # as the local engine clips its fused 30 m NDVI


def fine_projection(grid: Grid) -> ee.Projection:
    """The output grid's projection (CRS + affine transform, pixel size in CRS units)."""
    return ee.Projection(grid["crs"], list(grid["crs_transform"]))


def region_geometry(cfg: StudyConfig) -> ee.Geometry:
    """The AOI as a planar lon/lat ``ee.Geometry`` (polygon or bbox rectangle, degrees)."""
    return ee.Geometry(cfg.aoi_geojson(), "EPSG:4326", False)


def max_pixels_for(cfg: StudyConfig, grid: Grid, coarse_m: float) -> int:
    """``reduceResolution`` ``maxPixels`` for 30 m -> ``coarse_m`` on this AOI and grid (footprint-measured)."""
    return required_max_pixels(grid, cfg.bbox, coarse_m, cfg.ee_sampling.reduce_max_pixels)


def sharpened_ndvi(
    cfg: StudyConfig, year: int, region: ee.Geometry, fine_proj: ee.Projection, terrain: ee.Image, grid: Grid
) -> ee.Image:
    """30 m NDVI for ``year``: band ``ndvi`` (fused, unitless) and ``ndvi_err`` (hold-out RMSE)."""
    modis = composite.modis_ndvi_composite(cfg, year, region)
    modis_proj = col.modis_projection(cfg.collections.ndvi, col.modis_ndvi_band(cfg.collections.ndvi))
    modis_bilinear = modis.reproject(crs=modis_proj).resample("bilinear")
    landsat_raw = composite.landsat_ndvi_composite(cfg, year, region, fine_proj)
    landsat_filled = landsat_raw.unmask(modis_bilinear, False).rename("landsat_ndvi")
    predictors = ee.Image.cat([terrain, landsat_filled]).reproject(crs=fine_proj)
    p = prepare_predictors(
        predictors,
        NDVI_PREDICTORS,
        modis_proj,
        MODIS_250M_SCALE_M,
        pixel_size(grid),
        region,
        cfg.ee_sampling,
        max_pixels_for(cfg, grid, MODIS_250M_SCALE_M),
        cfg.rf.homogeneity_drop,
    )
    sharp = sharpen(modis, p, cfg.rf, cfg.ee_sampling, cfg.rf.random_state + NDVI_SEED_OFFSET, "ndvi")
    fused = landsat_raw.unmask(sharp.select("ndvi"), False).clamp(*NDVI_FUSED_RANGE).rename("ndvi")
    return ee.Image.cat([fused, sharp.select("ndvi_err")])


def lst_predictors(
    cfg: StudyConfig, region: ee.Geometry, fine_proj: ee.Projection, season, ndvi: ee.Image, terrain: ee.Image, grid
) -> Predictors:
    """The LST forests' predictors (terrain + 30 m NDVI), aggregated and weighed once per year."""
    fine = ee.Image.cat([terrain, ndvi.select("ndvi")]).reproject(crs=fine_proj)
    return prepare_predictors(
        fine,
        LST_PREDICTORS,
        season.projection,
        MODIS_1KM_SCALE_M,
        pixel_size(grid),
        region,
        cfg.ee_sampling,
        max_pixels_for(cfg, grid, MODIS_1KM_SCALE_M),
        cfg.rf.homogeneity_drop,
    )


def lst_anomalies(cfg: StudyConfig, season: composite.LstSeason, p: Predictors) -> list[ee.Image]:
    """Per month of the season: bands ``dlst_degc`` (30 m anomaly against the bilinear month
    target, 0 where the month had no look) and ``dlst_err_degc`` (hold-out RMSE, 0 if none)."""
    out = []
    for k, target in enumerate(season.month_degc):
        sharp = sharpen(target, p, cfg.rf, cfg.ee_sampling, cfg.rf.random_state + LST_SEED_OFFSET + k, "lst_degc", True)
        coarse_bilinear = target.reproject(crs=season.projection).resample("bilinear")
        out.append(
            ee.Image.cat(
                [
                    sharp.select("lst_degc").subtract(coarse_bilinear).unmask(0, False).rename("dlst_degc"),
                    sharp.select("lst_degc_err").unmask(0, False).rename("dlst_err_degc"),
                ]
            )
        )
    return out


@dataclass
class YearFields:
    """The intermediate graphs of one year (shared by :func:`ddt_image`, validation and the map)."""

    region: ee.Geometry
    fine_proj: ee.Projection
    ndvi: ee.Image
    season: composite.LstSeason
    anomalies: list[ee.Image]  # one per month of the season (see :func:`lst_anomalies`)

    def month_of_window(self) -> list[int]:
        """Index into :attr:`anomalies` of each window."""
        out = [0] * len(self.season.windows)
        for m, (_, idx) in enumerate(self.season.months):
            for k in idx:
                out[k] = m
        return out

    def window_lst_30m(self) -> list[ee.Image]:
        """Each window's 30 m LST (°C): bilinear gap-filled window + its month's anomaly."""
        months = self.month_of_window()
        return [
            lst.reproject(crs=self.season.projection).resample("bilinear").add(self.anomalies[m].select("dlst_degc"))
            for lst, m in zip(self.season.filled, months, strict=True)
        ]

    def anomaly_by_month(self) -> ee.Image:
        """All months' anomalies as one image, bands ``dlst_MM`` (°C)."""
        return ee.Image.cat(
            [
                a.select("dlst_degc").rename(f"dlst_{mm}")
                for a, (mm, _) in zip(self.anomalies, self.season.months, strict=True)
            ]
        )


def year_fields(cfg: StudyConfig, year: int, grid: Grid) -> YearFields:
    """Build the sharpened NDVI, the LST season windows and the monthly 30 m LST anomalies of ``year``."""
    fine_proj = fine_projection(grid)
    region = region_geometry(cfg)
    terrain = col.terrain_predictors(cfg.collections.dem)
    ndvi = sharpened_ndvi(cfg, year, region, fine_proj, terrain, grid)
    season = composite.lst_season(cfg, year, region)
    p = lst_predictors(cfg, region, fine_proj, season, ndvi, terrain, grid)
    return YearFields(region, fine_proj, ndvi, season, lst_anomalies(cfg, season, p))


def forests_per_year(cfg: StudyConfig, year: int) -> dict[str, int]:
    """Forests one year's graph trains: evaluated at 30 m (1 NDVI + 1 per thaw-season month) and
    hold-out forests (coarse scale only, one per 30 m forest)."""
    windows = composite.lst_windows(year, cfg.season.thaw_start, cfg.season.thaw_end, cfg.season.lst_step_days)
    months = len(composite.month_groups(windows))
    return {"ndvi": 1, "lst_months": months, "at_30m": 1 + months, "holdout": 1 + months}


def ddt_image(
    cfg: StudyConfig, year: int, grid: Grid | None = None, *, on_grid: bool = True, fields: YearFields | None = None
) -> ee.Image:
    """The yearly 30 m DDT image: ``ddt_degc_days`` (°C·day), ``ddt_sd_degc_days`` (°C·day),
    ``n_obs`` (windows with valid LST, count as float), ``ddf_degc_days`` (°C·day, the winter
    before: :func:`gee_alt.engines.ee.composite.freezing_season_ddf`, 1 km bilinear), on
    ``grid`` (default ``cfg.grid()``).
    ``on_grid=False`` leaves out the final reprojection (map layers: computed at the map's scale);
    ``fields``: the year's :func:`year_fields` when already built (same graph)."""
    grid = grid or cfg.grid()
    f = fields or year_fields(cfg, year, grid)
    season = f.season
    months = f.month_of_window()
    ddt_parts, sd_parts = [], []
    for window, t_fine, m in zip(season.windows, f.window_lst_30m(), months, strict=True):
        ddt_parts.append(t_fine.max(0).multiply(window.days))
        sd_parts.append(t_fine.gt(0).multiply(window.days).multiply(f.anomalies[m].select("dlst_err_degc")))
    ddt = ee.ImageCollection.fromImages(ddt_parts).sum().rename("ddt_degc_days")
    sd = ee.ImageCollection.fromImages(sd_parts).sum().rename("ddt_sd_degc_days")
    n_obs = season.n_valid.rename("n_obs")
    enough = n_obs.gte(cfg.season.min_valid_fraction * len(season.windows))
    ddf = composite.freezing_season_ddf(cfg, year, f.region).reproject(crs=season.projection).resample("bilinear")
    out = ee.Image.cat([ddt.updateMask(enough), sd.updateMask(enough), n_obs, ddf]).toFloat()
    if on_grid:
        out = out.reproject(crs=grid["crs"], crsTransform=list(grid["crs_transform"]))
    return out.set(
        {"gee_alt_year": year, "gee_alt_engine": "ee", "system:time_start": ee.Date.fromYMD(year, 1, 1).millis()}
    )


THAW_FRACTION_MARK = "gee_alt_thaw_fraction"  # property marking a year's thaw-progress request


def thaw_fraction_knots(windows) -> list[float]:
    """Days of year (fractional, end of day) of the thaw-progress knots: the day before the first
    window, then the last day of each window (as :func:`gee_alt.science.thaw.ddt_fraction_by_doy`)."""
    import datetime as dt

    first = dt.date.fromisoformat(windows[0].start).timetuple().tm_yday - 1
    return [float(first)] + [dt.date.fromisoformat(w.start).timetuple().tm_yday - 1 + float(w.days) for w in windows]


def thaw_fraction_request(cfg: StudyConfig, year: int, season: composite.LstSeason | None = None):
    """``(request, knots)``: the year's thaw progress as a small ``ee.Dictionary`` request
    ``{"fKK": area median of each 1 km pixel's cumulative DDT at the end of window KK / its season
    DDT}`` (pixels with a positive season DDT; the gap-filled windows, as the local engine's
    :func:`gee_alt.science.thaw.ddt_fraction_by_doy` uses its filled coarse composites) and the
    knots' days of year (:func:`thaw_fraction_knots`, the first with fraction 0). The pull turns
    it into the cube's ``ddt_fraction_by_doy`` (:func:`gee_alt.engines.ee.pull.thaw_curve`)."""
    region = region_geometry(cfg)
    season = season or composite.lst_season(cfg, year, region)
    cum, total = [], None
    for f, w in zip(season.filled, season.windows, strict=True):
        part = f.max(0).multiply(w.days).unmask(0, False)
        total = part if total is None else total.add(part)
        cum.append(total)
    frac = ee.Image.cat([c.divide(total).rename(f"f{k:02d}") for k, c in enumerate(cum)]).updateMask(total.gt(0))
    stats = frac.reduceRegion(
        reducer=ee.Reducer.median(),
        geometry=region,
        crs=season.projection,
        scale=MODIS_1KM_SCALE_M,
        maxPixels=int(1e10),
        tileScale=cfg.ee_sampling.tile_scale,
    )
    request = ee.Feature(None, stats).set({"gee_alt_year": year, THAW_FRACTION_MARK: 1}).toDictionary()
    return request, thaw_fraction_knots(season.windows)


def site_fields_image(cfg: StudyConfig, grid: Grid | None = None) -> ee.Image:
    """The run's static site-screen fields on ``grid``: ``elevation_m`` (m, the configured DEM,
    bilinear) and ``ndvi_mean`` (1): the mean over the study years of the growing-season Landsat
    NDVI composite, gaps filled with bilinear MODIS NDVI (the local engine averages its fused
    30 m NDVI instead; both feed the NDVI-homogeneity screen of the in-situ sites)."""
    grid = grid or cfg.grid()
    fine_proj = fine_projection(grid)
    region = region_geometry(cfg)
    modis_proj = col.modis_projection(cfg.collections.ndvi, col.modis_ndvi_band(cfg.collections.ndvi))
    yearly = []
    for year in cfg.year_list():
        modis = composite.modis_ndvi_composite(cfg, year, region).reproject(crs=modis_proj).resample("bilinear")
        yearly.append(composite.landsat_ndvi_composite(cfg, year, region, fine_proj).unmask(modis, False))
    ndvi_mean = ee.ImageCollection.fromImages(yearly).mean().rename("ndvi_mean")
    dem = col.dem_elevation_m(cfg.collections.dem).resample("bilinear")
    return ee.Image.cat([dem, ndvi_mean]).toFloat().reproject(crs=grid["crs"], crsTransform=list(grid["crs_transform"]))


def year_images(
    cfg: StudyConfig, year: int, grid: Grid | None = None, e: float | None = None, e_sd: float = 0.0
) -> dict[str, ee.Image]:
    """Map layers of one year as server-side images (for geemap; see :func:`gee_alt.viz.notebook.add_ee_layers`).

    ``lst`` thaw-season mean 30 m LST (°C), ``ddt`` (°C·day) and, with a Stefan coefficient
    ``e`` (m (°C·day)^-1/2, e.g. from a calibrated run's ``calibration.json``), ``alt`` (m)
    and ``alt_sd`` (m, from ``e_sd`` and the DDT spread).
    """
    grid = grid or cfg.grid()
    f = year_fields(cfg, year, grid)
    lst = ee.ImageCollection.fromImages(f.window_lst_30m()).mean().rename("lst_degc")
    ddt_all = ddt_image(cfg, year, grid, on_grid=False, fields=f)
    ddt = ddt_all.select("ddt_degc_days")
    out = {"lst": lst, "ddt": ddt}  # not reprojected: the map computes each tile at its own zoom scale
    if e is not None:
        out["alt"] = ddt.max(0).sqrt().multiply(e).rename("alt_m")
        ddt_sd = ddt_all.select("ddt_sd_degc_days")
        var = ddt.multiply(e_sd**2).add(ddt_sd.pow(2).multiply(e * e / 4.0).divide(ddt.max(1)))
        out["alt_sd"] = var.sqrt().rename("alt_sd_m")
    return out
