"""The Earth Engine daily-mean LST graphs (:mod:`gee_alt.engines.ee.daily_lst`), built offline
against the catalog and evaluated on tiny served arrays by :mod:`helpers.ee_eval` (numpy, the
server's per-pixel semantics; test data, never Earth Engine results), checked against hand
computations and the local engine's numpy definitions (:mod:`gee_alt.science.daily_lst`)."""

from __future__ import annotations

import numpy as np
import pytest

from gee_alt.engines.ee import daily_lst as eed
from gee_alt.science import daily_lst as sci
from helpers.ee_eval import as_array, evaluate

LAT = 38.0


def _looks(day, night, h_day, h_night):
    return {"lst_day_degc": day, "lst_night_degc": night, "day_view_h": h_day, "night_view_h": h_night}


def test_got01_daily_mean_recovers_a_known_diurnal_cycle(ee_offline):
    """Looks taken from T(t) = 12 + 9·s(t) (the GOT01 shape of day 200) at Terra-, Aqua- and
    off-nadir view times: the graph returns 12 °C (hand truth) and the local engine's number;
    no pair where the day look is masked, nor where both looks sit at the same shape value."""
    import ee

    doy, m_true, amp = 200.0, 12.0, 9.0
    h_day = np.array([10.5, 13.5, 11.8, 10.5, 10.5])
    h_night = np.array([22.5, 1.5, 0.2, 22.5, 10.5])  # last pixel: both looks at 10.5 h (no pair)
    t_day = m_true + amp * sci.diurnal_shape(h_day, doy, LAT)
    t_night = m_true + amp * sci.diurnal_shape(h_night, doy, LAT)
    t_day[3] = np.nan  # cloud by day
    served = {"w": _looks(t_day, t_night, h_day, h_night)}
    terms = eed.shape_terms(doy, LAT)
    got = as_array(evaluate(eed.pair_daily_mean(ee.Image("w"), terms), served))
    assert np.allclose(got[:3], m_true, atol=0.01)  # the closed form vs the 0.05 h table: < 0.01 K
    assert np.isnan(got[3]) and np.isnan(got[4])
    local = sci.daily_mean_from_pair(t_day, t_night, h_day, h_night, doy, LAT)
    np.testing.assert_allclose(got, local, atol=0.01, equal_nan=True)
    # the shape itself, on a fine grid of hours: the closed form is the local table
    hours = np.arange(0.0, 24.0, 0.37)
    shape = as_array(evaluate(eed.got01_shape(ee.Image("h"), terms), {"h": {"h": hours}}))
    np.testing.assert_allclose(shape, sci.diurnal_shape(hours, doy, LAT), atol=2e-3)


def test_naive_mean_would_be_biased_where_got01_is_not(ee_offline):
    """Why the model: with Terra's 10:30/22:30 looks (day + night)/2 misses the daily mean of the
    cycle by about a degree, the GOT01 mean does not."""
    import ee

    doy = 200.0
    h_day, h_night = np.array([10.5]), np.array([22.5])
    t_day = 12 + 9 * sci.diurnal_shape(h_day, doy, LAT)
    t_night = 12 + 9 * sci.diurnal_shape(h_night, doy, LAT)
    got = as_array(
        evaluate(
            eed.pair_daily_mean(ee.Image("w"), eed.shape_terms(doy, LAT)), {"w": _looks(t_day, t_night, h_day, h_night)}
        )
    )
    assert abs(got[0] - 12) < 0.01 and abs((t_day[0] + t_night[0]) / 2 - 12) > 0.5


def test_cold_outlier_screen_matches_the_local_engine(ee_offline):
    """A window 6 K below its neighbours (undetected cloud) is dropped, a 1 K dip and a warm
    spike are kept; every pixel as :func:`gee_alt.science.daily_lst.screen_cold_outliers`."""
    import ee

    rng = np.random.default_rng(3)
    base = np.linspace(2, 14, 9)[:, None] + rng.normal(0, 0.3, (9, 4))
    base[4, 0] -= 6.0  # cold outlier
    base[4, 1] -= 1.0  # small dip: kept
    base[6, 2] += 6.0  # warm: never screened
    base[2, 3] = np.nan  # a gap
    served = {f"w{k}": {"lst_degc": base[k]} for k in range(9)}
    out = eed.screen_cold_outliers([ee.Image(f"w{k}") for k in range(9)])
    got = np.stack([as_array(evaluate(o, served)) for o in out])
    assert np.isnan(got[4, 0]) and np.isfinite(got[4, 1]) and np.isfinite(got[6, 2])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(sci.screen_cold_outliers(base)))
    np.testing.assert_allclose(got, sci.screen_cold_outliers(base), equal_nan=True)


def test_aqua_enters_through_its_offset(ee_offline):
    """Aqua reads 1.5 K warmer than Terra: the offset is 1.5 K (hand), so windows where only Aqua
    saw the pixel give Terra's value and windows with both give Terra's; a pixel where the two
    never overlap takes offset 0 (Aqua as it is)."""
    import ee

    n = 7
    terra = np.tile(np.linspace(4, 10, n)[:, None], (1, 2))
    aqua = terra + 1.5
    terra[[1, 4], 0] = np.nan  # Terra missed these windows, Aqua saw them
    terra[:, 1] = np.nan  # pixel 1: never both
    served = {f"t{k}": {"lst_degc": terra[k]} for k in range(n)} | {f"a{k}": {"lst_degc": aqua[k]} for k in range(n)}
    t_img = [ee.Image(f"t{k}") for k in range(n)]
    a_img = [ee.Image(f"a{k}") for k in range(n)]
    offs = eed.aqua_offsets(t_img, a_img)
    off = np.stack([as_array(evaluate(o, served)) for o in offs])
    np.testing.assert_allclose(off[:, 0], 1.5)
    np.testing.assert_allclose(off[:, 1], 0.0)
    merged = np.stack(
        [as_array(evaluate(eed.terra_referenced(t, a, o), served)) for t, a, o in zip(t_img, a_img, offs, strict=True)]
    )
    np.testing.assert_allclose(merged[:, 0], np.linspace(4, 10, n))  # no step where Terra is missing
    np.testing.assert_allclose(merged[:, 1], aqua[:, 1])
    # the local definition pools every year; with one year it is the same number
    local = sci.aqua_offset([terra], [aqua])
    np.testing.assert_allclose(off, local)


@pytest.mark.parametrize("pool", [2])
def test_offset_is_a_median_over_neighbouring_windows(ee_offline, pool):
    """One window's Aqua − Terra difference is off by 4 K (a bad pair): the pooled median over
    ±2 windows ignores it (hand: the median of 0.5, 0.5, 4.5, 0.5, 0.5 is 0.5)."""
    import ee

    terra = np.zeros((5, 1))
    aqua = np.full((5, 1), 0.5)
    aqua[2] = 4.5
    served = {f"t{k}": {"lst_degc": terra[k]} for k in range(5)} | {f"a{k}": {"lst_degc": aqua[k]} for k in range(5)}
    offs = eed.aqua_offsets([ee.Image(f"t{k}") for k in range(5)], [ee.Image(f"a{k}") for k in range(5)], pool)
    assert float(as_array(evaluate(offs[2], served))[0]) == 0.5


def test_offset_falls_back_to_the_season_where_neighbours_never_overlap(ee_offline):
    """Terra and Aqua overlap only in windows 0 and 1 (offsets 1.0 and 2.0): windows 0-3 see them
    within ±2 windows, windows 4-7 take the season's median, 1.5 (hand), not 0 (raw Aqua)."""
    import ee

    terra = np.full((8, 1), np.nan)
    aqua = np.full((8, 1), 5.0)
    terra[0], terra[1] = 4.0, 3.0
    served = {f"t{k}": {"lst_degc": terra[k]} for k in range(8)} | {f"a{k}": {"lst_degc": aqua[k]} for k in range(8)}
    offs = eed.aqua_offsets([ee.Image(f"t{k}") for k in range(8)], [ee.Image(f"a{k}") for k in range(8)])
    got = [float(as_array(evaluate(o, served))[0]) for o in offs]
    assert got == [1.5, 1.5, 1.5, 2.0, 1.5, 1.5, 1.5, 1.5]
