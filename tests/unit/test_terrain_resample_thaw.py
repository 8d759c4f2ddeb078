"""Terrain derivatives, resampling and DDT against hand computations."""

import math

import numpy as np
import pytest

from gee_alt.grid import make_grid
from gee_alt.science.resample import aggregate, coverage_fraction, fill_nearest, interpolate
from gee_alt.science.terrain import (
    SUMMER_NOON_SUN_AZIMUTH_DEG,
    SUMMER_NOON_SUN_ELEVATION_DEG,
    TERRAIN_PREDICTORS,
    aspect_components,
    gradients,
    illumination,
    slope_deg,
    terrain_predictors,
)
from gee_alt.science.thaw import ddt_from_composites, ddt_spread, fill_gaps_in_time


def _plane(rise_east=0.0, rise_north=0.0, n=32, px=30.0):
    yy, xx = np.mgrid[0:n, 0:n]
    return 4000.0 + rise_east * xx * px - rise_north * yy * px  # rows run south


def test_slope_and_aspect_of_planes():
    z = _plane(rise_east=math.tan(math.radians(20)))
    assert np.allclose(slope_deg(z, 30.0), 20.0, atol=1e-4)
    north, east = aspect_components(z, 30.0)
    # rising to the east = facing (downslope) west: eastness -sin(20), northness 0
    assert np.allclose(east, -math.sin(math.radians(20)), atol=1e-5) and np.allclose(north, 0, atol=1e-6)
    north, east = aspect_components(_plane(rise_north=-0.2), 30.0)  # falls towards north: north-facing
    assert np.all(north > 0.19) and np.allclose(east, 0, atol=1e-6)


def test_illumination_flat_and_facing_sun():
    flat = np.full((8, 8), 4000.0)
    assert np.allclose(illumination(flat, 30, 60, 180), math.sin(math.radians(60)))
    # a slope facing the sun (south-facing: rises to the north) at 30 deg, sun at 60 deg elevation -> normal to the sun
    z = _plane(rise_north=math.tan(math.radians(30)))
    assert np.allclose(illumination(z, 30, 60, 180), 1.0, atol=1e-6)


def test_terrain_matches_its_written_definition():
    """northness/eastness = cos/sin(aspect) sin(slope) and illumination = max(0, cos z cos s +
    sin z sin s cos(az - aspect)), the formulas the Earth Engine engine builds."""
    yy, xx = np.mgrid[0:48, 0:48]
    z = 4000.0 + 200.0 * np.sin(xx / 7.0) * np.cos(yy / 9.0) + 3.0 * xx
    gx, gy = gradients(z, 30.0)
    s = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, -gy)  # downslope direction, clockwise from north
    north, east = aspect_components(z, 30.0)
    np.testing.assert_allclose(north, np.cos(aspect) * np.sin(s), atol=1e-6)
    np.testing.assert_allclose(east, np.sin(aspect) * np.sin(s), atol=1e-6)
    zen = math.radians(90.0 - SUMMER_NOON_SUN_ELEVATION_DEG)
    az = math.radians(SUMMER_NOON_SUN_AZIMUTH_DEG)
    expected = np.clip(math.cos(zen) * np.cos(s) + math.sin(zen) * np.sin(s) * np.cos(az - aspect), 0, None)
    np.testing.assert_allclose(illumination(z, 30.0), expected, atol=1e-6)
    assert tuple(terrain_predictors(z, 30.0)) == TERRAIN_PREDICTORS


FINE = make_grid("EPSG:32647", (30, 0, 500000, 0, -30, 4200000), (120, 90))
COARSE = make_grid("EPSG:32647", (300, 0, 500000, 0, -300, 4200000), (12, 9))


def test_aggregate_is_the_block_mean_on_nested_grids():
    a = np.random.default_rng(1).normal(size=(90, 120))
    mean, std, cover = aggregate(a, FINE, COARSE)
    blocks = a.reshape(9, 10, 12, 10)
    np.testing.assert_allclose(mean[0], blocks.mean(axis=(1, 3)), atol=1e-9)
    np.testing.assert_allclose(std[0], blocks.std(axis=(1, 3)), atol=1e-6)
    np.testing.assert_allclose(cover, 1.0)


def test_aggregate_radiance_and_nan_and_coverage():
    t = np.full((90, 120), 10.0)
    t[:, :60] = 20.0  # left half of every block in column 5 is warmer
    mean, _, _ = aggregate(t, FINE, COARSE, radiance=True, with_std=False)
    expected = ((283.15**4 + 293.15**4) / 2) ** 0.25 - 273.15
    assert mean[0, 0, 0] == pytest.approx(20.0) and mean[0, 0, 11] == pytest.approx(10.0)
    a = np.ones((90, 120))
    a[:10, :5] = np.nan  # half of coarse pixel (0, 0) is missing
    mean, _, cover = aggregate(a, FINE, COARSE, with_std=False)
    assert mean[0, 0, 0] == pytest.approx(1.0) and cover[0, 0] == pytest.approx(0.5)
    assert coverage_fraction(np.isfinite(a), FINE, COARSE)[0, 1] == pytest.approx(1.0)
    t2 = np.full((90, 120), 10.0)
    t2[:, 0:5] = 20.0
    m2, _, _ = aggregate(t2, FINE, COARSE, radiance=True, with_std=False)
    assert m2[0, 0, 0] == pytest.approx(expected, abs=1e-9)


def test_interpolate_linear_field_is_exact_inside():
    yy, xx = np.mgrid[0:9, 0:12]
    coarse = (2.0 * xx + 3.0 * yy).astype(float)
    fine = interpolate(coarse, COARSE, FINE, "bilinear")
    # fine pixel centres at (i + .5) * 30 m -> coarse index (i + .5) / 10 - .5
    fx = (np.arange(120) + 0.5) / 10 - 0.5
    fy = (np.arange(90) + 0.5) / 10 - 0.5
    inner = (slice(10, 80), slice(10, 110))
    np.testing.assert_allclose(fine[inner], (2 * fx[None, :] + 3 * fy[:, None])[inner], atol=1e-6)


def test_fill_nearest():
    a = np.array([[1.0, np.nan, np.nan, 4.0]])
    assert fill_nearest(a).tolist() == [[1.0, 1.0, 4.0, 4.0]]


def test_ddt_by_hand_and_spread():
    lst = np.array([[-2.0], [3.0], [5.5], [0.0]])  # (composite, pixel)
    days = np.array([8, 8, 8, 6])
    assert ddt_from_composites(lst, days).tolist() == [8 * 3.0 + 8 * 5.5]
    assert ddt_spread(lst, days, np.array([1.0, 0.5, 0.5, 2.0])).tolist() == [8 * 0.5 + 8 * 0.5]


def test_ddt_is_monotone_in_temperature():
    rng = np.random.default_rng(3)
    t = rng.normal(2, 5, size=(27, 100))
    d0 = ddt_from_composites(t, np.full(27, 8))
    d1 = ddt_from_composites(t + np.abs(rng.normal(size=t.shape)), np.full(27, 8))
    assert np.all(d1 >= d0)


def test_fill_gaps_in_time():
    s = np.array([[np.nan, 1.0, np.nan], [2.0, np.nan, np.nan], [4.0, 3.0, np.nan]])
    filled, n = fill_gaps_in_time(s)
    assert filled[:, 0].tolist() == [2.0, 2.0, 4.0]  # nearest at the start
    assert filled[:, 1].tolist() == [1.0, 2.0, 3.0]  # linear inside
    assert np.isnan(filled[:, 2]).all() and n.tolist() == [2, 2, 0]


def test_cached_interpolation_matches_rasterio_across_crs():
    """Our cached bilinear/nearest sampling agrees with GDAL's warper (sinusoidal -> UTM)."""
    from rasterio.enums import Resampling

    from gee_alt.grid import MODIS_1KM, modis_grid
    from gee_alt.science.resample import _warp

    fine = make_grid("EPSG:32647", (30, 0, 507210, 0, -30, 4224630), (200, 150))
    coarse = modis_grid(fine, MODIS_1KM, margin_px=2)
    h, w = coarse["shape_2d"][1], coarse["shape_2d"][0]
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, h, w))
    ours = interpolate(a, coarse, fine, "bilinear")
    gdal = _warp(a, coarse, fine, Resampling.bilinear)
    # GDAL's warper uses an approximate transformer (error threshold 0.125 px), ours is exact
    np.testing.assert_allclose(ours, gdal, atol=5e-3)
    assert np.sqrt(np.mean((ours - gdal) ** 2)) < 1e-3
    near = interpolate(a, coarse, fine, "nearest")
    gdal_n = _warp(a, coarse, fine, Resampling.nearest)
    assert np.mean(near == gdal_n) > 0.99  # pixels at coarse edges may fall either way
    a[0, h // 2, w // 2] = np.nan  # a NaN neighbour is left out of the weights
    with_nan = interpolate(a, coarse, fine, "bilinear")
    assert np.isfinite(with_nan).all()


def test_local_engine_memory_guard_is_about_the_tile(monkeypatch):
    """Workers are capped by the tile's memory; a tile too large fails early with one line; the
    extent (the mission's full grid) does not."""
    from gee_alt.engines.local import engine
    from gee_alt.errors import GeeAltError

    monkeypatch.setattr(engine, "available_memory_bytes", lambda: 4 * 2**30)
    assert engine.workers_for_memory(512 * 512, 27, 4) == 3  # ~1.0 GB each in 0.8 x 4 GB
    assert engine.workers_for_memory(512 * 512, 27, 4, scene_pixels=3215 * 2065) == 3
    with pytest.raises(GeeAltError, match="smaller --tile-size"):
        engine.workers_for_memory(2048 * 2048, 27, 2)
    monkeypatch.setattr(engine, "available_memory_bytes", lambda: None)
    assert engine.workers_for_memory(2048 * 2048, 27, 2) == 2
