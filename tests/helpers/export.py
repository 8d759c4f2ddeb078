"""A small UTM grid and DDT cube for the export tests (COG, NetCDF, STAC)."""

from __future__ import annotations

import numpy as np

from gee_alt.cube import make_ddt_cube
from gee_alt.grid import make_grid

# UTM 47N, 30 m pixels, 7 columns x 5 rows, upper-left corner (600 000 m E, 4 200 000 m N)
GRID = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (7, 5))
TRANSFORM = (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0)
YEARS = [2019, 2020, 2021]


def ddt_cube():
    """DDT 800-1600 degC day on :data:`GRID` for :data:`YEARS`, one NaN pixel (year 2020, row 2, col 3), sd 50."""
    rng = np.random.default_rng(0)
    ddt = rng.uniform(800, 1600, (len(YEARS), 5, 7)).astype(np.float32)
    ddt[1, 2, 3] = np.nan
    return make_ddt_cube(ddt, YEARS, GRID, ddt_sd_degc_days=np.full_like(ddt, 50.0), synthetic=True)
