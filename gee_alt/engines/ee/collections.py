"""QA-masked, physically scaled input collections (pure graph builders).

Every function returns an ``ee`` object and computes nothing. Band names carry units:
``lst_day_degc``/``lst_night_degc`` (°C), ``ndvi`` (1), ``st_degc`` (°C), ``elevation_m`` (m),
``slope_deg`` (degrees), ``northness``/``eastness``/``illumination`` (1; defined once in
:mod:`gee_alt.science.terrain`).

Dates are ISO strings ``YYYY-MM-DD``; ``end`` is *exclusive* as in ``filterDate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ee

from gee_alt.science.product_rules import (  # the shared QA rules and scales (numpy readers use them too)
    AQUA_LST_START,
    LST_SCALE_K,
    MOD09GQ_B1_QUALITY_SHIFT,
    MOD09GQ_B2_QUALITY_SHIFT,
    MOD09GQ_MODLAND_BITS,
    MOD09GQ_QUALITY_BITS,
    MODIS_NDVI_SCALE,
    MODIS_SR_SCALE,
    QA_PIXEL_CLEAR_BITS,
    QA_PIXEL_SNOW_BIT,
    QC_LST_ERROR_BITS,
    QC_LST_ERROR_SHIFT,
    QC_MANDATORY_BITS,
    QC_MANDATORY_MAX_OK,
    SR_OFFSET,
    SR_SCALE,
    ST_OFFSET_K,
    ST_SCALE_K,
    VIEW_TIME_SCALE_H,
    lst_error_class_max,
)
from gee_alt.science.terrain import (
    EASTNESS,
    ELEVATION_M,
    ILLUMINATION,
    NORTHNESS,
    SLOPE_DEG,
    SUMMER_NOON_SUN_AZIMUTH_DEG,
    SUMMER_NOON_SUN_ELEVATION_DEG,
)
from gee_alt.units import KELVIN_AT_0_DEGC

# ----------------------------------------------------------------------------- MODIS LST

MOD11A1 = "MODIS/061/MOD11A1"  # Terra, from 2000-02-24, overpass ~10:30 / ~22:30 local solar time
MYD11A1 = "MODIS/061/MYD11A1"  # Aqua, from 2002-07-04, overpass ~13:30 / ~01:30
# Terra/Aqua start dates, LST scale and QC bits: gee_alt.science.product_rules


def modis_lst_qc_ok(qc: ee.Image, max_error_k: int) -> ee.Image:
    """1 where a MODIS LST QC value passes: mandatory QA (bits 0-1) is 00 or 01 *and* the
    LST error class (bits 6-7) is at most ``max_error_k`` kelvin."""
    mandatory = qc.bitwiseAnd(QC_MANDATORY_BITS)
    error_class = qc.rightShift(QC_LST_ERROR_SHIFT).bitwiseAnd(QC_LST_ERROR_BITS)
    return mandatory.lte(QC_MANDATORY_MAX_OK).And(error_class.lte(lst_error_class_max(max_error_k)))


def lst_dn_to_degc(dn: ee.Image) -> ee.Image:
    """MODIS LST digital numbers (0.02 K) to °C; fill value 0 must already be masked."""
    return dn.multiply(LST_SCALE_K).subtract(KELVIN_AT_0_DEGC)


def modis_lst_degc(image: ee.Image, max_error_k: int) -> ee.Image:
    """One MOD11A1/MYD11A1 day as ``lst_day_degc``, ``lst_night_degc`` (°C) and
    ``day_view_h``/``night_view_h`` (local solar hours), each masked by its own QC and fill 0."""
    day_dn = image.select("LST_Day_1km")
    night_dn = image.select("LST_Night_1km")
    day = (
        lst_dn_to_degc(day_dn).updateMask(day_dn.gt(0)).updateMask(modis_lst_qc_ok(image.select("QC_Day"), max_error_k))
    )
    night = (
        lst_dn_to_degc(night_dn)
        .updateMask(night_dn.gt(0))
        .updateMask(modis_lst_qc_ok(image.select("QC_Night"), max_error_k))
    )
    view = image.select(["Day_view_time", "Night_view_time"]).multiply(VIEW_TIME_SCALE_H)
    out = ee.Image.cat(
        [
            day.rename("lst_day_degc"),
            night.rename("lst_night_degc"),
            view.select([0]).updateMask(day.mask()).rename("day_view_h"),
            view.select([1]).updateMask(night.mask()).rename("night_view_h"),
        ]
    )
    return out.toFloat().copyProperties(image, ["system:time_start", "system:index"])


def lst_collection_ids(lst_ids: tuple[str, ...] | list[str], start: str, end: str) -> list[str]:
    """The configured LST collections that observed any of ``[start, end)``: Aqua from 2002-07-04.
    Aqua enters only through its fitted offset to Terra
    (:mod:`gee_alt.engines.ee.daily_lst`), so its arrival makes no step in the record."""
    return [c for c in lst_ids if c != MYD11A1 or end > AQUA_LST_START]


def modis_lst(collection_id: str, start: str, end: str, region: ee.Geometry, max_error_k: int) -> ee.ImageCollection:
    """QC-masked daily LST (°C) of one MODIS collection over ``[start, end)`` and ``region``."""
    return (
        ee.ImageCollection(collection_id)
        .filterDate(start, end)
        .filterBounds(region)
        .map(lambda img: modis_lst_degc(ee.Image(img), max_error_k))
    )


def modis_projection(collection_id: str, band: str) -> ee.Projection:
    """The native projection of a MODIS collection band (sinusoidal), from one of its images.

    Composites have no projection of their own; use this one for them.
    """
    return ee.Image(ee.ImageCollection(collection_id).first()).select(band).projection()


# ----------------------------------------------------------------------------- MODIS NDVI

MOD13Q1 = "MODIS/061/MOD13Q1"
MOD09GQ = "MODIS/061/MOD09GQ"
# MOD13Q1/MOD09GQ scales and QC bits: gee_alt.science.product_rules


def modis_ndvi(
    collection_id: str, start: str, end: str, region: ee.Geometry, max_summary_qa: int = 1
) -> ee.ImageCollection:
    """QA-masked MODIS 250 m NDVI (band ``ndvi``, unitless) over ``[start, end)``.

    Default **MOD13Q1** (16-day composite, ``SummaryQA`` <= ``max_summary_qa``: 0 good,
    1 marginal): it is already cloud-screened and composited by the producer. MOD09GQ (the
    daily surface reflectance the original study used) carries no cloud flag in its 250 m QC,
    so with it residual cloud is only suppressed by the max-NDVI compositing in
    :func:`gee_alt.engines.ee.composite.modis_ndvi_composite`; it is kept as an option for fidelity.
    """
    col = ee.ImageCollection(collection_id).filterDate(start, end).filterBounds(region)
    if collection_id == MOD13Q1:

        def prep(img):
            img = ee.Image(img)
            qa = img.select("SummaryQA")
            ok = qa.gte(0).And(qa.lte(max_summary_qa))  # -1 is fill (no data), never "good"
            return (
                img.select("NDVI")
                .multiply(MODIS_NDVI_SCALE)
                .updateMask(ok)
                .rename("ndvi")
                .toFloat()
                .copyProperties(img, ["system:time_start"])
            )
    elif collection_id == MOD09GQ:

        def prep(img):
            img = ee.Image(img)
            qc = img.select("QC_250m")
            ok = (
                qc.bitwiseAnd(MOD09GQ_MODLAND_BITS)
                .lte(1)
                .And(qc.rightShift(MOD09GQ_B1_QUALITY_SHIFT).bitwiseAnd(MOD09GQ_QUALITY_BITS).eq(0))
                .And(qc.rightShift(MOD09GQ_B2_QUALITY_SHIFT).bitwiseAnd(MOD09GQ_QUALITY_BITS).eq(0))
            )
            refl = img.select(["sur_refl_b02", "sur_refl_b01"]).multiply(MODIS_SR_SCALE)
            ndvi = refl.normalizedDifference(["sur_refl_b02", "sur_refl_b01"])
            return (
                ndvi.clamp(-1, 1)
                .updateMask(ok)
                .updateMask(refl.select(1).gt(0))
                .rename("ndvi")
                .toFloat()
                .copyProperties(img, ["system:time_start"])
            )
    else:
        raise ValueError(f"unknown MODIS NDVI collection {collection_id!r}")
    return col.map(prep)


def modis_ndvi_band(collection_id: str) -> str:
    """The native band whose projection a MODIS NDVI composite takes."""
    return "NDVI" if collection_id == MOD13Q1 else "sur_refl_b01"


# ----------------------------------------------------------------------------- Landsat C2 L2

# Landsat C2 L2 scale/offset and QA_PIXEL bits: gee_alt.science.product_rules


@dataclass(frozen=True)
class LandsatMission:
    """One Landsat Collection 2 Level 2 mission: bands and the dates it delivers data (ISO)."""

    collection_id: str
    name: str
    red: str
    nir: str
    thermal: str
    start: str
    end: str


LANDSAT_MISSIONS: dict[str, LandsatMission] = {
    m.collection_id: m
    for m in (
        LandsatMission("LANDSAT/LT05/C02/T1_L2", "L5", "SR_B3", "SR_B4", "ST_B6", "1984-03-16", "2012-05-06"),
        LandsatMission("LANDSAT/LE07/C02/T1_L2", "L7", "SR_B3", "SR_B4", "ST_B6", "1999-05-28", "2024-01-20"),
        LandsatMission("LANDSAT/LC08/C02/T1_L2", "L8", "SR_B4", "SR_B5", "ST_B10", "2013-03-18", "9999-12-31"),
        LandsatMission("LANDSAT/LC09/C02/T1_L2", "L9", "SR_B4", "SR_B5", "ST_B10", "2021-10-31", "9999-12-31"),
    )
}


def landsat_missions_for(collection_ids, start: str, end: str) -> list[LandsatMission]:
    """The configured missions that delivered data in ``[start, end)``."""
    return [
        LANDSAT_MISSIONS[c]
        for c in collection_ids
        if LANDSAT_MISSIONS[c].start < end and LANDSAT_MISSIONS[c].end > start
    ]


def landsat_clear_mask(image: ee.Image, mask_snow: bool) -> ee.Image:
    """1 where ``QA_PIXEL`` bits 0-4 (and bit 5 snow when ``mask_snow``) are 0 and ``QA_RADSAT`` is 0."""
    bits = QA_PIXEL_CLEAR_BITS | (QA_PIXEL_SNOW_BIT if mask_snow else 0)
    return image.select("QA_PIXEL").bitwiseAnd(bits).eq(0).And(image.select("QA_RADSAT").eq(0))


def landsat_ndvi_st(image: ee.Image, mission: LandsatMission, mask_snow: bool) -> ee.Image:
    """One Landsat scene as ``ndvi`` (1) and ``st_degc`` (°C), cloud/shadow/saturation masked."""
    # reflectance and temperature are resampled bilinearly (set on the input bands, before any
    # operation); the QA bit masks stay nearest-neighbour. On a grid aligned with Landsat's
    # (grid.origin_offset_m = 15) bilinear at pixel centres returns the pixels themselves.
    sr = image.select([mission.nir, mission.red]).resample("bilinear").multiply(SR_SCALE).add(SR_OFFSET)
    ndvi = sr.normalizedDifference([mission.nir, mission.red]).clamp(-1, 1).rename("ndvi")
    st = (
        image.select(mission.thermal)
        .resample("bilinear")
        .multiply(ST_SCALE_K)
        .add(ST_OFFSET_K)
        .subtract(KELVIN_AT_0_DEGC)
        .rename("st_degc")
    )
    return (
        ee.Image.cat([ndvi, st])
        .toFloat()
        .updateMask(landsat_clear_mask(image, mask_snow))
        .copyProperties(image, ["system:time_start", "system:index"])
        .set("mission", mission.name)
    )


def landsat(collection_ids, start: str, end: str, region: ee.Geometry, mask_snow: bool) -> ee.ImageCollection:
    """Merged, masked Landsat 5/7/8/9 ``ndvi``/``st_degc`` scenes over ``[start, end)`` and ``region``.

    Only missions that delivered data in the period enter the graph (``None`` if none did).
    """
    merged = None
    for m in landsat_missions_for(collection_ids, start, end):
        col = (
            ee.ImageCollection(m.collection_id)
            .filterDate(start, end)
            .filterBounds(region)
            .map(lambda img, m=m: landsat_ndvi_st(ee.Image(img), m, mask_snow))
        )
        merged = col if merged is None else merged.merge(col)
    return merged


# ----------------------------------------------------------------------------- DEM

DEM_SOURCES = {  # choice -> (asset id, band, is an ImageCollection)
    "copernicus": ("COPERNICUS/DEM/GLO30", "DEM", True),
    "srtm": ("USGS/SRTMGL1_003", "elevation", False),
    "nasadem": ("NASA/NASADEM_HGT/001", "elevation", False),
}


def dem_elevation_m(choice: str) -> ee.Image:
    """The selected 30 m DEM as band ``elevation_m`` (m) with a meaningful projection.

    GLO-30 is a tiled ImageCollection: mosaicked and given its tiles' projection, since a
    mosaic alone has the 1° WGS84 default that terrain operations would use.
    """
    asset, band, is_collection = DEM_SOURCES[choice]
    if is_collection:
        col = ee.ImageCollection(asset).select(band)
        dem = col.mosaic().setDefaultProjection(ee.Image(col.first()).projection())
    else:
        dem = ee.Image(asset).select(band)
    return dem.rename(ELEVATION_M).toFloat()


def terrain_predictors(choice: str) -> ee.Image:
    """The terrain predictors of :mod:`gee_alt.science.terrain` (same names, order and
    definitions): ``elevation_m`` (m), ``slope_deg`` (degrees), ``northness`` and ``eastness``
    (cos/sin of aspect, times sin(slope); 1) and ``illumination`` (1, same fixed sun).

    ``ee.Terrain.aspect`` is the downslope direction clockwise from north, as there. The DEM is
    bilinearly resampled (set on the input image, before any operation).
    """
    dem = dem_elevation_m(choice).resample("bilinear")
    slope = ee.Terrain.slope(dem)
    slope_rad = slope.multiply(math.pi / 180.0)
    aspect_rad = ee.Terrain.aspect(dem).multiply(math.pi / 180.0)
    sin_slope = slope_rad.sin()
    zenith_rad = math.radians(90.0 - SUMMER_NOON_SUN_ELEVATION_DEG)
    illumination = (
        slope_rad.cos()
        .multiply(math.cos(zenith_rad))
        .add(
            sin_slope.multiply(math.sin(zenith_rad)).multiply(
                aspect_rad.subtract(math.radians(SUMMER_NOON_SUN_AZIMUTH_DEG)).cos()
            )
        )
        .max(0)
    )
    return ee.Image.cat(
        [
            dem,
            slope.rename(SLOPE_DEG),
            aspect_rad.cos().multiply(sin_slope).rename(NORTHNESS),
            aspect_rad.sin().multiply(sin_slope).rename(EASTNESS),
            illumination.rename(ILLUMINATION),
        ]
    ).toFloat()
