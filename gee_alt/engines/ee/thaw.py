"""The yearly 30 m thawing-degree-day image (pure graph builder).

Per year:

1. NDVI: growing-season MODIS NDVI (250 m) is sharpened to 30 m on Landsat NDVI + terrain
   without illumination (Landsat gaps — SLC-off, cloud — filled with bilinear MODIS NDVI).
2. LST: the thaw-season mean daily LST (1 km) is sharpened to 30 m on sharpened NDVI + all
   terrain predictors. Its 30 m anomaly ``dlst = sharpened − bilinear(coarse mean)`` is the
   sub-kilometre pattern, assumed constant through the season (bias: the daytime-driven
   contrast of summer also applies to the shoulders, where it is smaller).
3. DDT (°C·day) = Σ_windows days · max(bilinear(window LST) + dlst, 0).
   ``ddt_sd_degc_days`` = sd(dlst) · (days with thaw): tree spread, fully correlated across
   windows (conservative). ``n_obs`` = windows with a raw LST observation (1 km, as float).

Output bands: ``ddt_degc_days``, ``ddt_sd_degc_days``, ``n_obs`` (float32), reprojected to the
output grid (``crs`` + ``crsTransform``). See :mod:`gee_alt.engines.ee.composite` for the LST
time step, day/night handling and gap filling.

Differences from the local engine (:mod:`gee_alt.engines.local.engine`), to keep in mind when comparing:
the local engine sharpens every composite (one multi-output forest per year) instead of adding
one seasonal anomaly; it weights coarse training pixels by homogeneity, which EE sampling cannot
(both leave out the ``rf.homogeneity_drop`` least homogeneous ones, default none); and it fuses
clear Landsat NDVI with the sharpened MODIS NDVI. Both aggregate LST radiance-like (T⁴) for the
residual correction and use the same terrain predictors (:mod:`gee_alt.science.terrain`).
"""

from __future__ import annotations

from dataclasses import dataclass

import ee

from gee_alt.config import StudyConfig
from gee_alt.engines.ee import collections as col
from gee_alt.engines.ee import composite
from gee_alt.engines.ee.sharpen import sharpen
from gee_alt.grid import Grid
from gee_alt.science.terrain import ELEVATION_M, NDVI_TERRAIN_PREDICTORS, TERRAIN_PREDICTORS

MODIS_1KM_SCALE_M = 926.625433055833  # MOD11A1 sinusoidal pixel (m)
MODIS_250M_SCALE_M = 231.656358263958  # MOD13Q1 / MOD09GQ sinusoidal pixel (m)

NDVI_SEED_OFFSET = 0  # NDVI forest / sampling seed = rf.random_state + this
LST_SEED_OFFSET = 1  # LST forest / sampling seed = rf.random_state + this
NDVI_PREDICTORS = ["landsat_ndvi", *NDVI_TERRAIN_PREDICTORS]  # the NDVI forest's 30 m predictors
LST_PREDICTORS = ["ndvi", *TERRAIN_PREDICTORS]  # the LST forest's


def fine_projection(grid: Grid) -> ee.Projection:
    """The output grid's projection (CRS + affine transform, pixel size in CRS units)."""
    return ee.Projection(grid["crs"], list(grid["crs_transform"]))


def region_geometry(cfg: StudyConfig) -> ee.Geometry:
    """The AOI as a planar lon/lat ``ee.Geometry`` (polygon or bbox rectangle, degrees)."""
    return ee.Geometry(cfg.aoi_geojson(), "EPSG:4326", False)


def sharpened_ndvi(
    cfg: StudyConfig, year: int, region: ee.Geometry, fine_proj: ee.Projection, terrain: ee.Image
) -> ee.Image:
    """30 m NDVI (bands ``ndvi``, ``ndvi_sd``; unitless) for ``year``."""
    modis = composite.modis_ndvi_composite(cfg, year, region)
    modis_proj = col.modis_projection(cfg.collections.ndvi, col.modis_ndvi_band(cfg.collections.ndvi))
    modis_bilinear = modis.reproject(crs=modis_proj).resample("bilinear")
    landsat_ndvi = (
        composite.landsat_ndvi_composite(cfg, year, region, fine_proj)
        .unmask(modis_bilinear, False)
        .rename("landsat_ndvi")
    )
    predictors = ee.Image.cat([landsat_ndvi, terrain]).reproject(crs=fine_proj)
    return sharpen(
        modis,
        predictors,
        NDVI_PREDICTORS,
        modis_proj,
        MODIS_250M_SCALE_M,
        region,
        cfg.rf,
        cfg.ee_sampling,
        cfg.rf.random_state + NDVI_SEED_OFFSET,
        "ndvi",
        ["landsat_ndvi", ELEVATION_M],
    )


def lst_anomaly(
    cfg: StudyConfig,
    year: int,
    region: ee.Geometry,
    fine_proj: ee.Projection,
    season: composite.LstSeason,
    ndvi: ee.Image,
    terrain: ee.Image,
) -> ee.Image:
    """30 m thaw-season LST anomaly (bands ``dlst_degc``, ``dlst_sd_degc``; °C) against the
    bilinear 1 km seasonal mean."""
    predictors = ee.Image.cat([ndvi.select("ndvi"), terrain]).reproject(crs=fine_proj)
    sharp = sharpen(
        season.mean_degc,
        predictors,
        LST_PREDICTORS,
        season.projection,
        MODIS_1KM_SCALE_M,
        region,
        cfg.rf,
        cfg.ee_sampling,
        cfg.rf.random_state + LST_SEED_OFFSET,
        "lst_degc",
        ["ndvi", ELEVATION_M],
        radiance=True,
    )
    coarse_bilinear = season.mean_degc.reproject(crs=season.projection).resample("bilinear")
    return ee.Image.cat(
        [
            sharp.select("lst_degc").subtract(coarse_bilinear).rename("dlst_degc"),
            sharp.select("lst_degc_sd").rename("dlst_sd_degc"),
        ]
    )


@dataclass
class YearFields:
    """The intermediate graphs of one year (shared by :func:`ddt_image` and validation)."""

    region: ee.Geometry
    fine_proj: ee.Projection
    ndvi: ee.Image
    season: composite.LstSeason
    anomaly: ee.Image


def year_fields(cfg: StudyConfig, year: int, grid: Grid) -> YearFields:
    """Build the sharpened NDVI, the LST season windows and the 30 m LST anomaly of ``year``."""
    fine_proj = fine_projection(grid)
    region = region_geometry(cfg)
    terrain = col.terrain_predictors(cfg.collections.dem)
    ndvi = sharpened_ndvi(cfg, year, region, fine_proj, terrain)
    season = composite.lst_season(cfg, year, region)
    anomaly = lst_anomaly(cfg, year, region, fine_proj, season, ndvi, terrain)
    return YearFields(region, fine_proj, ndvi, season, anomaly)


def ddt_image(cfg: StudyConfig, year: int, grid: Grid | None = None) -> ee.Image:
    """The yearly 30 m DDT image: ``ddt_degc_days`` (°C·day), ``ddt_sd_degc_days`` (°C·day),
    ``n_obs`` (windows with valid LST, count as float), on ``grid`` (default ``cfg.grid()``)."""
    grid = grid or cfg.grid()
    f = year_fields(cfg, year, grid)
    season, anomaly = f.season, f.anomaly
    dlst = anomaly.select("dlst_degc")
    ddt_parts, thaw_days = [], []
    for window, lst in zip(season.windows, season.filled, strict=True):
        t_fine = lst.reproject(crs=season.projection).resample("bilinear").add(dlst)
        ddt_parts.append(t_fine.max(0).multiply(window.days))
        thaw_days.append(t_fine.gt(0).multiply(window.days))
    ddt = ee.ImageCollection.fromImages(ddt_parts).sum().rename("ddt_degc_days")
    sd = (
        anomaly.select("dlst_sd_degc")
        .multiply(ee.ImageCollection.fromImages(thaw_days).sum())
        .rename("ddt_sd_degc_days")
    )
    n_obs = season.n_valid.rename("n_obs")
    enough = n_obs.gte(cfg.season.min_valid_fraction * len(season.windows))
    out = ee.Image.cat([ddt.updateMask(enough), sd.updateMask(enough), n_obs]).toFloat()
    return out.reproject(crs=grid["crs"], crsTransform=list(grid["crs_transform"])).set(
        {"gee_alt_year": year, "gee_alt_engine": "ee", "system:time_start": ee.Date.fromYMD(year, 1, 1).millis()}
    )


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
    dlst = f.anomaly.select("dlst_degc")
    fine = [lst.reproject(crs=f.season.projection).resample("bilinear").add(dlst) for lst in f.season.filled]
    lst = ee.ImageCollection.fromImages(fine).mean().rename("lst_degc")
    ddt_all = ddt_image(cfg, year, grid)
    ddt = ddt_all.select("ddt_degc_days")
    out = {"lst": lst.reproject(crs=grid["crs"], crsTransform=list(grid["crs_transform"])), "ddt": ddt}
    if e is not None:
        out["alt"] = ddt.max(0).sqrt().multiply(e).rename("alt_m")
        ddt_sd = ddt_all.select("ddt_sd_degc_days")
        var = ddt.multiply(e_sd**2).add(ddt_sd.pow(2).multiply(e * e / 4.0).divide(ddt.max(1)))
        out["alt_sd"] = var.sqrt().rename("alt_sd_m")
    return out
