"""The E of disturbed ground (issue 17 item 5): recovered on a synthetic site table with a known
larger E on disturbed site-years, its interval covers the truth, the choice is made by
leave-one-site-out, and the E switches exactly at the pixel's start year."""

from __future__ import annotations

import numpy as np

from gee_alt import downstream, runs
from gee_alt.io import read_raster
from gee_alt.science.disturbed_e import fit_disturbed_e, site_years_disturbed
from gee_alt.science.stefan import StefanCalibration
from helpers.export import YEARS, ddt_cube

E_GROUND, E_SPOIL = 0.030, 0.048  # m (degC day)^-1/2: undisturbed ground and spoil without its peat


def _site_table(seed: int, n_sites: int = 30, n_dist: int = 6, start: int = 2010, e_spread: float = 0.08):
    """Rows (site, year, DDT, ALT, disturbed) of sites 2000-2020; the first ``n_dist`` sites are dug in
    ``start``: from then on their ALT follows ``E_SPOIL`` (each site's own E spread ``e_spread``)."""
    rng = np.random.default_rng(seed)
    sid, yr, ddt, alt, starts = [], [], [], [], []
    for s in range(n_sites):
        e_g = E_GROUND * (1 + e_spread * rng.standard_normal())
        e_s = E_SPOIL * (1 + e_spread * rng.standard_normal())
        st = start if s < n_dist else 0
        for y in range(2000, 2021):
            d = rng.uniform(900, 1600)
            e = e_s if st and y >= st else e_g
            sid.append(f"s{s}")
            yr.append(y)
            ddt.append(d)
            alt.append(e * np.sqrt(d) * (1 + 0.04 * rng.standard_normal()))
            starts.append(st)
    dist = site_years_disturbed(np.array(starts), np.array(yr))
    return np.array(sid), np.array(yr), np.array(ddt), np.array(alt), dist


def test_site_years_disturbed_from_the_start_year_on():
    got = site_years_disturbed([2005, 2005, 2005, 0, np.nan], [2004, 2005, 2006, 2010, 2010])
    assert got.tolist() == [False, True, True, False, False]


def test_disturbed_e_recovered_within_its_interval_and_chosen_by_loo():
    sid, _yr, ddt, alt, dist = _site_table(1)
    cal = StefanCalibration(n_boot=200, random_state=0).fit(ddt, alt, sid, disturbed=dist)
    lo, hi = cal.e_ci_disturbed_
    assert lo <= E_SPOIL <= hi and hi - lo < 0.01
    assert abs(cal.e_disturbed_ - E_SPOIL) / E_SPOIL < 0.05
    # the undisturbed E is fitted on undisturbed site-years only: not pulled up by the spoil
    assert cal.e_ci95_[0] <= E_GROUND <= cal.e_ci95_[1]
    ch = cal.disturbance_choice_
    assert ch["used"] and ch["n_sites"] == 6 and ch["n_site_years"] == 6 * 11
    assert ch["loo_rmse_with_disturbed_e_m"] < ch["loo_rmse_one_e_m"]
    assert ch["loo_rmse_disturbed_rows_with_disturbed_e_m"] < 0.5 * ch["loo_rmse_disturbed_rows_one_e_m"]
    assert any("disturbed-ground E from 6 sites (< 15)" in w for w in cal.warnings_)
    # ALT of a disturbed pixel-year: E_spoil * sqrt(DDT); undisturbed: the pooled E
    got = cal.predict(np.array([1000.0, 1000.0]), disturbed=np.array([True, False]))
    np.testing.assert_allclose(got, [cal.e_disturbed_ * np.sqrt(1000.0), cal.e_ * np.sqrt(1000.0)])
    # round trip through calibration.json keeps the disturbed E, its interval and spread
    back = StefanCalibration.from_dict(cal.to_dict())
    assert back.e_disturbed_ == cal.e_disturbed_ and back.e_ci_disturbed_ == cal.e_ci_disturbed_
    np.testing.assert_allclose(
        back.predict_sd(np.full(2, 1000.0), np.full(2, 50.0), disturbed=np.array([True, False])),
        cal.predict_sd(np.full(2, 1000.0), np.full(2, 50.0), disturbed=np.array([True, False])),
    )


def test_disturbed_e_interval_covers_the_truth_in_95_percent_of_worlds():
    """Coverage of the t-interval over 300 simulated site tables (6 disturbed sites each): the
    nominal 95 % interval must cover the true spoil E in 90-99 % of them."""
    hits = 0
    n = 300
    for seed in range(n):
        sid, _yr, ddt, alt, dist = _site_table(100 + seed, n_sites=20, e_spread=0.12)
        x = np.sqrt(ddt)
        f = fit_disturbed_e(x, alt, np.zeros(x.size, int), sid, dist)
        # the truth of this world's spoil: the mean of its sites' spoil E is E_SPOIL in expectation
        hits += f["ci"][0] <= E_SPOIL <= f["ci"][1]
    assert 0.90 <= hits / n <= 0.99, hits / n


def test_no_disturbed_e_when_the_ground_is_not_changed():
    """Disturbed site-years with the same E as the rest: whatever LOO decides, a used disturbed E
    must equal the ground's (its interval covers E_GROUND)."""
    rng = np.random.default_rng(5)
    sid, _yr, ddt, _alt, dist = _site_table(5)
    alt = E_GROUND * np.sqrt(ddt) * (1 + 0.04 * rng.standard_normal(ddt.size))
    cal = StefanCalibration(n_boot=100).fit(ddt, alt, sid, disturbed=dist)
    ch = cal.disturbance_choice_
    assert {"loo_rmse_one_e_m", "loo_rmse_with_disturbed_e_m", "used"} <= set(ch)
    assert ch["ci95"][0] <= E_GROUND <= ch["ci95"][1]
    if not ch["used"]:
        assert not cal.uses_disturbed_e and any("disturbed-ground E not used" in w for w in cal.warnings_)


def test_stream_alt_switches_e_exactly_at_the_start_year(tmp_path):
    """A 7 x 5 raster over 2019-2021; two pixels dug in 2020, one in 2022 (after the run), the rest
    never: ALT = E_ground sqrt(DDT) before the start year, E_spoil sqrt(DDT) from it on."""
    sid, _yr, ddt, alt, dist = _site_table(2)
    cal = StefanCalibration(n_boot=100).fit(ddt, alt, sid, disturbed=dist)
    assert cal.uses_disturbed_e
    cube = ddt_cube()
    start = np.zeros((5, 7), "int32")
    start[1, 1] = start[3, 4] = 2020
    start[0, 6] = 2022
    maps = downstream.stream_alt(tmp_path, cube, cal, cal.to_dict(), None, stac=False, disturbance_start=start)
    d = cube["ddt_degc_days"].values
    for i, y in enumerate(YEARS):
        e = np.where((start > 0) & (start <= y), cal.e_disturbed_, cal.e_)
        want = e * np.sqrt(d[i])
        got = read_raster(runs.alt_path(tmp_path, y)).data[0]
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
    a19 = read_raster(runs.alt_path(tmp_path, 2019)).data[0]
    a20 = read_raster(runs.alt_path(tmp_path, 2020)).data[0]
    assert np.isclose(a19[1, 1], cal.e_ * np.sqrt(d[0, 1, 1]), rtol=1e-6)
    assert np.isclose(a20[1, 1], cal.e_disturbed_ * np.sqrt(d[1, 1, 1]), rtol=1e-6)
    src = read_raster(runs.e_source_path(tmp_path))
    assert src.data.shape[0] == 2
    band2 = src.data[1]
    assert band2[1, 1] == 2020 and band2[3, 4] == 2020 and band2[0, 6] == 2022
    assert np.isnan(band2[2, 2])
    np.testing.assert_array_equal(np.isfinite(maps.e_disturbed_from), start > 0)


def test_no_disturbed_site_year_is_said_and_changes_nothing():
    """A disturbance map whose disturbed pixels hold no site-year: the fit equals the fit without
    it, and calibration.json says why there is no disturbed-ground E."""
    sid, _yr, ddt, alt, dist = _site_table(3)
    keep = ~dist
    a = StefanCalibration(n_boot=100).fit(ddt[keep], alt[keep], sid[keep])
    b = StefanCalibration(n_boot=100).fit(ddt[keep], alt[keep], sid[keep], disturbed=np.zeros(keep.sum(), bool))
    assert a.e_ == b.e_ and a.e_ci95_ == b.e_ci95_ and not b.uses_disturbed_e
    d = b.to_dict()
    assert d["E_disturbed"] is None and d["disturbance_choice"]["n_site_years"] == 0
    assert any("no in-situ site-year on disturbed ground" in w for w in d["warnings"])


def test_site_years_on_the_map_are_disturbed_from_their_pixels_start_year():
    """Sites located on the grid by lon/lat: a site on a pixel dug in 2020 is disturbed in 2020 and
    2021, not 2019; a site on an undisturbed pixel never."""
    from gee_alt.grid import rowcol_to_lonlat
    from helpers.export import GRID

    start = np.zeros((5, 7), "int32")
    start[1, 1] = 2020
    lon, lat = rowcol_to_lonlat(GRID, np.array([1.5, 1.5, 1.5, 3.5]), np.array([1.5, 1.5, 1.5, 4.5]))
    table = type(
        "T", (), {"lon": lon, "lat": lat, "year": np.array([2019, 2020, 2021, 2021]), "__len__": lambda s: 4}
    )()
    got = downstream.disturbed_site_years(start, GRID, table)
    assert got.tolist() == [False, True, True, False]


def test_cross_validation_refits_the_disturbed_ground_e_in_every_fold():
    """Leave-one-site-out and spatial-block CV and the NNDM CV score the deployed model: each
    fold refits the E of disturbed ground, so a held-out spoil site is predicted with the spoil E
    of the other spoil sites (truth E_SPOIL), not with the undisturbed E."""
    from gee_alt.science.applicability import nndm_mse_e
    from gee_alt.science.stefan import block_cv, group_cv

    sid, _, ddt, alt, dist = _site_table(3, n_sites=24, n_dist=6)
    x = np.sqrt(ddt)
    with_d = group_cv(x, alt, sid, disturbed=dist, return_pred=True)
    one_e = group_cv(x, alt, sid, return_pred=True)
    # held-out disturbed rows: E implied by the prediction is the spoil E with the fold's refit
    e_with = with_d["pred_m"][dist] / x[dist]
    e_one = one_e["pred_m"][dist] / x[dist]
    assert abs(np.median(e_with) - E_SPOIL) < 0.004 and np.median(e_one) < E_SPOIL - 0.01
    assert with_d["rmse_m"] < 0.6 * one_e["rmse_m"]
    # undisturbed rows: the undisturbed E (fitted without the spoil years)
    assert abs(np.median(with_d["pred_m"][~dist] / x[~dist]) - E_GROUND) < 0.002
    # block CV: one block per site here (sites 10 km apart), the same folds as leave-one-site-out
    xm = np.array([int(s[1:]) * 10_000.0 for s in sid])
    blk = block_cv(x, alt, xm, np.zeros_like(xm), 5_000.0, site_ids=sid, disturbed=dist)
    assert blk["rmse_m"] == with_d["rmse_m"] and blk["n_blocks"] == 24
    # NNDM without exclusions beyond the site itself = leave-one-site-out, in E units
    excl = {s: {s} for s in np.unique(sid)}
    nn = nndm_mse_e(x, alt, sid, excl, disturbed=dist)
    ok = np.isfinite(with_d["pred_m"])
    assert np.isclose(nn["mse_e"], np.mean(((with_d["pred_m"][ok] - alt[ok]) / x[ok]) ** 2))


def test_a_held_out_spoil_site_is_predicted_when_the_rest_cannot_fit_a_spoil_e():
    """Two spoil sites, one with a single exact value: holding out the other leaves no fittable
    E of disturbed ground, so the fold predicts with its pooled E (as the deployed model would),
    never NaN (a NaN became null in calibration.json and broke the report)."""
    from gee_alt.science.disturbed_e import loo_disturbed_pred

    x = np.sqrt(np.array([900.0, 1600.0, 1000.0, 1200.0, 900.0, 1100.0, 1300.0, 1400.0]))
    e = np.array([0.03, 0.03, 0.03, 0.03, 0.07, 0.07, 0.07, 0.07])
    y = e * x
    sites = np.array(["a", "a", "b", "b", "s1", "s1", "s2", "s2"])
    code = np.array([0, 0, 0, 0, 0, 0, 0, 1])  # s2: one exact value, one censored
    dist = e > 0.05
    pred = loo_disturbed_pred(x, y, code, sites, dist)
    assert np.all(np.isfinite(pred[dist])) and np.all(np.isnan(pred[~dist]))
    # s1 held out: s2 cannot fit alone -> pooled E of a, b, s2 (exact rows a, b, s2[0]; one censored)
    assert 0.03 < pred[4] / x[4] < 0.07
    # s2 held out: s1 fits the spoil E exactly (partial pooling toward the pool with one group: B = 1)
    assert np.isclose(pred[6] / x[6], 0.07, rtol=1e-6)


def test_the_report_reads_a_null_prediction_as_missing():
    from gee_alt.viz.runview import insitu_pairs

    got = insitu_pairs({"insitu": [{"site_id": "a", "year": 2010, "alt_obs_m": 1.2, "alt_pred_m": None}]})
    assert np.isnan(got["pred"][0]) and got["obs"][0] == 1.2
