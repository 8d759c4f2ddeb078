"""Terrain of the realistic world: elevation, its derivatives and solar exposure.

Written independently of :mod:`gee_alt.science.terrain` (the engine's predictors): slopes by
central differences, and exposure as the ratio of clear-sky beam-plus-diffuse irradiance on the
slope to that on flat ground, integrated over the day with the sun's true path at the scene's
latitude, month by month (the engine's single fixed-sun hillshade is a different quantity).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from gee_alt.demo.fields import fractal_surface, rng_for

MONTH_MID_DOY = np.array([15, 46, 74, 105, 135, 166, 196, 227, 258, 288, 319, 349])


def elevation_m(n: int | tuple[int, int], seed: int) -> np.ndarray:
    """Elevation (m) on an ``n`` x ``n`` grid (or ``(rows, cols)``), 3400-4800 m: a meandering
    valley along x with a broad floor and tributary side valleys between rough ridges (float32)."""
    rng = rng_for(seed, 101)
    ny, nx = (n, n) if isinstance(n, int) else n
    rows, cols = np.mgrid[0:ny, 0:nx]
    yy, xx = rows / ny, cols / nx
    phase = rng.uniform(0, 2 * np.pi, 3)
    centre = 0.5 + 0.1 * np.sin(2 * np.pi * 1.1 * xx + phase[0]) + 0.04 * np.sin(2 * np.pi * 2.7 * xx + phase[1])
    d = np.abs(yy - centre)
    floor = 0.05
    relief = np.clip((d - floor) / (0.55 - floor), 0, None) ** 0.8
    side = 0.35 * np.clip(relief, 0, 1) * (0.5 + 0.5 * np.cos(2 * np.pi * 3.0 * xx + phase[2])) ** 2
    rough = fractal_surface((ny, nx), 3.2, rng)
    z = 0.25 * d + relief - side + (0.025 + 0.22 * np.clip(relief, 0, 1)) * rough
    lo, hi = np.percentile(z, [0.5, 99.7])
    return (3400.0 + 1400.0 * np.clip((z - lo) / (hi - lo), -0.01, 1.02)).astype("float32")


def slope_aspect(z_m: np.ndarray, pixel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope (radians) and aspect (radians clockwise from north, the downslope direction)."""
    dz_drow, dz_dcol = np.gradient(z_m.astype("float64"), pixel_m)
    dz_dx, dz_dy = dz_dcol, -dz_drow  # rows run south
    slope = np.arctan(np.hypot(dz_dx, dz_dy))
    aspect = np.mod(np.arctan2(-dz_dx, -dz_dy), 2 * np.pi)
    return slope, aspect


def exposure_by_month(slope: np.ndarray, aspect: np.ndarray, lat_deg: float) -> np.ndarray:
    """Daily clear-sky irradiance on the slope / on flat ground, ``(12, y, x)`` for mid-month days.

    Beam (atmospheric transmissivity 0.7 at zenith, airmass 1/cos z) and isotropic diffuse
    (15 % of the flat-ground total, scaled by the sky view (1 + cos slope)/2), summed every
    30 minutes from sunrise to sunset. No horizon shading.
    """
    lat = np.radians(lat_deg)
    cos_s = np.cos(slope).astype("float32")
    tilt_n = (np.sin(slope) * np.cos(aspect)).astype("float32")  # slope tilt towards north
    tilt_e = (np.sin(slope) * np.sin(aspect)).astype("float32")  # and towards east
    out = np.empty((12, *slope.shape), "float32")
    for m, doy in enumerate(MONTH_MID_DOY):
        decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
        hours = np.arange(0.25, 24, 0.5)
        h = np.radians(15.0 * (hours - 12.0))
        cos_z = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(h)
        up = cos_z > 0.02
        h, cos_z = h[up], cos_z[up]
        sin_z = np.sqrt(1 - cos_z**2)
        az = np.arctan2(np.sin(h), np.cos(h) * np.sin(lat) - np.tan(decl) * np.cos(lat)) + np.pi
        beam = 0.7 ** (1.0 / cos_z)
        flat_beam = np.sum(beam * cos_z)
        diffuse = 0.15 / 0.85 * flat_beam
        on_slope = np.zeros(slope.shape, "float32")
        for k in range(len(h)):
            inc = cos_z[k] * cos_s + (sin_z[k] * np.cos(az[k])) * tilt_n + (sin_z[k] * np.sin(az[k])) * tilt_e
            on_slope += beam[k] * np.clip(inc, 0, None)
        out[m] = (on_slope + diffuse * (1 + cos_s) / 2) / (flat_beam + diffuse)
    return out


def topographic_position_m(z_m: np.ndarray, radius_px: int) -> np.ndarray:
    """Elevation minus the mean elevation within a square of half-width ``radius_px`` (m):
    negative in valleys and hollows (where cold air pools), positive on ridges."""
    z = z_m.astype("float64")
    return (z - uniform_filter(z, 2 * radius_px + 1, mode="reflect")).astype("float32")
