"""The MODIS sinusoidal pixel lattice the synthetic sensors observe on (grid geometry only)."""

from __future__ import annotations

import math

from gee_alt.grid import Grid, bounds, make_grid

# MODIS sinusoidal projection and its global pixel lattice (MODIS land grid, metres).
MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_ORIGIN_X = -20015109.355798
MODIS_ORIGIN_Y = 10007554.677899
MODIS_250M = 231.656358263958
MODIS_1KM = 926.625433055833


def modis_grid(fine_grid: Grid, pixel_m: float, margin_px: int = 1) -> Grid:
    """The MODIS sinusoidal grid (global MODIS lattice, ``pixel_m``) covering ``fine_grid``
    with ``margin_px`` extra pixels on each side."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(fine_grid["crs"], MODIS_SINUSOIDAL, *bounds(fine_grid), densify_pts=51)
    c0 = math.floor((left - MODIS_ORIGIN_X) / pixel_m) - margin_px
    c1 = math.ceil((right - MODIS_ORIGIN_X) / pixel_m) + margin_px
    r0 = math.floor((MODIS_ORIGIN_Y - top) / pixel_m) - margin_px
    r1 = math.ceil((MODIS_ORIGIN_Y - bottom) / pixel_m) + margin_px
    return make_grid(
        MODIS_SINUSOIDAL,
        (pixel_m, 0.0, MODIS_ORIGIN_X + c0 * pixel_m, 0.0, -pixel_m, MODIS_ORIGIN_Y - r0 * pixel_m),
        (c1 - c0, r1 - r0),
    )
