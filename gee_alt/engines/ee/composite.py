"""Yearly composites (pure graph builders): growing-season NDVI and thaw-season LST windows.

**LST time step — 8-day windows (``season.lst_step_days``).** DDT = Σ_days max(T_daily, 0)
(°C·day). Daily MODIS LST is too gappy under plateau summer cloud to sum day by day, and a
single seasonal mean would lose the nonlinearity of ``max(T, 0)``. Each window's daily-mean
LST is summed as ``days_in_window * max(T_window, 0)``. Bias: ``max(mean T, 0) <= mean(max(T, 0))``
(Jensen), so windows that straddle 0 °C (spring/autumn) are slightly under-counted; with
8-day windows that is a few °C·day per year on the plateau, small against a DDT of ~1000–2000.

**Daily mean from the looks' view times (the local engine's definition).** Per window and sensor,
the mean clear-sky day and night LST and their mean view times (``Day_view_time`` /
``Night_view_time``) give the daily mean through the GOT01 diurnal shape (Göttsche & Olesen
2001); undetected-cloud cold outliers are screened; Terra is the reference and Aqua (from
2002-07-04, whatever the season) enters only after its per-pixel, per-window offset to Terra:
:mod:`gee_alt.engines.ee.daily_lst`. Clear-sky LST is still warmer by day than the all-sky mean
(clear-sky bias), which the calibrated Stefan coefficient E partly absorbs.

**Gap filling.** An empty window is filled from its neighbours (mean of ±1, then of ±2 windows,
then the nearest single neighbour). Gaps longer than that count as 0 °C·day (low bias);
``n_obs`` (raw valid windows) flags them and DDT is masked where the valid fraction is below
``season.min_valid_fraction``.

**Empty collections.** Every reduction of an image collection here runs over
:func:`guarded`: the collection plus one fully masked image with the expected bands, so a
window without any look (Terra's 2001-06-15..07-02 outage, a year without Landsat) gives a
masked composite with the right bands, never a zero-band image that breaks the arithmetic
after it ("If one image has no bands, the other must also have no bands").

**Projections.** Composites have no projection (1° WGS84 default): every composite gets
``setDefaultProjection`` with the projection of one image of its source collection (MODIS
sinusoidal 1 km / 250 m) or of the 30 m output grid (Landsat).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import ee

from gee_alt.config import StudyConfig
from gee_alt.engines.ee import collections as col
from gee_alt.engines.ee import daily_lst


def season_bounds(year: int, start_mmdd: str, end_mmdd: str) -> tuple[str, str]:
    """ISO ``(start, end_exclusive)`` of the season ``start_mmdd``..``end_mmdd`` (inclusive) in ``year``."""
    start = _dt.date(year, int(start_mmdd[:2]), int(start_mmdd[3:]))
    end = _dt.date(year, int(end_mmdd[:2]), int(end_mmdd[3:])) + _dt.timedelta(days=1)
    return start.isoformat(), end.isoformat()


@dataclass(frozen=True)
class Window:
    """One LST compositing window: ISO ``start`` (inclusive), ``end`` (exclusive), ``days``."""

    start: str
    end: str
    days: int


def lst_windows(year: int, start_mmdd: str, end_mmdd: str, step_days: int) -> list[Window]:
    """Consecutive windows of ``step_days`` days covering the thaw season (last one shorter)."""
    s, e = (_dt.date.fromisoformat(d) for d in season_bounds(year, start_mmdd, end_mmdd))
    out = []
    while s < e:
        nxt = min(s + _dt.timedelta(days=step_days), e)
        out.append(Window(s.isoformat(), nxt.isoformat(), (nxt - s).days))
        s = nxt
    return out


def masked_image(bands: list[str]) -> ee.Image:
    """A float image with ``bands``, masked everywhere (the guard of :func:`guarded`)."""
    return ee.Image.constant([0] * len(bands)).rename(bands).toFloat().updateMask(0)


def guarded(collection: ee.ImageCollection | None, bands: list[str]) -> ee.ImageCollection:
    """``collection`` (already filtered, holding exactly ``bands``; ``None`` = nothing) plus one
    fully masked image with ``bands``: a reduction over it always has these bands, masked where
    nothing was observed."""
    guard = ee.ImageCollection.fromImages([masked_image(bands)])
    return guard if collection is None else ee.ImageCollection(collection).merge(guard)


def landsat_ndvi_composite(cfg: StudyConfig, year: int, region: ee.Geometry, fine_proj: ee.Projection) -> ee.Image:
    """Growing-season median Landsat NDVI (band ``landsat_ndvi``, 1) on the 30 m grid projection
    (masked everywhere when no configured mission has a clear scene)."""
    start, end = season_bounds(year, cfg.season.growing_start, cfg.season.growing_end)
    scenes = col.landsat(cfg.collections.landsat, start, end, region, cfg.qa.landsat_mask_snow)
    scenes = None if scenes is None else scenes.select("ndvi")
    return guarded(scenes, ["ndvi"]).median().rename("landsat_ndvi").setDefaultProjection(fine_proj)


def modis_ndvi_composite(cfg: StudyConfig, year: int, region: ee.Geometry) -> ee.Image:
    """Growing-season MODIS NDVI (band ``modis_ndvi``, 1) on the MODIS 250 m projection.

    Median of MOD13Q1 16-day composites; maximum (max-value compositing, which suppresses
    residual cloud) of daily MOD09GQ.
    """
    start, end = season_bounds(year, cfg.season.growing_start, cfg.season.growing_end)
    cid = cfg.collections.ndvi
    ndvi = guarded(col.modis_ndvi(cid, start, end, region, cfg.qa.modis_ndvi_max_summary_qa).select("ndvi"), ["ndvi"])
    comp = ndvi.median() if cid == col.MOD13Q1 else ndvi.max()
    return comp.rename("modis_ndvi").setDefaultProjection(col.modis_projection(cid, col.modis_ndvi_band(cid)))


def lst_sensors(cfg: StudyConfig, start: str, end: str, region: ee.Geometry) -> dict[str, ee.ImageCollection | None]:
    """QC-masked daily LST (°C) and view times (h) of ``[start, end)`` per sensor:
    ``{"terra": ..., "aqua": ...}`` (``None`` where not configured or not flying then)."""
    ids = col.lst_collection_ids(cfg.collections.lst, start, end)
    return {
        name: (col.modis_lst(cid, start, end, region, cfg.qa.lst_max_error_k) if cid in ids else None)
        for name, cid in (("terra", col.MOD11A1), ("aqua", col.MYD11A1))
    }


def aoi_latitude(cfg: StudyConfig) -> float:
    """The AOI's central latitude (degrees), the latitude of the diurnal model's day length."""
    return 0.5 * (cfg.bbox[1] + cfg.bbox[3])


def lst_projection() -> ee.Projection:
    """The MODIS 1 km sinusoidal projection (from one MOD11A1 image)."""
    return col.modis_projection(col.MOD11A1, "LST_Day_1km")


def window_daily_means(cfg: StudyConfig, year: int, start_mmdd: str, end_mmdd: str, region, proj) -> tuple:
    """``(windows, daily means)``: the Terra-referenced GOT01 daily mean (band ``lst_degc``, °C)
    of each window of ``season.lst_step_days`` days in ``start_mmdd``..``end_mmdd`` of ``year``
    (:func:`gee_alt.engines.ee.daily_lst.daily_mean_windows`), masked where no pair of looks
    survived."""
    start, end = season_bounds(year, start_mmdd, end_mmdd)
    windows = lst_windows(year, start_mmdd, end_mmdd, cfg.season.lst_step_days)
    sensors = lst_sensors(cfg, start, end, region)
    return windows, daily_lst.daily_mean_windows(sensors, windows, aoi_latitude(cfg), proj)


def gap_fill(raw: list[ee.Image]) -> list[ee.Image]:
    """Fill empty windows from neighbours: mean of ±1, mean of ±2, then nearest single neighbour."""
    n = len(raw)

    def at(i):
        return raw[i] if 0 <= i < n else None

    out = []
    for k in range(n):
        img = raw[k]
        for a, b in ((k - 1, k + 1), (k - 2, k + 2)):
            if at(a) is not None and at(b) is not None:
                img = img.unmask(at(a).add(at(b)).divide(2), False)
        for j in (k - 1, k + 1, k - 2, k + 2):
            if at(j) is not None:
                img = img.unmask(at(j), False)
        out.append(img)
    return out


def month_groups(windows: list[Window]) -> list[tuple[str, list[int]]]:
    """Windows grouped by the calendar month they start in: ``[("MM", [window indices]), ...]``
    (the unit of server-side LST sharpening)."""
    groups: dict[str, list[int]] = {}
    for k, w in enumerate(windows):
        groups.setdefault(w.start[5:7], []).append(k)
    return list(groups.items())


@dataclass
class LstSeason:
    """The thaw-season LST windows of one year at 1 km (graph objects).

    ``raw``: window LST (°C, masked where the window had no valid day or night look);
    ``filled``: gap-filled window LST on the MODIS projection; ``n_valid``: count of windows
    with a raw observation (band ``n_obs``); ``months``: :func:`month_groups` of the windows;
    ``month_degc``: per month the mean of its raw windows (band ``lst_degc``, masked where
    the month had none), the sharpening targets.
    """

    windows: list[Window]
    raw: list[ee.Image]
    filled: list[ee.Image]
    n_valid: ee.Image
    months: list[tuple[str, list[int]]]
    month_degc: list[ee.Image]
    projection: ee.Projection


def lst_season(cfg: StudyConfig, year: int, region: ee.Geometry) -> LstSeason:
    """Build the thaw-season LST windows for ``year`` (see module docstring for the choices)."""
    proj = lst_projection()
    windows, raw = window_daily_means(cfg, year, cfg.season.thaw_start, cfg.season.thaw_end, region, proj)
    n_valid = (
        ee.ImageCollection.fromImages([r.mask().gt(0).unmask(0, False) for r in raw])
        .sum()
        .rename("n_obs")
        .setDefaultProjection(proj)
    )
    months = month_groups(windows)
    month_degc = [
        ee.ImageCollection.fromImages([raw[k] for k in idx]).mean().rename("lst_degc").setDefaultProjection(proj)
        for _, idx in months
    ]
    filled = [f.setDefaultProjection(proj) for f in gap_fill(raw)]
    return LstSeason(windows, raw, filled, n_valid, months, month_degc, proj)


# ------------------------------------------------------------------ freezing index (DDF)
FREEZE_SPLIT_MMDD = "07-01"  # the local engine's split (:func:`gee_alt.science.thaw.before_split`)
MODIS_FIRST_YEAR = 2000  # no MODIS LST before 2000: the first winter takes its own year's autumn


def freezing_half_ddf(cfg: StudyConfig, year: int, region: ee.Geometry, spring: bool) -> ee.Image:
    """Freezing degree-days (band ``ddf_degc_days``, °C·day, positive) of one half of ``year``
    at 1 km: spring = 01-01..06-30, autumn = 07-01..12-31. Windows of ``season.lst_step_days``
    (daily mean as in :func:`window_daily_means`, gaps filled by :func:`gap_fill`), DDF =
    Σ_windows days · max(−T, 0) (:func:`gee_alt.science.thaw.ddf_from_composites`); masked
    where fewer than ``season.min_valid_fraction`` of the half's windows have a look (the
    thaw season's rule). Empty windows are guarded (masked, never zero-band)."""
    start_mmdd, end_mmdd = ("01-01", "06-30") if spring else (FREEZE_SPLIT_MMDD, "12-31")
    proj = lst_projection()
    windows, raw = window_daily_means(cfg, year, start_mmdd, end_mmdd, region, proj)
    n_valid = ee.ImageCollection.fromImages([r.mask().gt(0).unmask(0, False) for r in raw]).sum()
    parts = [t.multiply(-1).max(0).multiply(w.days) for t, w in zip(gap_fill(raw), windows, strict=True)]
    ddf = ee.ImageCollection.fromImages(parts).sum().rename("ddf_degc_days")
    enough = n_valid.gte(cfg.season.min_valid_fraction * len(windows))
    return ddf.updateMask(enough).setDefaultProjection(proj)


def freezing_season_ddf(cfg: StudyConfig, year: int, region: ee.Geometry) -> ee.Image:
    """DDF (band ``ddf_degc_days``, °C·day) of the winter before ``year``'s thaw season: the
    autumn half of ``year − 1`` plus the spring half of ``year`` (the local engine's
    :func:`gee_alt.engines.local.season.freezing_season_ddf`); for the first MODIS year the
    year's own autumn stands in. Masked where either half is too sparse."""
    autumn_year = year - 1 if year - 1 >= MODIS_FIRST_YEAR else year
    autumn = freezing_half_ddf(cfg, autumn_year, region, spring=False)
    return freezing_half_ddf(cfg, year, region, spring=True).add(autumn).rename("ddf_degc_days")
