"""The DDT cube and geo DataArrays carry rioxarray's georeferencing; grid_of gives the grid back."""

import numpy as np
import pytest
from rasterio.crs import CRS

from gee_alt.cube import DDT_VAR, geo_dataarray, grid_of, make_ddt_cube, validate_ddt_cube
from gee_alt.errors import GeeAltError
from gee_alt.grid import MODIS_1KM, MODIS_SINUSOIDAL, make_grid, same_grid

GRID = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (7, 5))
YEARS = [2019, 2020]


def _cube(grid=GRID):
    w, h = grid["shape_2d"]
    return make_ddt_cube(
        np.full((len(YEARS), h, w), 900.0), YEARS, grid, engine="ee", synthetic=True, thaw_season="Apr-Oct"
    )


def test_cube_rio_crs_and_transform_are_the_grid():
    cube = _cube()
    assert cube.rio.crs == CRS.from_epsg(32647)
    assert tuple(cube.rio.transform())[:6] == (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0)
    assert (cube.rio.width, cube.rio.height) == (7, 5)
    # every variable taken from the cube keeps it
    assert cube[DDT_VAR].rio.crs == CRS.from_epsg(32647)
    assert grid_of(cube) == GRID and grid_of(cube[DDT_VAR]) == GRID
    assert "crs" not in cube.attrs and "crs_transform" not in cube.attrs
    assert cube.attrs["engine"] == "ee" and cube.attrs["synthetic"] == 1 and cube.attrs["thaw_season"] == "Apr-Oct"
    assert cube["x"].attrs["standard_name"] == "projection_x_coordinate"


def test_grid_of_a_window_has_the_window_origin():
    win = _cube().isel(x=slice(2, 5), y=slice(1, 3))
    # columns 2..4, rows 1..2: origin moves 2 px east and 1 px south
    assert grid_of(win) == make_grid("EPSG:32647", (30.0, 0.0, 600_060.0, 0.0, -30.0, 4_199_970.0), (3, 2))


def test_grid_of_returns_the_written_transform_exactly():
    # the pixel-centre origin of 0.1 m does not survive (0.1 + 15) - 15 in floating point
    assert (0.1 + 15.0) - 15.0 != 0.1
    g = make_grid("EPSG:32647", (30.0, 0.0, 0.1, 0.0, -30.0, 0.3), (4, 3))
    assert grid_of(geo_dataarray(np.zeros((3, 4)), g))["crs_transform"] == (30.0, 0.0, 0.1, 0.0, -30.0, 0.3)


def test_geo_dataarray_keeps_georeferencing_through_arithmetic():
    da = geo_dataarray(np.arange(70.0).reshape(2, 5, 7), GRID, ["a", "b"], dim="feature", attrs={"units": "K"})
    assert list(da["feature"].values) == ["a", "b"] and da.attrs == {"units": "K"}
    assert grid_of(2.0 * da - 1.0) == GRID
    assert grid_of(da.sel(feature="b")) == GRID


def test_crs_without_epsg_comes_back_as_wkt():
    g = make_grid(MODIS_SINUSOIDAL, (MODIS_1KM, 0.0, 8_621_323.027359463, 0.0, -MODIS_1KM, 4_264_330.243818946), (4, 3))
    back = grid_of(geo_dataarray(np.zeros((3, 4)), g))
    assert back["crs"].startswith("PROJCS[") and same_grid(back, g)
    assert back["crs_transform"] == g["crs_transform"]


def test_validate_rejects_missing_crs_and_irregular_coords():
    cube = _cube()
    assert validate_ddt_cube(cube) is cube
    with pytest.raises(GeeAltError, match="no CRS"):
        validate_ddt_cube(cube.drop_vars("spatial_ref"))
    bent = cube.assign_coords(x=cube["x"].values + np.array([0, 0, 0, 0, 0, 0, 7.0]))
    with pytest.raises(GeeAltError, match="pixel centres"):
        validate_ddt_cube(bent)
