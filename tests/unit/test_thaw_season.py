"""Thaw-season physics of the local engine: sparse seasons, climatology-anomaly gap filling,
freezing index and frost number (pure functions of gee_alt.science.thaw)."""

import datetime as dt

import numpy as np

from gee_alt.science.thaw import (
    before_split,
    ddf_from_composites,
    ddt_from_composites,
    enough_valid,
    fill_from_climatology,
    frost_number,
    in_season,
)

N_SEASON = 27
DAYS = np.full(N_SEASON, 8.0)


def _season_curve(n_pix: int, rng) -> np.ndarray:
    """(composite, pixel) seasonal LST course (°C): cold ends, warm mid-summer, pixel offsets."""
    t = np.arange(N_SEASON)[:, None]
    offset = rng.uniform(-3.0, 3.0, n_pix)[None]
    return -9.0 + 20.0 * np.sin(np.pi * (t + 0.5) / N_SEASON) + offset


def _world(seed: int = 3, n_pix: int = 400, n_years: int = 12):
    rng = np.random.default_rng(seed)
    base = _season_curve(n_pix, rng)
    years = base[None] + rng.normal(0, 1.2, (n_years, 1, n_pix)) + rng.normal(0, 1.0, (n_years, N_SEASON, n_pix))
    return years


def test_three_valid_composites_of_27_give_no_ddt_and_twenty_give_ddt_within_5_percent():
    years = _world()
    truth_year = years[-1]
    truth_ddt = ddt_from_composites(truth_year, DAYS)
    climatology = np.median(years[:-1], axis=0)  # the other years, fully observed

    # 3 valid mid-summer composites: the EE rule (n_obs >= 0.5 x windows) masks the pixel
    three = np.full_like(truth_year, np.nan)
    three[12:15] = truth_year[12:15]
    _, n_valid = fill_from_climatology(three, climatology)
    assert not enough_valid(n_valid, N_SEASON, 0.5).any()

    # 20 valid: both season ends missing (3 at the start, 2 at the end) and two mid-season gaps
    twenty = truth_year.copy()
    twenty[[0, 1, 2, 9, 16, 25, 26]] = np.nan
    filled, n_valid = fill_from_climatology(twenty, climatology)
    assert (n_valid == 20).all() and enough_valid(n_valid, N_SEASON, 0.5).all()
    ddt = ddt_from_composites(filled, DAYS)
    rel = (ddt - truth_ddt) / truth_ddt
    # the 7 missing composites' own weather (1 °C sd) is unknowable: single pixels scatter, the
    # fill is unbiased and 95 % of the pixels are within 5 %
    assert abs(rel.mean()) < 0.01, rel.mean()
    assert np.quantile(np.abs(rel), 0.95) < 0.05, np.quantile(np.abs(rel), 0.95)
    assert np.abs(rel).max() < 0.08


def test_climatology_anomaly_beats_nearest_value_at_the_season_ends():
    """Ends filled with the nearest value carry mid-season warmth outwards; the anomaly does not."""
    years = _world(seed=5)
    truth_year = years[-1]
    truth_ddt = ddt_from_composites(truth_year, DAYS)
    sparse = np.full_like(truth_year, np.nan)
    sparse[8:19] = truth_year[8:19]  # only mid-summer seen
    clim_filled, _ = fill_from_climatology(sparse, np.median(years[:-1], axis=0))
    near_filled, _ = fill_from_climatology(sparse, None)
    err_clim = np.abs(ddt_from_composites(clim_filled, DAYS) / truth_ddt - 1).mean()
    err_near = np.abs(ddt_from_composites(near_filled, DAYS) / truth_ddt - 1).mean()
    assert err_clim < 0.05 < err_near


def test_fill_from_climatology_keeps_valid_values_and_leaves_unseen_pixels_nan():
    clim = np.linspace(-5, 5, 6)[:, None] * np.ones((1, 3))
    s = clim + 2.0
    s[[0, 5], 0] = np.nan
    s[:, 2] = np.nan
    out, n = fill_from_climatology(s, clim)
    np.testing.assert_allclose(out[:, 0], clim[:, 0] + 2.0)  # ends: climatology + the year's anomaly
    np.testing.assert_allclose(out[:, 1], s[:, 1])
    assert np.isnan(out[:, 2]).all() and list(n) == [4, 6, 0]


def test_frost_number_and_freezing_degree_days():
    lst = np.array([[-10.0], [-2.0], [3.0], [0.0]])
    days = np.array([8, 8, 8, 8.0])
    np.testing.assert_allclose(ddf_from_composites(lst, days), [96.0])
    np.testing.assert_allclose(ddt_from_composites(lst, days), [24.0])
    f = frost_number(np.array([400.0, 100.0, 0.0, 0.0, np.nan]), np.array([100.0, 400.0, 900.0, 0.0, 5.0]))
    np.testing.assert_allclose(f[:3], [2 / 3, 1 / 3, 0.0])
    assert np.isnan(f[3]) and np.isnan(f[4])
    # equal indices: F = 0.5, the permafrost threshold
    assert frost_number(np.array([1234.0]), np.array([1234.0]))[0] == 0.5


def test_season_and_freezing_halves_from_whole_year_composites():
    starts = [dt.date(2010, 1, 1) + dt.timedelta(days=8 * k) for k in range(46)]
    days = np.array([8.0] * 45 + [5.0])
    season = in_season(starts, days, "03-01", "11-30")
    mids = [s + dt.timedelta(days=3.5) for s in starts]
    assert all(season[k] == (dt.date(2010, 3, 1) <= mids[k] <= dt.date(2010, 11, 30)) for k in range(46))
    spring = before_split(starts, days)
    assert spring[:22].all() and not spring[23:].any()
