"""How many 30 m grid pixels one MODIS pixel's footprint spans (pure pyproj; no ``ee``).

``reduceResolution`` refuses (``bestEffort=False``) to aggregate more than ``maxPixels`` input
pixels into one output pixel, and it counts the input pixels in the output pixel's bounding
box in the input projection. At 99° E, 38° N the MODIS sinusoidal grid is sheared ≈ 47° against
UTM 47N, so a 926.6 m cell's bounding box covers ≈ 2100 thirty-metre pixels although only
≈ 954 overlap it. :func:`required_max_pixels` measures that count over the AOI (the cell
corners, densified, transformed with pyproj) and adds a margin, so ``maxPixels`` is right by
construction for any AOI and grid.
"""

from __future__ import annotations

import math

import numpy as np

from gee_alt.grid import MODIS_ORIGIN_X, MODIS_ORIGIN_Y, MODIS_SINUSOIDAL, Grid

FOOTPRINT_MARGIN = 1.15  # on top of the largest measured bounding-box count
LATTICE_POINTS = 7  # AOI points per side at which a coarse cell is measured
EDGE_POINTS = 9  # points per cell edge (densified: the cell edges are curved in UTM)


def bbox_pixel_count(grid: Grid, bbox_lonlat, coarse_m: float) -> int:
    """The largest number of ``grid`` pixels touched by the bounding box (in the grid CRS) of
    one MODIS sinusoidal cell of size ``coarse_m`` (m), over a lattice of cells in the AOI."""
    from pyproj import Transformer

    to_sin = Transformer.from_crs("EPSG:4326", MODIS_SINUSOIDAL, always_xy=True)
    to_grid = Transformer.from_crs(MODIS_SINUSOIDAL, grid["crs"], always_xy=True)
    a, _, c, _, e, f = grid["crs_transform"]
    w, s, east, n = (float(v) for v in bbox_lonlat)
    t = np.linspace(0.0, 1.0, EDGE_POINTS)
    ring_u = np.concatenate([t, np.ones_like(t), t[::-1], np.zeros_like(t)])
    ring_v = np.concatenate([np.zeros_like(t), t, np.ones_like(t), t[::-1]])
    best = 0
    for lon in np.linspace(w, east, LATTICE_POINTS):
        for lat in np.linspace(s, n, LATTICE_POINTS):
            x, y = to_sin.transform(lon, lat)
            x0 = MODIS_ORIGIN_X + math.floor((x - MODIS_ORIGIN_X) / coarse_m) * coarse_m
            y1 = MODIS_ORIGIN_Y - math.floor((MODIS_ORIGIN_Y - y) / coarse_m) * coarse_m
            gx, gy = to_grid.transform(x0 + ring_u * coarse_m, y1 - ring_v * coarse_m)
            cols = math.floor((max(gx) - c) / a) - math.floor((min(gx) - c) / a) + 1
            rows = math.floor((max(gy) - f) / e) - math.floor((min(gy) - f) / e) + 1
            best = max(best, abs(cols * rows))
    return best


def required_max_pixels(grid: Grid, bbox_lonlat, coarse_m: float, configured: int = 0) -> int:
    """``reduceResolution`` ``maxPixels`` for aggregating ``grid`` to MODIS cells of ``coarse_m``:
    the measured bounding-box count times :data:`FOOTPRINT_MARGIN`, or ``configured`` when larger
    (``ee_sampling.reduce_max_pixels``; 0 = from the footprint only)."""
    need = math.ceil(bbox_pixel_count(grid, bbox_lonlat, coarse_m) * FOOTPRINT_MARGIN)
    return max(int(configured), need)
