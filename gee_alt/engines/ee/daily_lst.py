"""Daily-mean LST per window on the server: the local engine's Terra-referenced record
(:mod:`gee_alt.science.daily_lst`) as pure ``ee`` graph builders.

Per window of ``season.lst_step_days`` days and per sensor (Terra MOD11A1, Aqua MYD11A1):

1. **Window looks** (:func:`sensor_window_looks`): the mean of the window's clear-sky day LST,
   night LST and of their view times (``Day_view_time``/``Night_view_time``, local solar hours;
   night times before noon are taken as after midnight, +24 h, so a window mixing 23:50 and
   00:10 averages to midnight, not noon) — what MOD11A2/MYD11A2 hold, the local layout's input.
2. **GOT01 daily mean** (:func:`pair_daily_mean`): Göttsche & Olesen (2001, *Remote Sens.
   Environ.* 76, 337-348) diurnal shape with the constants of
   :func:`gee_alt.science.daily_lst.got01_terms` for the window's middle day and the AOI's
   central latitude, evaluated in closed form (:func:`got01_shape`); two looks at known view
   times give the daily mean ``m = (T_n·s_d − T_d·s_n)/(s_d − s_n)``, masked where
   ``|s_d − s_n| <= 0.2`` (the local rule).
3. **Cold outliers** (:func:`screen_cold_outliers`): a window more than
   ``max(3 K, 3 × 1.4826 × MAD)`` below the median of itself and its ±2 neighbours is dropped.
4. **Terra reference** (:func:`aqua_offsets`, :func:`terra_referenced`): Aqua − offset, the
   offset per pixel and window the median of Aqua − Terra over the window and its ±2
   neighbours *of the same season* (then over the whole season where those never overlap, then
   0); Terra alone where Aqua has nothing, their mean where both.

Differences from the local engine (README, "what still differs"): the offset is fitted per
season (the local engine pools every year of the run: one year's graph cannot hold all 25
seasons' composites), and the outlier screen's neighbourhood and MAD stop at the season's ends
(the local engine screens the input file's whole series).
"""

from __future__ import annotations

import datetime as _dt

import ee

from gee_alt.science.daily_lst import T_MAX_H, day_length_h, got01_terms

MIN_SHAPE_SEPARATION = 0.2  # |s_d − s_n| below this: the pair cannot separate mean and amplitude (local rule)
COLD_MIN_DROP_K = 3.0  # screen_cold_outliers defaults of the local engine
COLD_N_MAD = 3.0
MAD_TO_SD = 1.4826
OFFSET_POOL = 2  # windows either side pooled in the Aqua − Terra offset
LOOK_BANDS = ["lst_day_degc", "lst_night_degc", "day_view_h", "night_view_h"]


def window_middle_doy(start_iso: str, days: int) -> float:
    """Day of year of the window's middle (as the local engine: start doy + (days − 1)/2)."""
    return _dt.date.fromisoformat(start_iso).timetuple().tm_yday + (days - 1) / 2


def shape_terms(doy: float, lat_deg: float) -> dict[str, float]:
    """GOT01 constants for day ``doy`` at ``lat_deg`` (day length quantised to 0.01 h as locally)."""
    return got01_terms(int(round(float(day_length_h(doy, lat_deg)) * 100)))


def got01_shape(hours: ee.Image, terms: dict[str, float]) -> ee.Image:
    """Zero-mean, unit-half-range GOT01 shape at local solar ``hours`` (one band): cosine by day
    (maximum at :data:`T_MAX_H`), exponential decay from ``ts`` to the next sunrise."""
    h = hours.mod(24)
    t = h.where(h.lt(terms["tr"]), h.add(24))  # the cycle from sunrise to the next sunrise
    day = t.subtract(T_MAX_H).multiply(3.141592653589793 / terms["omega"]).cos()
    night = t.subtract(terms["ts"]).multiply(-1.0 / terms["k"]).exp().multiply(terms["u"]).add(terms["d_t"])
    raw = day.where(t.gte(terms["ts"]), night)
    return raw.subtract(terms["mean"]).divide(terms["half_range"])


def _guard() -> ee.Image:
    return ee.Image.constant([0] * len(LOOK_BANDS)).rename(LOOK_BANDS).toFloat().updateMask(0)


def unwrap_night_view(daily: ee.ImageCollection) -> ee.ImageCollection:
    """Daily looks with night view times before noon moved past midnight (+24 h), so a window's
    mean view time is not pulled to noon by looks on both sides of midnight."""

    def unwrap(img):
        img = ee.Image(img)
        night = img.select("night_view_h")
        return img.addBands(night.where(night.lt(12), night.add(24)), None, True)

    return ee.ImageCollection(daily).map(unwrap)


def sensor_window_looks(daily: ee.ImageCollection | None, start: str, end: str) -> ee.Image:
    """One sensor's window ``[start, end)`` of ``daily`` (:func:`unwrap_night_view` applied): mean
    clear day/night LST (°C) and mean view times (h), bands :data:`LOOK_BANDS`; masked (never
    zero-band) where the window has no look."""
    guard = ee.ImageCollection.fromImages([_guard()])
    col = guard if daily is None else ee.ImageCollection(daily).filterDate(start, end).merge(guard)
    mean = col.mean()
    return mean.addBands(mean.select("night_view_h").mod(24), None, True)


def pair_daily_mean(looks: ee.Image, terms: dict[str, float]) -> ee.Image:
    """Daily mean (band ``lst_degc``, °C) from one sensor's window looks (:func:`sensor_window_looks`)."""
    s_d = got01_shape(looks.select("day_view_h"), terms)
    s_n = got01_shape(looks.select("night_view_h"), terms)
    den = s_d.subtract(s_n)
    m = looks.select("lst_night_degc").multiply(s_d).subtract(looks.select("lst_day_degc").multiply(s_n)).divide(den)
    return m.updateMask(den.abs().gt(MIN_SHAPE_SEPARATION)).rename("lst_degc").toFloat()


def _median(images: list[ee.Image]) -> ee.Image:
    return ee.ImageCollection.fromImages(images).median().rename("lst_degc")


def screen_cold_outliers(
    series: list[ee.Image], min_drop_k: float = COLD_MIN_DROP_K, n_mad: float = COLD_N_MAD
) -> list[ee.Image]:
    """``series`` (one band ``lst_degc`` per window) with cold outliers masked: below the median
    of the window and its ±2 neighbours by more than ``max(min_drop_k, n_mad × 1.4826 × MAD)``,
    MAD of the pixel's residuals over the series (the local :func:`screen_cold_outliers`)."""
    n = len(series)
    res = [series[k].subtract(_median(series[max(0, k - 2) : k + 3])).rename("lst_degc") for k in range(n)]
    centre = _median(res)
    mad = _median([r.subtract(centre).abs() for r in res]).multiply(MAD_TO_SD)
    limit = mad.multiply(n_mad).unmask(0, False).max(min_drop_k)
    return [s.updateMask(r.gte(limit.multiply(-1))) for s, r in zip(series, res, strict=True)]


def aqua_offsets(terra: list[ee.Image], aqua: list[ee.Image], pool: int = OFFSET_POOL) -> list[ee.Image]:
    """Per window, the Aqua − Terra offset (K): median of ``aqua − terra`` over the window and its
    ``pool`` neighbours either side where both exist; where they never overlap there, the median
    over the whole season's windows; 0 where they never overlap in the season (one season holds
    far fewer pairs than the local engine's all-year pool: without the season fallback a cloudy
    pixel would take Aqua raw, a warm step of its own)."""
    diffs = [a.subtract(t).rename("lst_degc") for t, a in zip(terra, aqua, strict=True)]
    n = len(diffs)
    season = _median(diffs)
    return [_median(diffs[max(0, k - pool) : k + pool + 1]).unmask(season, False).unmask(0, False) for k in range(n)]


def terra_referenced(terra: ee.Image, aqua: ee.Image, offset: ee.Image) -> ee.Image:
    """Terra where only Terra, Aqua − offset where only Aqua, their mean where both (°C)."""
    return ee.ImageCollection.fromImages([terra, aqua.subtract(offset).rename("lst_degc")]).mean().rename("lst_degc")


def daily_mean_windows(
    sensors: dict[str, ee.ImageCollection | None], windows, lat_deg: float, proj: ee.Projection
) -> list[ee.Image]:
    """The Terra-referenced, screened daily mean (band ``lst_degc``, °C) of every window.

    ``sensors``: ``{"terra": daily collection or None, "aqua": ...}`` with bands
    ``lst_day_degc``, ``lst_night_degc``, ``day_view_h``, ``night_view_h``
    (:func:`gee_alt.engines.ee.collections.modis_lst_degc`); ``windows``: objects with
    ``start``, ``end``, ``days``. With one sensor only, that sensor's screened record."""
    terms = [shape_terms(window_middle_doy(w.start, w.days), lat_deg) for w in windows]
    means = {}
    for name, daily in sensors.items():
        if daily is None:
            continue
        daily = unwrap_night_view(daily)
        series = [
            pair_daily_mean(sensor_window_looks(daily, w.start, w.end), t) for w, t in zip(windows, terms, strict=True)
        ]
        means[name] = screen_cold_outliers(series)
    if "terra" in means and "aqua" in means:
        offs = aqua_offsets(means["terra"], means["aqua"])
        out = [terra_referenced(t, a, o) for t, a, o in zip(means["terra"], means["aqua"], offs, strict=True)]
    else:
        out = next(iter(means.values()))
    return [o.setDefaultProjection(proj) for o in out]
