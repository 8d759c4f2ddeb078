"""One Terra-referenced LST record (issue 13, item 1 and 3): the diurnal model, the cold-outlier
screen, and the must-show — a record with a Terra/Aqua offset and no trend gives no DDT trend."""

from __future__ import annotations

import numpy as np
import pytest

from gee_alt.science.daily_lst import (
    aqua_offset,
    daily_mean_from_pair,
    diurnal_shape,
    screen_cold_outliers,
    terra_referenced,
)
from gee_alt.science.thaw import ddt_from_composites, fill_from_climatology
from gee_alt.science.trend import theil_sen_mk

LAT = 38.1


def test_diurnal_shape_is_zero_mean_unit_half_range_with_its_maximum_after_noon():
    h = np.arange(0, 24, 0.05)
    for doy in (15, 172):
        s = diurnal_shape(h, doy, LAT)
        assert abs(s.mean()) < 0.01
        assert s.max() - s.min() == pytest.approx(2.0, abs=0.01)
        assert 12.5 <= h[np.argmax(s)] <= 13.5
        # minimum near sunrise (winter later than summer)
    assert h[np.argmin(diurnal_shape(h, 15, LAT))] > h[np.argmin(diurnal_shape(h, 172, LAT))]


def test_daily_mean_from_a_pair_recovers_the_mean_of_a_cycle_of_that_shape():
    doy, m, a = 200.0, 7.3, 6.0
    for hd, hn in ((10.4, 22.6), (13.6, 1.4), (11.2, 23.1)):
        td = m + a * diurnal_shape(hd, doy, LAT)
        tn = m + a * diurnal_shape(hn, doy, LAT)
        assert float(daily_mean_from_pair(td, tn, hd, hn, doy, LAT)) == pytest.approx(m, abs=1e-6)
        assert abs((td + tn) / 2 - m) > 0.1  # the (day + night)/2 it replaces is off
    assert np.isnan(daily_mean_from_pair(np.nan, 1.0, 10.5, 22.5, doy, LAT))


def test_cold_outliers_are_dropped_and_ordinary_values_kept():
    rng = np.random.default_rng(3)
    t = np.linspace(0, 2 * np.pi, 46)
    s = (10 * np.sin(t))[:, None] + rng.normal(0, 0.5, (46, 50))
    bad = s.copy()
    bad[20, :25] -= 8.0  # undetected cloud: 8 K too cold
    out = screen_cold_outliers(bad)
    assert np.isnan(out[20, :25]).all()
    assert np.isfinite(out[:, 25:]).mean() > 0.98  # hardly any ordinary value lost
    warm = s.copy()
    warm[20] += 8.0  # warm spikes are not the screen's business
    assert np.isfinite(screen_cold_outliers(warm)[20]).all()


def _true_cycle(h, m, a):
    """An independent 'true' diurnal cycle (two harmonics, maximum ~14 h): not the engine's shape."""
    x = 2 * np.pi * (np.asarray(h) - 14.0) / 24.0
    return m + a * (np.cos(x) + 0.3 * np.cos(2 * x))


def _synthetic_record(n_pix=2000, seed=11, warming_k_per_yr=0.0, with_truth=False):
    """25 years of 46 windows of Terra (all years) and Aqua (2003 on) day/night looks with
    jittered view times, 35 % of looks cloudy, an extra +0.8 K Aqua day bias, and a warming of
    ``warming_k_per_yr`` (none by default) in every window. ``with_truth``: also the true daily
    means ``(year, window, pixel)`` (every window, no cloud)."""
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2025)
    doy = 4.0 + 8.0 * np.arange(46)
    seasonal = -6.0 + 14.0 * np.sin(2 * np.pi * (doy - 105.0) / 365.25)
    amp = 7.0 + 3.0 * np.sin(2 * np.pi * (doy - 105.0) / 365.25)
    hours = {"terra": (10.5, 22.5), "aqua": (13.5, 1.5)}
    out, truth = [], []
    for y in years:
        m = seasonal[:, None] + rng.normal(0, 2.0, (46, n_pix))  # weather, independent years
        m += warming_k_per_yr * (y - 2000)
        truth.append(m)
        rec = {}
        for sensor, (hd0, hn0) in hours.items():
            if sensor == "aqua" and y < 2003:
                rec[sensor] = [np.full((46, n_pix), np.nan)] * 4
                continue
            hd = hd0 + rng.uniform(-0.7, 0.7, (46, 1))
            hn = hn0 + rng.uniform(-0.7, 0.7, (46, 1))
            td = _true_cycle(hd, m, amp[:, None]) + rng.normal(0, 0.6, m.shape) + (0.8 if sensor == "aqua" else 0)
            tn = _true_cycle(hn, m, amp[:, None]) + rng.normal(0, 0.6, m.shape)
            td[rng.uniform(size=m.shape) < 0.35] = np.nan
            tn[rng.uniform(size=m.shape) < 0.35] = np.nan
            rec[sensor] = [td, tn, np.broadcast_to(hd, m.shape), np.broadcast_to(hn, m.shape)]
        out.append(rec)
    if with_truth:
        return years, doy, out, np.stack(truth)
    return years, doy, out


def _ddt_of_record(record, season):
    """DDT per year of a ``(year, window, pixel)`` record as the local engine makes it: gaps
    filled from the pixel's multi-year climatology plus the year's anomaly."""
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            clim = np.nanmedian(record, axis=0)[season]
    return np.stack(
        [
            ddt_from_composites(fill_from_climatology(r[season], clim)[0], np.full(int(season.sum()), 8.0))
            for r in record
        ]
    )


def test_terra_aqua_offset_without_trend_gives_no_ddt_trend():
    """Must-show (issue 13): the Terra-referenced record has no trend and MK false positives
    <= 6 % over 2000 pixels; the naive (day + night)/2 mix of sensors steps at 2003 and fails."""
    years, doy, recs = _synthetic_record()
    season = (doy >= 60) & (doy <= 334)
    d3 = doy[:, None]
    terra, aqua = [], []
    for rec in recs:
        terra.append(screen_cold_outliers(daily_mean_from_pair(*rec["terra"], d3, LAT)))
        aqua.append(screen_cold_outliers(daily_mean_from_pair(*rec["aqua"], d3, LAT)))
    off = aqua_offset(terra, aqua)
    ours = _ddt_of_record(np.stack([terra_referenced(t, a, off) for t, a in zip(terra, aqua, strict=True)]), season)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            naive_rec = np.stack(
                [np.nanmean(np.stack([(r[s][0] + r[s][1]) / 2 for s in ("terra", "aqua")]), axis=0) for r in recs]
            )
    naive = _ddt_of_record(naive_rec, season)
    res = {}
    for name, ddt in (("ours", ours), ("naive", naive)):
        tr = theil_sen_mk(ddt, years, serial="none")
        slope = tr["slope"].astype(float)
        res[name] = {
            "fp": float(np.mean(tr["p_value"] < 0.05)),
            "mean_slope": slope.mean(),
            "se": slope.std(ddof=1) / np.sqrt(slope.size),
        }
    assert res["ours"]["fp"] <= 0.06
    assert abs(res["ours"]["mean_slope"]) <= 2.5 * res["ours"]["se"]
    # the record it replaces: the Aqua-era step reads as a trend (so this test can fail)
    assert res["naive"]["fp"] > 0.15
    assert res["naive"]["mean_slope"] > 5 * res["naive"]["se"]


def _terra_referenced_record(recs, doy):
    """The ``(year, window, pixel)`` Terra-referenced daily means of a synthetic record: each
    sensor's pair through the diurnal model and the cold screen, Aqua offset over all years."""
    d3 = doy[:, None]
    terra = [screen_cold_outliers(daily_mean_from_pair(*r["terra"], d3, LAT)) for r in recs]
    aqua = [screen_cold_outliers(daily_mean_from_pair(*r["aqua"], d3, LAT)) for r in recs]
    off = aqua_offset(terra, aqua)
    return np.stack([terra_referenced(t, a, off) for t, a in zip(terra, aqua, strict=True)])


def _filled(record, sel):
    """The windows ``sel`` of a ``(year, window, pixel)`` record with gaps filled as the local
    engine fills them (climatology of all years + the year's anomaly)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        clim = np.nanmedian(record, axis=0)[sel]
    return np.stack([fill_from_climatology(r[sel], clim)[0] for r in record])


def _mean_slope(values, years) -> float:
    """Mean over pixels of the Theil-Sen slope (units/yr) of ``(year, pixel)`` values."""
    return float(np.mean(theil_sen_mk(values, years)["slope"]))


def test_a_known_warming_survives_the_record_chain():
    """Issue 13 (drift): a record that warms by 0.05 K/yr in every window keeps its warming
    through the diurnal model, the cold screen, the Aqua offset fitted over all years (a
    difference of sensors: a warming both see cannot enter it) and the climatology-anomaly gap
    fill (35-60 % of windows). Against the true daily means (every window, no cloud; mean
    Theil-Sen slope over 600 pixels): the thaw- and cold-window mean LST warm within 6 % of the
    truth; DDT and DDF trend within 5 % of those of the truth shifted by the chain's own mean
    level error per window (the diurnal shape differs from this cycle's, about -1.4 K: a level error
    changes how many windows are above 0 °C, hence how much a warming adds to DDT, and is what
    the calibrated E absorbs; it is not a loss of trend). A fill from the climatology alone (no
    anomaly) pulls the years toward the multi-year mean and fails the same check."""
    from gee_alt.science.thaw import ddf_from_composites, fill_gaps_in_time

    years, doy, recs, truth = _synthetic_record(n_pix=600, seed=5, warming_k_per_yr=0.05, with_truth=True)
    thaw = (doy >= 60) & (doy <= 334)
    record = _terra_referenced_record(recs, doy)
    assert np.isnan(record).mean() > 0.3  # the fill has real work to do
    for sel in (thaw, ~thaw):
        want = _mean_slope(truth[:, sel].mean(axis=1), years)
        assert want == pytest.approx(0.05, abs=0.005)
        assert _mean_slope(_filled(record, sel).mean(axis=1), years) == pytest.approx(want, rel=0.06)
    level = truth + np.nanmean(record - truth, axis=(0, 2))[None, :, None]
    days = {"ddt": np.full(int(thaw.sum()), 8.0), "ddf": np.full(int((~thaw).sum()), 8.0)}
    for key, sel, index in (("ddt", thaw, ddt_from_composites), ("ddf", ~thaw, ddf_from_composites)):
        want = _mean_slope(np.stack([index(t[sel], days[key]) for t in level]), years)
        assert abs(want) > 3.0  # degC day / yr: the warming is there to lose (DDT up, DDF down)
        got = _mean_slope(np.stack([index(f, days[key]) for f in _filled(record, sel)]), years)
        assert got == pytest.approx(want, rel=0.05), key
    # the counterfactual: gaps from the climatology alone lose about the share of gaps of the trend
    want = _mean_slope(np.stack([ddt_from_composites(t[thaw], days["ddt"]) for t in level]), years)
    clim = np.nanmedian(record, axis=0)[thaw]
    clim_only = [fill_gaps_in_time(np.where(np.isfinite(r[thaw]), r[thaw], clim))[0] for r in record]
    assert _mean_slope(np.stack([ddt_from_composites(f, days["ddt"]) for f in clim_only]), years) < 0.85 * want
