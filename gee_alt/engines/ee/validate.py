"""Validation of downscaled LST against coincident Landsat surface temperature.

For every clear Landsat scene of the thaw season, the same-day Terra daytime LST (overpass
~10:30 local solar time, like Landsat's ~10:00–10:30) is bilinearly resampled to 30 m and the
30 m RF anomaly (:func:`gee_alt.engines.ee.thaw.lst_anomaly`) is added; Landsat ST (°C) minus that
field is sampled at seeded random 30 m pixels. Returned per year: ``rmse_degc``, ``bias_degc``
(mean Landsat − downscaled, °C), ``n`` (pixel pairs).

Caveats: the anomaly is that of the daily-mean LST, while both sensors see the daytime
surface, whose sub-kilometre contrast is larger; Landsat ST (single-channel) and MODIS
split-window LST differ by emissivity handling. The statistics therefore bound, not equal,
the error of the DDT forcing.
"""

from __future__ import annotations

import ee

from gee_alt.config import StudyConfig
from gee_alt.engines.ee import collections as col
from gee_alt.engines.ee import composite, thaw
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid

SAME_DAY_MS = 12 * 3600 * 1000  # Landsat ~04 UTC vs MODIS day stamp 00 UTC: same calendar day only
VALIDATION_SEED_OFFSET = 2


def validation_stats(
    cfg: StudyConfig, year: int, grid: Grid | None = None, points_per_scene: int = 200
) -> ee.Dictionary:
    """Graph of ``{year, rmse_degc, bias_degc, n}`` for one year (°C, °C, pairs)."""
    grid = grid or cfg.grid()
    f = thaw.year_fields(cfg, year, grid)
    start, end = composite.season_bounds(year, cfg.season.thaw_start, cfg.season.thaw_end)
    scenes = col.landsat(cfg.collections.landsat, start, end, f.region, cfg.qa.landsat_mask_snow)
    if scenes is None:
        raise GeeAltError(f"no configured Landsat mission has data in {year} (collections.landsat)")
    terra = col.modis_lst(col.MOD11A1, start, end, f.region, cfg.qa.lst_max_error_k).select("lst_day_degc")
    match = ee.Filter.maxDifference(
        difference=SAME_DAY_MS, leftField="system:time_start", rightField="system:time_start"
    )
    pairs = ee.Join.saveFirst(matchKey="modis").apply(scenes.select("st_degc"), terra, match)
    dlst = f.anomaly.select("dlst_degc")
    lst_proj = f.season.projection
    seed = cfg.rf.random_state + VALIDATION_SEED_OFFSET

    def scene_samples(scene):
        scene = ee.Image(scene)
        modis = ee.Image(scene.get("modis")).setDefaultProjection(lst_proj).resample("bilinear")
        diff = scene.select("st_degc").subtract(modis.add(dlst)).rename("diff_degc")
        both = diff.addBands(diff.multiply(diff).rename("sq_degc2"))
        return both.sample(
            region=f.region,
            scale=grid["crs_transform"][0],
            projection=f.fine_proj,
            numPixels=points_per_scene,
            seed=seed,
            dropNulls=True,
            tileScale=cfg.ee_sampling.tile_scale,
            geometries=False,
        )

    samples = ee.FeatureCollection(ee.ImageCollection(pairs).map(scene_samples)).flatten()
    means = ee.List(samples.reduceColumns(ee.Reducer.mean().repeat(2), ["diff_degc", "sq_degc2"]).get("mean"))
    return ee.Dictionary(
        {"year": year, "bias_degc": means.get(0), "rmse_degc": ee.Number(means.get(1)).sqrt(), "n": samples.size()}
    )


def fetch_validation(cfg: StudyConfig, years: list[int] | None = None, grid: Grid | None = None) -> list[dict]:
    """Compute the validation statistics on the server (needs an initialised session).

    Returns one dict per year (``year``, ``rmse_degc``, ``bias_degc``, ``n``).
    """
    years = years or cfg.year_list()
    graph = ee.List([validation_stats(cfg, y, grid) for y in years])
    try:
        return [dict(d) for d in graph.getInfo()]
    except ee.EEException as exc:
        raise GeeAltError(f"validation failed on Earth Engine: {str(exc).splitlines()[0]}") from None
