"""Terrain predictors from a DEM on a projected grid: slope, aspect components, illumination.

Pure numpy; NaN-aware (a pixel next to a NaN gets NaN derivatives only where needed).
"""

from __future__ import annotations

import numpy as np

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
    """(northness, eastness) = (cos aspect, sin aspect) x sin(slope), unitless in [-1, 1].

    Aspect is the downslope direction clockwise from north; weighting by sin(slope) makes flat
    ground 0 rather than an arbitrary direction.
    """
    gx, gy = gradients(dem_m, pixel_m)
    s = np.sin(np.arctan(np.hypot(gx, gy)))
    norm = np.hypot(gx, gy)
    with np.errstate(invalid="ignore", divide="ignore"):
        north = np.where(norm > 0, -gy / norm, 0.0) * s  # downslope towards north -> positive
        east = np.where(norm > 0, -gx / norm, 0.0) * s
    return north.astype("float32"), east.astype("float32")


def illumination(dem_m: np.ndarray, pixel_m: float, sun_elevation_deg: float = SUMMER_NOON_SUN_ELEVATION_DEG,
                 sun_azimuth_deg: float = SUMMER_NOON_SUN_AZIMUTH_DEG) -> np.ndarray:
    """Cosine of the solar incidence angle on the slope (unitless, clipped at 0: self-shadow)."""
    gx, gy = gradients(dem_m, pixel_m)
    zen = np.radians(90.0 - sun_elevation_deg)
    az = np.radians(sun_azimuth_deg)
    # unit surface normal (east, north, up) and unit vector to the sun
    n = np.stack([-gx, -gy, np.ones_like(gx)])
    n /= np.linalg.norm(n, axis=0)
    sun = np.array([np.sin(zen) * np.sin(az), np.sin(zen) * np.cos(az), np.cos(zen)])
    return np.clip(np.tensordot(sun, n, axes=1), 0.0, None).astype("float32")


def terrain_predictors(dem_m: np.ndarray, pixel_m: float) -> dict[str, np.ndarray]:
    """The standard terrain predictor stack: elevation (m), slope (deg), northness, eastness, illumination."""
    north, east = aspect_components(dem_m, pixel_m)
    return {
        "elevation_m": np.asarray(dem_m, "float32"),
        "slope_deg": slope_deg(dem_m, pixel_m),
        "northness": north,
        "eastness": east,
        "illumination": illumination(dem_m, pixel_m),
    }
