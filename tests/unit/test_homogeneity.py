"""Homogeneity screen of in-situ sites on a synthetic scene with known uniform and rough spots."""

import numpy as np
import pytest

from gee_alt.errors import GeeAltError
from gee_alt.grid import make_grid, rowcol_to_lonlat
from gee_alt.insitu.table import make_insitu_table
from gee_alt.science.homogeneity import DEFAULT_THRESHOLDS, screen_sites, site_heterogeneity

GRID = make_grid("EPSG:32647", (30.0, 0.0, 500_000.0, 0.0, -30.0, 4_200_000.0), (80, 60))  # width 80, height 60


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    h, w = 60, 80
    yy, xx = np.mgrid[0:h, 0:w]
    dem = 4000.0 + 0.02 * 30 * xx + rng.normal(0, 0.5, (h, w))  # gentle 2 % slope
    dem[:, 50:70] += 0.5 * 30 * (xx[:, 50:70] - 50)  # a 50 % slope band (~27°)
    ndvi = 0.45 + rng.normal(0, 0.02, (h, w))
    ndvi[40:55, 5:20] = rng.choice([0.05, 0.7], size=(15, 15))  # bare/meadow mosaic
    ddt = 1500.0 + rng.normal(0, 20, (h, w))
    ddt[5:15, 30:40] = np.nan  # cloud-masked hole
    return {"dem": dem, "ndvi": ndvi, "ddt": ddt}


def _lonlat(rows, cols):
    lon, lat = rowcol_to_lonlat(GRID, np.asarray(rows) + 0.5, np.asarray(cols) + 0.5)
    return lon, lat


SITES = {  # name: (row, col, expected reason fragment or "")
    "flat1": (20, 10, ""),
    "flat2": (30, 30, ""),
    "flat3": (45, 40, ""),
    "steep": (25, 60, "dem_std"),
    "mosaic": (47, 12, "ndvi_std"),
    "edge": (1, 40, "window leaves the grid"),
    "hole": (10, 35, "ddt window mostly NaN"),
    "flagged": (30, 25, "homogeneous=false"),
}


def test_window_metrics_match_numpy():
    f = _scene()
    r, c = 20, 10
    lon, lat = _lonlat([r], [c])
    het = site_heterogeneity(f, GRID, lon, lat, radius_px=2)
    win = f["dem"][r - 2 : r + 3, c - 2 : c + 3]
    assert het["row"][0] == r and het["col"][0] == c
    assert het["dem_std"][0] == pytest.approx(win.std(), rel=1e-12)
    assert het["ddt_cv"][0] == pytest.approx(
        f["ddt"][r - 2 : r + 3, c - 2 : c + 3].std() / f["ddt"][r - 2 : r + 3, c - 2 : c + 3].mean(), rel=1e-12
    )
    assert het["ndvi_valid_frac"][0] == 1.0 and het["inside"][0]


def test_screen_keeps_homogeneous_sites_and_explains_drops():
    f = _scene()
    names = list(SITES)
    rows = [SITES[n][0] for n in names]
    cols = [SITES[n][1] for n in names]
    lon, lat = _lonlat(rows, cols)
    table = make_insitu_table(
        [
            dict(site_id=n, lon=lo, lat=la, year=2010, alt_m=1.5, homogeneous=(False if n == "flagged" else None))
            for n, lo, la in zip(names, lon, lat, strict=True)
        ]
    )
    het = site_heterogeneity(f, GRID, table.lon, table.lat)
    keep, reasons = screen_sites(table, het)
    for n, k, why in zip(names, keep, reasons, strict=True):
        expected = SITES[n][2]
        if expected:
            assert not k and expected in why, (n, why)
        else:
            assert k and why == "", (n, why)
    # thresholds are configurable: a very strict DEM threshold drops the gently sloping sites too
    keep2, reasons2 = screen_sites(table, het, {"dem_std": 0.1})
    assert not keep2[names.index("flat1")] and "dem_std" in reasons2[names.index("flat1")]
    # and a threshold can be disabled
    keep3, _ = screen_sites(table, het, {"ndvi_std": None})
    assert keep3[names.index("mosaic")]
    with pytest.raises(GeeAltError, match="names no computed metric"):
        screen_sites(table, het, {"slope_std": 3.0})


def test_defaults_documented_and_shape_checked():
    assert set(DEFAULT_THRESHOLDS) == {
        "dem_std",
        "ndvi_std",
        "ddt_cv",
        "min_valid_frac",
        "dem_std_1km",
        "ndvi_std_1km",
        "landcover_impurity_1km",
    }
    with pytest.raises(GeeAltError, match="shape"):
        site_heterogeneity({"dem": np.zeros((3, 3))}, GRID, [99.0], [38.0])


def test_footprint_metrics_against_hand_values():
    """1 km footprint (35 x 35 px at 30 m: radius round(500/30) = 17): on a plane rising 0.2 m per m
    eastward the DEM std is the std of 35 equally spaced columns, 30 m * 0.2 * sqrt((35^2 - 1)/12);
    a footprint split between two classes after column 10 of 35 has impurity 10/35 for a site in
    the larger class."""
    from gee_alt.grid import make_grid
    from gee_alt.science.footprint_screen import footprint_metrics

    grid = make_grid("EPSG:32647", (30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0), (101, 101))
    cols = np.arange(101, dtype=float)
    dem = np.tile(cols * 30.0 * 0.2, (101, 1))
    lc = np.where(np.arange(101)[None, :] < 50 - 17 + 10, 3.0, 1.0) * np.ones((101, 1))
    m = footprint_metrics({"dem": dem}, lc, grid, np.array([50]), np.array([50]))
    assert m["dem_std_1km"][0] == pytest.approx(30.0 * 0.2 * np.sqrt((35**2 - 1) / 12), rel=1e-9)
    assert m["landcover_impurity_1km"][0] == pytest.approx(10 / 35, rel=1e-9)
