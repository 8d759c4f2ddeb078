"""Weather of the realistic world: one regional daily series per year, the diurnal cycle, and
when the MODIS satellites looked.

Daily quantities are 1-D over the days of the year (index 0 = 1 January). The regional
weather is shared by the whole scene; its spatial expression (lapse rate, exposure, clouds,
moisture) is in :mod:`gee_alt.demo.realistic.surface`.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np

from gee_alt.demo.fields import rng_for

REFERENCE_ELEVATION_M = 4000.0
TERRA_FIRST_DAY = dt.date(2000, 2, 24)
TERRA_OUTAGE = (dt.date(2001, 6, 15), dt.date(2001, 7, 2))  # inclusive
AQUA_FIRST_DAY = dt.date(2002, 7, 4)
# nominal local solar overpass times (hours) and the spread of the view time across the swath
OVERPASS_HOURS = {"terra_day": 10.5, "terra_night": 22.5, "aqua_day": 13.5, "aqua_night": 1.5}
VIEW_TIME_JITTER_H = 1.0


def days_in_year(year: int) -> int:
    return 366 if dt.date(year, 12, 31).timetuple().tm_yday == 366 else 365


def summer_weight(doy: np.ndarray) -> np.ndarray:
    """Seasonal weight: 1 in mid July, 0 in mid January (cosine)."""
    return 0.5 + 0.5 * np.sin(2 * np.pi * (np.asarray(doy, "float64") - 105.0) / 365.25)


@dataclass
class YearWeather:
    """The regional weather of one year, one value per day.

    ``t_ref_degc``: all-sky daily-mean skin temperature at 4000 m on flat, moderately vegetated
    ground (the climatology, the year's anomaly, the warming trend and the synoptic weather);
    ``cloud``: regional cloud fraction (0-1), higher on cold days; ``lapse_degc_per_km``;
    ``gradient``: ``(day, 2)`` large-scale west-east / south-north temperature gradient (°C
    across the scene); ``wetting``: ``(day, k)`` soil-wetting pulses of ``k`` rain-cell
    patterns (decay ~4 days); ``amplitude_degc``: clear-sky diurnal half-range on flat meadow;
    ``view_jitter_h``: ``(day, 4)`` offset of each overpass's view time (hours).
    """

    year: int
    doy: np.ndarray
    t_ref_degc: np.ndarray
    cloud: np.ndarray
    lapse_degc_per_km: np.ndarray
    gradient: np.ndarray
    wetting: np.ndarray
    amplitude_degc: np.ndarray
    view_jitter_h: np.ndarray


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float, size: int = 1) -> np.ndarray:
    e = rng.standard_normal((n, size)) * sd * np.sqrt(1 - phi**2)
    x = np.empty((n, size))
    x[0] = rng.standard_normal(size) * sd
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def year_weather(
    seed: int, year: int, warming_degc_per_yr: float, n_wetting: int, *, climatology: bool = False
) -> YearWeather:
    """The weather of ``year`` (seeded by ``seed`` and the year). ``climatology=True`` gives the
    long-term mean year of the scene's climate in 2000 (no anomalies, no trend, mean clouds)."""
    n = days_in_year(year)
    doy = np.arange(1, n + 1, dtype="float64")
    rng = rng_for(seed, 201, year)
    s = summer_weight(doy)
    season = 2 * s - 1
    base = -2.0 + 14.5 * season + 1.2 * np.sin(4 * np.pi * (doy - 30) / 365.25)  # spring lag
    if climatology:
        synoptic = np.zeros(n)
        year_anom = 0.0
        trend = 0.0
    else:
        synoptic = _ar1(rng, n, 0.75, 2.2)[:, 0] * (1.25 - 0.5 * s)  # winter weather is more variable
        year_anom = 0.6 * rng.standard_normal()
        trend = warming_degc_per_yr * (year - 2000)
    # cloudy days are cooler: cloud responds to the synoptic anomaly, and summer (monsoon) is cloudier
    logit = -0.4 + 1.3 * s - 0.55 * synoptic + (0 if climatology else 0.7 * rng.standard_normal(n))
    cloud = 1 / (1 + np.exp(-logit))
    t_ref = base + year_anom + trend + synoptic
    lapse = 5.2 + 1.6 * s
    gradient = np.zeros((n, 2)) if climatology else _ar1(rng, n, 0.6, 0.5, 2)
    # rain cells wet the soil in patterns: a pulse when a cloudy warm-season day rains on a cell
    wetting = np.zeros((n, n_wetting))
    if not climatology:
        rain = (cloud > 0.62) & (s > 0.35)
        hits = rain[:, None] & (rng.uniform(size=(n, n_wetting)) < 0.5)
        for i in range(n):
            prev = wetting[i - 1] * np.exp(-1 / 4.0) if i else 0.0
            wetting[i] = prev + hits[i] * rng.uniform(0.5, 1.0, n_wetting)
    amplitude = (6.0 + 6.0 * s) * (1.0 - 0.55 * cloud)
    jitter = np.zeros((n, 4)) if climatology else rng.uniform(-VIEW_TIME_JITTER_H, VIEW_TIME_JITTER_H, (n, 4))
    return YearWeather(year, doy, t_ref, cloud, lapse, gradient, wetting, amplitude, jitter)


GROUND_MEMORY_YR = 4.0  # e-folding time of the permafrost's temperature response to the surface (years)
SPINUP_START_YEAR = 1950  # the ground's memory starts from the climate of this year (equilibrium)


@functools.cache
def _year_anomaly_degc(seed: int, warming_degc_per_yr: float, year: int) -> float:
    """Mean of ``year``'s daily reference skin temperature minus the climatology's (°C)."""
    w = year_weather(seed, year, warming_degc_per_yr, 1)
    clim = year_weather(seed, year, 0.0, 1, climatology=True)
    return float(np.mean(w.t_ref_degc) - np.mean(clim.t_ref_degc))


def permafrost_warming_degc(seed: int, warming_degc_per_yr: float, year: int) -> float:
    """Warming of the permafrost's mean annual temperature in ``year`` relative to the 2000
    climate (°C): an exponential memory of the **realized** yearly anomalies of the reference
    skin temperature of :func:`year_weather` (trend, year anomaly and the year's mean synoptic
    weather), the same weather the daily passes use.

    Heat conduction carries a surface anomaly down to the depth of zero annual amplitude (about
    10-11 m) in a diffusion time of the order of ``z**2 / kappa`` ≈ 3-4 years (kappa ≈ 1e-6 m²/s
    ≈ 31.5 m²/yr):
    the ground remembers a few years of weather and damps single years, so a run of warm years
    degrades permafrost, a single warm year hardly does, and a record whose weather happens not
    to warm does not lose permafrost. The memory starts at :data:`SPINUP_START_YEAR` in
    equilibrium with that year's climate (the trend is linear before 2000 too), so under a steady
    trend the ground lags the surface by about :data:`GROUND_MEMORY_YR` years.
    """
    if year < SPINUP_START_YEAR:
        return warming_degc_per_yr * (year - 2000)
    value = warming_degc_per_yr * (SPINUP_START_YEAR - 1 - 2000)
    keep = float(np.exp(-1.0 / GROUND_MEMORY_YR))
    for y in range(SPINUP_START_YEAR, year + 1):
        value = keep * value + (1.0 - keep) * _year_anomaly_degc(seed, warming_degc_per_yr, y)
    return value


def diurnal_shape(hours: np.ndarray, doy: np.ndarray, lat_deg: float = 38.1) -> np.ndarray:
    """Zero-mean diurnal skin-temperature shape (unit half-range) at local solar ``hours``
    ``(day, k)`` of days ``doy`` ``(day,)``; returns ``(day, k)``.

    Parton–Logan form: from the minimum at sunrise a sine rises to the maximum 2 h after noon and
    falls to sunset; after sunset the surface cools exponentially towards the next minimum. The
    day length follows the latitude and declination; each day's curve is normalised to mean 0 and
    half-range (max - min) / 2 = 1.
    """
    lat = np.radians(lat_deg)
    doy = np.atleast_1d(doy).astype("float64")
    hours = np.asarray(hours, "float64").reshape(len(doy), -1)
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    half_day_h = (np.degrees(np.arccos(np.clip(-np.tan(lat) * np.tan(decl), -1, 1))) / 15.0)[:, None]
    step = 0.1
    grid_h = np.arange(0, 24, step)[None, :]
    sunrise, sunset = 12.0 - half_day_h, 12.0 + half_day_h
    day_len, lag = 2 * half_day_h, 2.0
    since_rise = grid_h - sunrise
    day = np.sin(np.pi * since_rise / (day_len + 2 * lag))
    at_sunset = np.sin(np.pi * day_len / (day_len + 2 * lag))
    since_set = np.mod(grid_h - sunset, 24.0)
    night = at_sunset * np.exp(-2.2 * since_set / (24.0 - day_len))
    is_day = (since_rise >= 0) & (grid_h <= sunset)
    curve = np.where(is_day, day, night)
    curve -= curve.mean(axis=1, keepdims=True)
    curve /= (curve.max(axis=1, keepdims=True) - curve.min(axis=1, keepdims=True)) / 2
    # linear interpolation of each day's curve at its hours (periodic over 24 h)
    pos = np.mod(hours, 24.0) / step
    i0 = np.floor(pos).astype(int) % curve.shape[1]
    i1 = (i0 + 1) % curve.shape[1]
    f = pos - np.floor(pos)
    rows = np.arange(len(doy))[:, None]
    return (1 - f) * curve[rows, i0] + f * curve[rows, i1]


def overpass_available(year: int, n_days: int) -> dict[str, np.ndarray]:
    """Which overpasses exist on each day of ``year``: Terra from 2000-02-24 (none during its
    2001-06-15 ... 2001-07-02 outage), Aqua from 2002-07-04."""
    dates = np.array([dt.date(year, 1, 1) + dt.timedelta(days=i) for i in range(n_days)])
    terra = dates >= TERRA_FIRST_DAY
    terra &= ~((dates >= TERRA_OUTAGE[0]) & (dates <= TERRA_OUTAGE[1]))
    aqua = dates >= AQUA_FIRST_DAY
    return {"terra_day": terra, "terra_night": terra, "aqua_day": aqua, "aqua_night": aqua}
