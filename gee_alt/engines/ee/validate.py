"""Validation of downscaled LST against coincident Landsat surface temperature.

For every clear Landsat scene of the thaw season, the same-day Terra daytime LST (overpass
~10:30 local solar time, like Landsat's ~10:00–10:30) is bilinearly resampled to 30 m and the
30 m RF anomaly of the scene's month (:func:`gee_alt.engines.ee.thaw.lst_anomalies`) is added;
Landsat ST (°C) and that field are sampled at seeded random 30 m pixels (seed per year and
scene). Per year the graph returns sums, so years pool exactly: ``n``, Σd, Σd², Σst, Σst²
(d = Landsat − downscaled, °C), from which :func:`statistics` gives ``rmse_degc``,
``bias_degc`` (mean Landsat − downscaled), ``r2`` (1 − SSE/SST of Landsat ST) and ``n``.

One request per year (:func:`fetch_validation`), each retried like a pull; a year that fails
or has no coincident clear scene is reported with its reason, the others still count.

Caveats: the anomaly is that of the daily-mean LST, while both sensors see the daytime
surface, whose sub-kilometre contrast is larger; Landsat ST (single-channel) and MODIS
split-window LST differ by emissivity handling. The statistics therefore bound, not equal,
the error of the DDT forcing.
"""

from __future__ import annotations

import math

import ee

from gee_alt.config import StudyConfig
from gee_alt.engines.ee import collections as col
from gee_alt.engines.ee import composite, thaw
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid

SAME_DAY_MS = 12 * 3600 * 1000  # Landsat ~04 UTC vs MODIS day stamp 00 UTC: same calendar day only
VALIDATION_SEED_OFFSET = 2
SUM_KEYS = ("n", "sum_d", "sum_d2", "sum_st", "sum_st2")


def validation_seed(cfg: StudyConfig, year: int) -> int:
    """The year's sampling seed (scenes add their index): different pixels every year."""
    return cfg.rf.random_state + VALIDATION_SEED_OFFSET + 1000 * year


def validation_sums(
    cfg: StudyConfig, year: int, grid: Grid | None = None, points_per_scene: int = 200, fields=None
) -> ee.Dictionary:
    """Graph of ``{year, n, sum_d, sum_d2, sum_st, sum_st2}`` for one year (°C, °C², counts)."""
    grid = grid or cfg.grid()
    f = fields or thaw.year_fields(cfg, year, grid)
    start, end = composite.season_bounds(year, cfg.season.thaw_start, cfg.season.thaw_end)
    scenes = col.landsat(cfg.collections.landsat, start, end, f.region, cfg.qa.landsat_mask_snow)
    scenes = None if scenes is None else scenes.select("st_degc")
    scenes = composite.guarded(scenes, ["st_degc"]).filter(ee.Filter.notNull(["system:time_start"]))
    terra = col.modis_lst(col.MOD11A1, start, end, f.region, cfg.qa.lst_max_error_k).select("lst_day_degc")
    match = ee.Filter.maxDifference(
        difference=SAME_DAY_MS, leftField="system:time_start", rightField="system:time_start"
    )
    pairs = ee.ImageCollection(ee.Join.saveFirst(matchKey="modis").apply(scenes, terra, match))
    anomalies = f.anomaly_by_month()
    lst_proj = f.season.projection
    seed = validation_seed(cfg, year)
    indexed = pairs.toList(pairs.size()).zip(ee.List.sequence(0, pairs.size()))

    def scene_samples(item):
        item = ee.List(item)
        scene = ee.Image(item.get(0))
        month = ee.Date(scene.get("system:time_start")).format("MM")
        dlst = anomalies.select(ee.String("dlst_").cat(month))
        modis = ee.Image(scene.get("modis")).setDefaultProjection(lst_proj).resample("bilinear")
        st = scene.select("st_degc")
        diff = st.subtract(modis.add(dlst)).rename("d")
        both = ee.Image.cat([diff, diff.multiply(diff).rename("d2"), st.rename("st"), st.multiply(st).rename("st2")])
        return both.sample(
            region=f.region,
            scale=grid["crs_transform"][0],
            projection=f.fine_proj,
            numPixels=points_per_scene,
            seed=ee.Number(item.get(1)).add(seed),
            dropNulls=True,
            tileScale=cfg.ee_sampling.tile_scale,
            geometries=False,
        )

    samples = ee.FeatureCollection(ee.List(indexed.map(scene_samples))).flatten()
    sums = ee.List(samples.reduceColumns(ee.Reducer.sum().repeat(4), ["d", "d2", "st", "st2"]).get("sum"))
    n = samples.size()
    zero = ee.List([0, 0, 0, 0])
    sums = ee.List(ee.Algorithms.If(n.gt(0), sums, zero))  # an empty year sums to 0, never a null
    return ee.Dictionary(
        {
            "year": year,
            "n": n,
            "sum_d": sums.get(0),
            "sum_d2": sums.get(1),
            "sum_st": sums.get(2),
            "sum_st2": sums.get(3),
        }
    )


def statistics(sums: dict) -> dict:
    """``rmse_degc``, ``bias_degc``, ``r2``, ``n`` from pooled sums (``None`` where n is too small)."""
    n = int(sums.get("n") or 0)
    if n < 1:
        return {"n": 0, "rmse_degc": None, "bias_degc": None, "r2": None}
    mean_d = sums["sum_d"] / n
    sse = sums["sum_d2"]
    sst = sums["sum_st2"] - sums["sum_st"] ** 2 / n
    return {
        "n": n,
        "rmse_degc": math.sqrt(max(sse / n, 0.0)),
        "bias_degc": mean_d,
        "r2": (1.0 - sse / sst) if n > 1 and sst > 0 else None,
    }


def pooled(per_year: list[dict]) -> dict:
    """Statistics over all years that returned sums."""
    ok = [y for y in per_year if "sum_d" in y]
    return statistics({k: sum(float(y[k]) for y in ok) for k in SUM_KEYS}) if ok else statistics({})


def fetch_validation(
    cfg: StudyConfig,
    years: list[int] | None = None,
    grid: Grid | None = None,
    *,
    max_retries: int = 6,
    initial_delay_s: float = 0.5,
    sleep=None,
) -> dict:
    """Compute the validation on the server, one request per year (needs an initialised session).

    Returns ``{"per_year": [{year, n, rmse_degc, bias_degc, r2, sums...} or {year, error}],
    "overall": {n, rmse_degc, bias_degc, r2}, "method": ...}``. A failing year is recorded with
    the first line of Earth Engine's reason; the others still count.
    """
    import time

    from gee_alt.engines.ee.pull import retrying_ee_calls

    years = years or cfg.year_list()
    per_year = []
    for year in years:
        try:
            with retrying_ee_calls(max_retries, initial_delay_s, sleep or time.sleep):
                sums = validation_sums(cfg, year, grid).getInfo()
        except (GeeAltError, ee.EEException) as exc:
            per_year.append({"year": year, "error": (str(exc).strip().splitlines() or ["error"])[0][:200]})
            continue
        try:
            sums = {k: float(sums[k]) for k in SUM_KEYS}
        except (KeyError, TypeError, ValueError):
            per_year.append({"year": year, "error": f"unexpected answer from Earth Engine: {str(sums)[:80]}"})
            continue
        per_year.append({"year": year, **statistics(sums), **sums})
    return {
        "method": "Landsat C2 ST vs downscaled LST (same-day Terra day LST, bilinear, + the month's 30 m "
        "anomaly); seeded random 30 m pixels per clear scene",
        "per_year": per_year,
        "overall": pooled(per_year),
        "failed_years": [y["year"] for y in per_year if "error" in y],
    }
