"""QA rules, scale factors and the daily-mean model of the satellite products — defined once.

Both engines use these definitions: the Earth Engine graphs
(:mod:`gee_alt.engines.ee.collections`, :mod:`gee_alt.engines.ee.composite`) import the
constants, and the numpy readers of raw NASA/USGS files (:mod:`gee_alt.prepare`) import the
constants and the numpy functions below. Pure: numpy only, no I/O.

**MOD11A1 / MYD11A1 (collection 6.1)**: ``LST_Day_1km``/``LST_Night_1km`` DN × 0.02 K, fill 0;
``QC_Day``/``QC_Night`` bits 0-1 mandatory QA (00 good, 01 produced but check other bits,
10 not produced: cloud, 11 not produced: other), bits 6-7 LST error (00 ≤ 1 K, 01 ≤ 2 K,
10 ≤ 3 K, 11 > 3 K); ``Day_view_time``/``Night_view_time`` DN × 0.1 h (local solar time), fill 255.
A look is valid when DN > 0, mandatory QA ≤ 01 and the error class ≤ ``max_error_k`` − 1.

**Daily mean of a window** = (mean of the valid day looks + mean of the valid night looks) / 2,
Terra and Aqua looks pooled; masked where the window has no valid day or no valid night look.
Aqua enters a season only when it covers the whole season (season start ≥ 2002-07-04), so every
year mixes the same overpass times.

**MOD13Q1**: ``NDVI`` DN × 0.0001 (fill −3000); ``SummaryQA`` (HDF: ``250m 16 days pixel
reliability``) −1 fill, 0 good, 1 marginal, 2 snow/ice, 3 cloudy; kept when 0 ≤ QA ≤ max.

**Landsat Collection 2 Level 2**: ``SR_B*`` DN × 0.0000275 − 0.2; ``ST_B*`` DN × 0.00341802
+ 149 K; clear when ``QA_PIXEL`` bits 0-4 (fill, dilated cloud, cirrus, cloud, shadow) and,
optionally, bit 5 (snow) are 0 and ``QA_RADSAT`` is 0.
"""

from __future__ import annotations

import numpy as np

from gee_alt.units import KELVIN_AT_0_DEGC

# ----------------------------------------------------------------------------- MODIS LST
TERRA_LST_START = "2000-02-24"
AQUA_LST_START = "2002-07-04"
LST_SCALE_K = 0.02  # DN -> K
LST_FILL_DN = 0
VIEW_TIME_SCALE_H = 0.1  # Day_view_time/Night_view_time DN -> hours (local solar time)
VIEW_TIME_FILL_DN = 255
QC_MANDATORY_BITS = 0b11
QC_MANDATORY_MAX_OK = 1
QC_LST_ERROR_SHIFT = 6
QC_LST_ERROR_BITS = 0b11
#: The MOD11A1/MYD11A1 layers a reader needs (HDF SDS names = Earth Engine band names).
LST_LAYERS = ("LST_Day_1km", "QC_Day", "Day_view_time", "LST_Night_1km", "QC_Night", "Night_view_time")


def lst_error_class_max(max_error_k: int) -> int:
    """The highest accepted QC bits 6-7 class for an LST error bound (K): 1→0, 2→1, 3→2, 4(any)→3."""
    if max_error_k not in (1, 2, 3, 4):
        raise ValueError(f"max_error_k must be 1, 2, 3 or 4, got {max_error_k}")
    return max_error_k - 1


def lst_qc_ok(qc: np.ndarray, max_error_k: int) -> np.ndarray:
    """True where a QC_Day/QC_Night value passes (mandatory QA ≤ 01 and error class ≤ bound)."""
    qc = np.asarray(qc).astype("uint8")
    mandatory = qc & QC_MANDATORY_BITS
    error_class = (qc >> QC_LST_ERROR_SHIFT) & QC_LST_ERROR_BITS
    return (mandatory <= QC_MANDATORY_MAX_OK) & (error_class <= lst_error_class_max(max_error_k))


def lst_degc(dn: np.ndarray, qc: np.ndarray, max_error_k: int) -> np.ndarray:
    """LST DN and QC -> °C (float64, for accumulation), NaN where fill (DN 0) or QC rejects the look."""
    dn = np.asarray(dn)
    ok = (dn != LST_FILL_DN) & lst_qc_ok(qc, max_error_k)
    return np.where(ok, dn.astype("float64") * LST_SCALE_K - KELVIN_AT_0_DEGC, np.nan)


def view_time_h(dn: np.ndarray) -> np.ndarray:
    """View-time DN -> local solar hours (float32), NaN at fill 255."""
    dn = np.asarray(dn)
    return np.where(dn != VIEW_TIME_FILL_DN, dn.astype("float32") * np.float32(VIEW_TIME_SCALE_H), np.nan).astype(
        "float32"
    )


def aqua_in_season(season_start_iso: str) -> bool:
    """Aqua LST enters a season only when it covers all of it (start on/after 2002-07-04)."""
    return season_start_iso >= AQUA_LST_START


def window_daily_mean_degc(day_sum, day_n, night_sum, night_n) -> np.ndarray:
    """(mean valid day look + mean valid night look) / 2 (°C); NaN without a day or a night look."""
    day_n, night_n = np.asarray(day_n), np.asarray(night_n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (np.asarray(day_sum) / day_n + np.asarray(night_sum) / night_n) / 2.0
    return np.where((day_n > 0) & (night_n > 0), out, np.nan).astype("float32")


# ----------------------------------------------------------------------------- MODIS NDVI
MODIS_NDVI_SCALE = 0.0001  # MOD13Q1 NDVI DN -> 1
MODIS_NDVI_FILL_DN = -3000
MODIS_SR_SCALE = 0.0001  # MOD09GQ sur_refl DN -> reflectance
MOD09GQ_MODLAND_BITS = 0b11
MOD09GQ_B1_QUALITY_SHIFT = 4
MOD09GQ_B2_QUALITY_SHIFT = 8
MOD09GQ_QUALITY_BITS = 0b1111


def mod13q1_ndvi(dn: np.ndarray, summary_qa: np.ndarray, max_summary_qa: int) -> np.ndarray:
    """MOD13Q1 NDVI DN and SummaryQA -> NDVI (float64, clamped to -1..1), NaN at fill or rejected QA."""
    dn, qa = np.asarray(dn), np.asarray(summary_qa).astype("int16")
    ok = (dn != MODIS_NDVI_FILL_DN) & (qa >= 0) & (qa <= max_summary_qa)
    return np.where(ok, np.clip(dn.astype("float64") * MODIS_NDVI_SCALE, -1, 1), np.nan)


# ----------------------------------------------------------------------------- Landsat C2 L2
SR_SCALE = 0.0000275  # SR_B* DN -> reflectance ...
SR_OFFSET = -0.2  # ... plus this offset
ST_SCALE_K = 0.00341802  # ST_B* DN -> K ...
ST_OFFSET_K = 149.0  # ... plus this offset (K)
QA_PIXEL_CLEAR_BITS = 0b11111
QA_PIXEL_SNOW_BIT = 1 << 5
#: NDVI bands (red, nir) per Landsat mission, by the two-digit number in the product id (LC08 -> 8).
LANDSAT_NDVI_BANDS = {
    4: ("SR_B3", "SR_B4"),
    5: ("SR_B3", "SR_B4"),
    7: ("SR_B3", "SR_B4"),
    8: ("SR_B4", "SR_B5"),
    9: ("SR_B4", "SR_B5"),
}


def landsat_clear(qa_pixel: np.ndarray, qa_radsat: np.ndarray, mask_snow: bool) -> np.ndarray:
    """True where QA_PIXEL bits 0-4 (and bit 5 when ``mask_snow``) are 0 and QA_RADSAT is 0."""
    bits = QA_PIXEL_CLEAR_BITS | (QA_PIXEL_SNOW_BIT if mask_snow else 0)
    return ((np.asarray(qa_pixel).astype("uint16") & bits) == 0) & (np.asarray(qa_radsat) == 0)


def landsat_reflectance(dn: np.ndarray) -> np.ndarray:
    """SR DN (resampled DNs may be fractional) -> surface reflectance (float64), NaN at DN 0 (fill) or NaN."""
    dn = np.asarray(dn, "float64")
    return np.where(dn != 0, dn * SR_SCALE + SR_OFFSET, np.nan)


def ndvi(nir: np.ndarray, red: np.ndarray) -> np.ndarray:
    """(nir − red)/(nir + red), clamped to -1..1 (float64), NaN where undefined."""
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (nir - red) / (nir + red)
    return np.where(np.isfinite(v), np.clip(v, -1, 1), np.nan)
