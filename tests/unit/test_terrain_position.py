"""Multi-scale terrain position (gee_alt.science.terrain): hand values on planes and a cone."""

import numpy as np
import pytest

from gee_alt.science.terrain import height_above_valley_floor_m, topographic_position_m


def test_tpi_of_a_plane_is_zero_inside_and_half_a_step_at_the_edge():
    cols = np.arange(12.0)
    dem = np.tile(7.0 * cols + 100.0, (9, 1))  # 7 m per pixel eastwards
    tpi = topographic_position_m(dem, 30.0, 60.0)  # 2 px half-width
    np.testing.assert_allclose(tpi[:, 2:-2], 0.0, atol=1e-4)
    # first column: the window holds columns 0..2 (outside the raster is no data), mean 7 m above col 0
    np.testing.assert_allclose(tpi[:, 0], -7.0, atol=1e-4)
    np.testing.assert_allclose(tpi[:, 1], -3.5, atol=1e-4)  # columns 0..3: mean 10.5 m vs 7 m


def test_tpi_at_the_bottom_of_a_cone():
    r, c = np.mgrid[-5:6, -5:6].astype(float)
    dem = 10.0 * np.hypot(r, c)  # a funnel, 10 m per pixel of distance from the centre
    tpi = topographic_position_m(dem, 30.0, 30.0)  # 3 x 3 window
    # centre 0 m; neighbours: 4 at 10 m, 4 at 10*sqrt(2) m
    assert tpi[5, 5] == pytest.approx(-(40.0 + 40.0 * np.sqrt(2.0)) / 9.0, abs=1e-4)


def test_nan_pixels_are_left_out_and_stay_nan():
    dem = np.tile(np.arange(7.0) * 5.0, (7, 1))
    dem[3, 4] = np.nan
    tpi = topographic_position_m(dem, 10.0, 10.0)
    assert np.isnan(tpi[3, 4])
    # pixel (3, 3): 8 valid pixels of the 3 x 3 window; columns 2, 3 (x3 each) and 4 (x2): mean 15.625 m
    assert tpi[3, 3] == pytest.approx(15.0 - (3 * 10 + 3 * 15 + 2 * 20) / 8.0, abs=1e-4)
    hv = height_above_valley_floor_m(dem, 10.0, 10.0)
    assert np.isnan(hv[3, 4]) and hv[3, 3] == pytest.approx(5.0)


def test_height_above_valley_floor_of_a_valley():
    cols = np.arange(15.0)
    dem = np.tile(3.0 * np.abs(cols - 7.0) + 500.0, (5, 1))  # a V valley, floor at column 7
    hv = height_above_valley_floor_m(dem, 30.0, 90.0)  # 3 px half-width
    expected = np.array([3.0 * min(abs(c - 7.0), 3.0) for c in cols])  # the floor is seen within 3 px
    np.testing.assert_allclose(hv, np.tile(expected, (5, 1)))


def test_a_window_with_a_halo_gets_the_whole_rasters_bits():
    rng = np.random.default_rng(3)
    dem = np.cumsum(np.cumsum(rng.normal(size=(80, 90)), 0), 1) + 1000.0
    dem[10:14, 50:60] = np.nan
    halo = 5  # >= the 150 m radius at 30 m
    whole_t = topographic_position_m(dem, 30.0, 150.0)
    whole_h = height_above_valley_floor_m(dem, 30.0, 150.0)
    r0, r1, c0, c1 = 20, 50, 40, 75
    win = dem[r0 - halo : r1 + halo, c0 - halo : c1 + halo]
    part_t = topographic_position_m(win, 30.0, 150.0)[halo:-halo, halo:-halo]
    part_h = height_above_valley_floor_m(win, 30.0, 150.0)[halo:-halo, halo:-halo]
    assert part_t.tobytes() == whole_t[r0:r1, c0:c1].tobytes()
    assert part_h.tobytes() == whole_h[r0:r1, c0:c1].tobytes()


def test_a_radius_must_be_positive():
    with pytest.raises(ValueError, match="> 0"):
        topographic_position_m(np.zeros((3, 3)), 30.0, 0.0)
