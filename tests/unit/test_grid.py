"""Grid helpers against hand computations and the real study-area extent."""

import numpy as np
import pytest

from gee_alt.errors import GeeAltError
from gee_alt.grid import (
    DATONG_BBOX,
    bounds,
    coarsen,
    coords,
    grid_from_bbox,
    lonlat_to_rowcol,
    make_grid,
    require_projected,
    rowcol_to_lonlat,
    same_grid,
    shape_yx,
    subgrid,
    utm_epsg,
)


def test_utm_zone_of_datong_is_47n():
    assert utm_epsg(99.4, 38.0) == "EPSG:32647"
    assert utm_epsg(-70.0, -33.0) == "EPSG:32719"
    with pytest.raises(GeeAltError):
        utm_epsg(200.0, 0.0)


def test_datong_grid_matches_published_extent():
    g = grid_from_bbox(DATONG_BBOX, 30.0)
    w, h = g["shape_2d"]
    # REFERENCE.md: about 96 km x 62 km, i.e. ~3200 x 2050 pixels at 30 m (UTM widens the box a little)
    assert 3150 <= w <= 3300 and 2030 <= h <= 2100
    a, _, c, _, e, f = g["crs_transform"]
    assert (a, e) == (30.0, -30.0) and c % 30 == 0 and f % 30 == 0
    # the bbox corners are inside the grid
    r, col = lonlat_to_rowcol(g, [DATONG_BBOX[0], DATONG_BBOX[2]], [DATONG_BBOX[1], DATONG_BBOX[3]])
    assert np.all((r >= 0) & (r <= h)) and np.all((col >= 0) & (col <= w))


def test_coords_bounds_subgrid_coarsen_by_hand():
    g = make_grid("EPSG:32647", (30, 0, 1000, 0, -30, 5000), (4, 3))
    x, y = coords(g)
    assert x.tolist() == [1015, 1045, 1075, 1105] and y.tolist() == [4985, 4955, 4925]
    assert bounds(g) == (1000, 4910, 1120, 5000)
    s = subgrid(g, 1, 2, 2, 1)
    assert s["crs_transform"][2] == 1030 and s["crs_transform"][5] == 4940 and shape_yx(s) == (1, 2)
    c = coarsen(g, 2)
    assert c["shape_2d"] == (2, 2) and c["crs_transform"][0] == 60
    assert same_grid(g, make_grid("EPSG:32647", (30, 0, 1000, 0, -30, 5000), (4, 3)))
    assert not same_grid(g, s)


def test_lonlat_roundtrip():
    g = grid_from_bbox(DATONG_BBOX, 30.0)
    lon, lat = rowcol_to_lonlat(g, np.array([100.5, 2000.5]), np.array([7.5, 3100.5]))
    r, c = lonlat_to_rowcol(g, lon, lat)
    np.testing.assert_allclose(r, [100.5, 2000.5], atol=1e-6)
    np.testing.assert_allclose(c, [7.5, 3100.5], atol=1e-6)


@pytest.mark.parametrize("bbox", [(99.9, 38, 98.8, 38.3), (98, 38.3, 99, 38.0)])
def test_reversed_bbox_is_a_user_error(bbox):
    with pytest.raises(GeeAltError, match="west<east"):
        grid_from_bbox(bbox, 30)


def test_grid_must_be_north_up():
    with pytest.raises(GeeAltError):
        make_grid("EPSG:32647", (30, 0, 0, 0, 30, 0), (2, 2))


def test_require_projected_accepts_metres_and_names_a_geographic_crs():
    require_projected("EPSG:32647", "dem.tif")
    require_projected("+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs", "modis")
    for crs, label in (("EPSG:4326", "EPSG:4326"), ("+proj=longlat +datum=WGS84 +no_defs", "EPSG:4326")):
        with pytest.raises(GeeAltError) as ei:
            require_projected(crs, "dem.tif")
        msg = str(ei.value)
        assert msg.startswith("dem.tif must be in a projected CRS") and label in msg and "\n" not in msg
