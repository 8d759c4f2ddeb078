"""Terrain predictors from a DEM on a projected grid: the one definition both engines use.

With aspect the downslope direction clockwise from north and slope from the horizontal:

- ``elevation_m`` (m): the DEM;
- ``slope_deg`` (degrees, 0 = flat);
- ``northness`` = cos(aspect) · sin(slope) and ``eastness`` = sin(aspect) · sin(slope)
  (unitless, -1..1): weighting by sin(slope) makes flat ground 0 rather than an arbitrary
  direction;
- ``illumination`` = max(0, cos(z) · cos(slope) + sin(z) · sin(slope) · cos(sun azimuth − aspect))
  (unitless): the cosine of the solar incidence angle for a fixed sun at zenith angle
  z = 90° − :data:`SUMMER_NOON_SUN_ELEVATION_DEG`, 0 in self-shadow.

The NDVI forests of both engines leave ``illumination`` out (:data:`NDVI_TERRAIN_PREDICTORS`):
sun geometry drives surface temperature, not vegetation. The names and constants here are
pure; the Earth Engine engine imports them (:func:`gee_alt.engines.ee.collections.terrain_predictors`).

Pure numpy; NaN-aware (a pixel next to a NaN gets NaN derivatives only where needed). The experimental
window predictors at the end (:func:`topographic_position_m`, :func:`height_above_valley_floor_m`) use
scipy.ndimage and are not in :data:`TERRAIN_PREDICTORS`.
"""

from __future__ import annotations

import numpy as np

ELEVATION_M = "elevation_m"
SLOPE_DEG = "slope_deg"
NORTHNESS = "northness"
EASTNESS = "eastness"
ILLUMINATION = "illumination"
TERRAIN_PREDICTORS = (ELEVATION_M, SLOPE_DEG, NORTHNESS, EASTNESS, ILLUMINATION)
NDVI_TERRAIN_PREDICTORS = (ELEVATION_M, SLOPE_DEG, NORTHNESS, EASTNESS)

# Sun for illumination: mid-July local noon at ~38 N (elevation ~ 72 deg, azimuth 180 deg).
SUMMER_NOON_SUN_ELEVATION_DEG = 72.0
SUMMER_NOON_SUN_AZIMUTH_DEG = 180.0


def gradients(dem_m: np.ndarray, pixel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """East and north elevation gradients (m/m) by central differences; rows run north to south."""
    dz_drow, dz_dcol = np.gradient(np.asarray(dem_m, dtype="float64"), pixel_m)
    return dz_dcol, -dz_drow  # d/dx (east), d/dy (north)


def slope_deg(dem_m: np.ndarray, pixel_m: float) -> np.ndarray:
    """Slope in degrees (0 = flat)."""
    gx, gy = gradients(dem_m, pixel_m)
    return np.degrees(np.arctan(np.hypot(gx, gy))).astype("float32")


def aspect_components(dem_m: np.ndarray, pixel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(northness, eastness), unitless in [-1, 1], as defined in the module docstring."""
    gx, gy = gradients(dem_m, pixel_m)
    s = np.sin(np.arctan(np.hypot(gx, gy)))
    norm = np.hypot(gx, gy)
    with np.errstate(invalid="ignore", divide="ignore"):
        north = np.where(norm > 0, -gy / norm, 0.0) * s  # downslope towards north -> positive
        east = np.where(norm > 0, -gx / norm, 0.0) * s
    return north.astype("float32"), east.astype("float32")


def illumination(
    dem_m: np.ndarray,
    pixel_m: float,
    sun_elevation_deg: float = SUMMER_NOON_SUN_ELEVATION_DEG,
    sun_azimuth_deg: float = SUMMER_NOON_SUN_AZIMUTH_DEG,
) -> np.ndarray:
    """Cosine of the solar incidence angle on the slope (unitless, clipped at 0: self-shadow);
    the unit-vector form of the module docstring's formula."""
    gx, gy = gradients(dem_m, pixel_m)
    zen = np.radians(90.0 - sun_elevation_deg)
    az = np.radians(sun_azimuth_deg)
    # unit surface normal (east, north, up) and unit vector to the sun
    n = np.stack([-gx, -gy, np.ones_like(gx)])
    n /= np.linalg.norm(n, axis=0)
    sun = np.array([np.sin(zen) * np.sin(az), np.sin(zen) * np.cos(az), np.cos(zen)])
    return np.clip(np.tensordot(sun, n, axes=1), 0.0, None).astype("float32")


#: rows of a whole-grid DEM a derivative map is computed on at a time (:func:`by_row_blocks`)
BLOCK_ROWS = 256


def by_row_blocks(fn, dem_m: np.ndarray, rows: int | None = None) -> np.ndarray:
    """``fn(dem_m)`` (a float32 ``(y, x)`` map of a derivative from central differences, e.g.
    :func:`slope_deg`) computed ``rows`` rows at a time, each block with a 1-row halo: the same
    values as on the whole grid (a pixel's differences use only its neighbours, the grid's first
    and last rows get the one-sided ones either way), with float64 temporaries of one block
    instead of the whole grid (``rows``: default :data:`BLOCK_ROWS`)."""
    h = np.shape(dem_m)[0]
    step = max(1, int(rows or BLOCK_ROWS))
    out = None
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        a0, a1 = max(0, r0 - 1), min(h, r1 + 1)
        block = fn(dem_m[a0:a1])[r0 - a0 : r1 - a0]
        if out is None:
            out = np.empty((h, *block.shape[1:]), block.dtype)
        out[r0:r1] = block
    return out


def terrain_predictors(dem_m: np.ndarray, pixel_m: float) -> dict[str, np.ndarray]:
    """The :data:`TERRAIN_PREDICTORS` stack, in that order: elevation (m), slope (deg), northness,
    eastness, illumination."""
    north, east = aspect_components(dem_m, pixel_m)
    return {
        ELEVATION_M: np.asarray(dem_m, "float32"),
        SLOPE_DEG: slope_deg(dem_m, pixel_m),
        NORTHNESS: north,
        EASTNESS: east,
        ILLUMINATION: illumination(dem_m, pixel_m),
    }


# ------------------------------------------------------------------ multi-scale position (experimental)
# Not among TERRAIN_PREDICTORS: measured as extra sharpener predictors on the hard scenes of
# scripts/bench_downscale.py (BENCHMARKS.md §1b), they did not lower the RMSE on the tuning seeds.
# Both use only the pixels within the window (no running sums), so a tile read with a halo of
# ``radius_px`` pixels gets the whole raster's values bit for bit; outside the raster counts as no data.


def _window_px(radius_m: float, pixel_m: float) -> int:
    """Half-width (pixels, >= 1) of the square window of radius ``radius_m`` (m)."""
    if not (radius_m > 0 and pixel_m > 0):
        raise ValueError(f"radius and pixel size must be > 0 (got {radius_m} m, {pixel_m} m)")
    return max(1, int(round(radius_m / pixel_m)))


def topographic_position_m(dem_m: np.ndarray, pixel_m: float, radius_m: float) -> np.ndarray:
    """Topographic position index (m): elevation minus the mean elevation of the valid pixels in
    the square window of half-width ``radius_m`` around it (> 0 on ridges, < 0 in valleys).
    NaN where the DEM is NaN; NaN pixels are left out of the neighbours' means."""
    from scipy.ndimage import correlate1d

    z = np.asarray(dem_m, dtype="float64")
    r = _window_px(radius_m, pixel_m)
    valid = np.isfinite(z)
    w = np.ones(2 * r + 1)
    total = correlate1d(correlate1d(np.where(valid, z, 0.0), w, 0, mode="constant"), w, 1, mode="constant")
    count = correlate1d(correlate1d(valid.astype("float64"), w, 0, mode="constant"), w, 1, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, z - total / count, np.nan).astype("float32")


def height_above_valley_floor_m(dem_m: np.ndarray, pixel_m: float, radius_m: float) -> np.ndarray:
    """Height (m, >= 0) above the lowest valid pixel in the square window of half-width
    ``radius_m``: a proxy for cold-air pooling (0 on the local valley floor). NaN where the DEM is NaN."""
    from scipy.ndimage import minimum_filter

    z = np.asarray(dem_m, dtype="float64")
    r = _window_px(radius_m, pixel_m)
    valid = np.isfinite(z)
    floor = minimum_filter(np.where(valid, z, np.inf), size=2 * r + 1, mode="constant", cval=np.inf)
    return np.where(valid, z - floor, np.nan).astype("float32")
