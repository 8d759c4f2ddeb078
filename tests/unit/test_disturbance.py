"""BACI disturbance analysis: a simulated world with a known step effect, CI coverage, input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gee_alt.errors import GeeAltError
from gee_alt.grid import make_grid
from gee_alt.science.disturbance import BaciDesign, baci_effect, gls_ar1, read_disturbance

YEARS = list(range(2000, 2020))


def _world(effect_m: float, seed: int, rho: float = 0.4):
    """80 x 80 px at 30 m: ALT = 1.0 m + 0.002 m/m of elevation offset + a common AR(1) yearly signal
    (weather, shared by all pixels) + pixel noise; a 12 x 12 px disturbance opened in 2008 adds
    ``effect_m`` from 2010 on and a region-wide north/south contrast is absorbed by the matching."""
    rng = np.random.default_rng(seed)
    n = 80
    yy, xx = np.mgrid[0:n, 0:n]
    dem = 4000.0 + 3.0 * yy + rng.normal(0, 5, (n, n))
    start = np.zeros((n, n), int)
    start[34:46, 34:46] = 2008
    w = np.zeros(len(YEARS))
    for t in range(1, len(YEARS)):
        w[t] = rho * w[t - 1] + rng.normal(0, 0.05)
    # the impact area's own weather anomaly (spatially correlated within it): a year-to-year
    # impact-minus-control noise the CI has to carry
    local = np.zeros(len(YEARS))
    for t in range(1, len(YEARS)):
        local[t] = rho * local[t - 1] + rng.normal(0, 0.04)
    alt = np.empty((len(YEARS), n, n))
    for t, y in enumerate(YEARS):
        a = 1.0 + 0.002 * (dem - 4000.0) + w[t] + rng.normal(0, 0.05, (n, n))
        a[start > 0] += local[t] + (effect_m if y >= 2010 else 0.0)
        alt[t] = a
    return alt, start, dem


def test_known_effect_is_recovered_and_its_ci_covers():
    design = BaciDesign(buffer_m=300.0, elev_band_m=30.0, min_controls=20)
    hits, est = 0, []
    for seed in range(60):
        alt, start, dem = _world(0.5, seed)
        r = baci_effect(alt, YEARS, start, dem, 30.0, design=design, before_last=2007, after_first=2010)
        lo, hi = r["effect_alt_ci95_m"]
        hits += lo <= 0.5 <= hi
        est.append(r["effect_alt_m"])
    assert np.mean(est) == pytest.approx(0.5, abs=0.02)
    assert 0.85 <= hits / 60 <= 1.0  # nominal 95 % (measured 92.5 % over 200 worlds, 87 % with no effect)


def test_periods_default_from_the_start_years_and_nan_pixels_drop_out():
    alt, start, dem = _world(0.3, 1)
    alt[12:, 34:40, 34:40] = np.nan  # half the impact area loses its permafrost (no ALT) later on
    r = baci_effect(alt, YEARS, start, dem, 30.0, design=BaciDesign(buffer_m=300.0, elev_band_m=30.0))
    assert r["before"] == list(range(2000, 2008)) and r["after"] == list(range(2009, 2020))
    assert r["impact_pixels"] == 144 and r["impact_pixels_used"] == 144 - 36
    assert r["effect_alt_m"] == pytest.approx(0.3, abs=0.1)


def test_maps_read_a_year_at_a_time_give_the_in_memory_result():
    """The BACI reads its yearly maps one year at a time (issue 12: no year x pixel stack held):
    maps served year by year (with NaN holes) give exactly the result of the whole array, and
    no year is asked for more than twice (one pass for the masks, one for the values)."""
    from gee_alt.io import YearMaps

    alt, start, dem = _world(0.3, 2)
    alt[12:, 34:40, 34:40] = np.nan
    asked = []

    def year(i):
        asked.append(i)
        return alt[i].astype("float32")

    design = BaciDesign(buffer_m=300.0, elev_band_m=30.0)
    ref = baci_effect(alt.astype("float32"), YEARS, start, dem, 30.0, design=design)
    got = baci_effect(YearMaps(year, len(YEARS), alt.shape[1:]), YEARS, start, dem, 30.0, design=design)
    assert got == ref and ref["effect_alt_m"] == pytest.approx(0.3, abs=0.1)
    assert max(asked.count(i) for i in range(len(YEARS))) <= 2


def test_gls_ar1_with_rho_zero_is_ordinary_least_squares():
    t = np.arange(10.0)
    d = np.array([0.1, 0.3, 0.2, 0.5, 0.4, 1.1, 1.3, 1.0, 1.2, 1.4])
    x = np.column_stack([np.ones(10), (t >= 5).astype(float)])
    r = gls_ar1(t, d, x, rho_max=0.0)
    # by hand: the difference of the period means, se from the pooled residual variance
    m0, m1 = d[:5].mean(), d[5:].mean()
    s2 = (np.sum((d[:5] - m0) ** 2) + np.sum((d[5:] - m1) ** 2)) / 8
    assert r["beta"][1] == pytest.approx(m1 - m0) and r["cov"][1, 1] == pytest.approx(s2 * (1 / 5 + 1 / 5))


GRID = make_grid("EPSG:32647", (30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0), (40, 40))


def _lonlat(x, y):
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:32647", "EPSG:4326", always_xy=True).transform(x, y)


def test_geojson_features_carry_start_and_restoration_years(tmp_path):
    corners = [_lonlat(500000 + 30 * c, 4000000 - 30 * r) for c, r in ((10, 10), (20, 10), (20, 20), (10, 20))]
    ring = [list(p) for p in corners] + [list(corners[0])]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"start_year": 2005, "restoration_year": 2015},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ],
    }
    p = tmp_path / "mines.geojson"
    p.write_text(json.dumps(doc))
    start, restore = read_disturbance(p, GRID)
    assert (start == 2005).sum() == 100 and set(np.unique(start)) == {0, 2005}  # 10 x 10 pixel centres
    assert np.array_equal(restore > 0, start > 0) and restore.max() == 2015
    doc["features"][0]["properties"] = {"restoration_year": 2015}
    p.write_text(json.dumps(doc))
    with pytest.raises(GeeAltError, match="start_year"):
        read_disturbance(p, GRID)
    p.write_text("{not json")
    with pytest.raises(GeeAltError, match="not valid JSON"):
        read_disturbance(p, GRID)


def test_permafrost_presence_thaw_index_and_alt_where_permafrost_persists():
    """A disturbance that thaws out the permafrost of 3/4 of its pixels from 2010 (presence effect
    −0.75), raises the thaw index by 300 °C·day everywhere on it, and deepens ALT by 0.4 m where
    permafrost persists; half of the controls have no permafrost in some years (ALT NaN there):
    the ALT design must compare only controls with ALT in every year, the presence design all."""
    from gee_alt.science.disturbance import baci_quantity

    alt, start, dem = _world(0.4, 5)
    rng = np.random.default_rng(5)
    n = alt.shape[1]
    lost = np.zeros((n, n), bool)
    lost[34:46, 34:43] = True  # 9 of 12 columns of the impact square
    after = np.array([y >= 2010 for y in YEARS])
    alt[after[:, None, None] & lost[None]] = np.nan
    # controls that lose permafrost in random years (and would bias a mean over finite pixels:
    # their ALT is high the years they still have it)
    flicker = (np.arange(n)[None, :] % 2 == 0) & (start == 0)
    gone = rng.random((len(YEARS), n, n)) < 0.3
    alt = np.where(flicker[None] & gone, np.nan, np.where(flicker[None], alt + 0.5, alt))
    pf = np.isfinite(alt).astype(float)
    ddt = (
        1500.0
        + 0.5 * (dem - 4000.0)[None]
        + 40 * rng.standard_normal((len(YEARS), 1, 1))
        + rng.normal(0, 20, alt.shape)
    )
    ddt[after[:, None, None] & (start > 0)[None]] += 300.0
    design = BaciDesign(buffer_m=300.0, elev_band_m=30.0, min_controls=20)
    kw = dict(design=design, before_last=2007, after_first=2010)
    p = baci_quantity(pf, YEARS, start, dem, 30.0, **kw)
    # presence: control presence drifts by nothing on average, the impact loses 108/144 pixels
    assert p["effect"] == pytest.approx(-108 / 144, abs=0.03)
    assert p["effect_ci95"][0] <= -108 / 144 <= p["effect_ci95"][1]
    d = baci_quantity(ddt, YEARS, start, dem, 30.0, **kw)
    assert d["effect_ci95"][0] <= 300.0 <= d["effect_ci95"][1] and d["effect"] == pytest.approx(300.0, abs=30)
    a = baci_effect(alt, YEARS, start, dem, 30.0, **kw)
    assert a["impact_pixels_used"] == 144 - 108
    # the controls used have ALT in every year: none of the flickering columns
    assert a["control_pixels"] <= int(((start == 0) & ~flicker).sum())
    assert a["effect_alt_m"] == pytest.approx(0.4, abs=0.1)


def test_stefan_depth_uses_the_class_e_where_deployed_and_ignores_permafrost():
    from gee_alt.disturbance_run import stefan_depth_m

    ddt = np.array([[[400.0, 900.0], [1600.0, -5.0]]])
    lc = np.array([[1.0, 2.0], [2.0, np.nan]])
    d = stefan_depth_m(ddt, {"E": 0.03, "E_by_class": {"2": 0.05}}, lc)
    # by hand: 0.03*20, 0.05*30, 0.05*40, 0 (no thaw)
    assert np.allclose(d[0], [[0.6, 1.5], [2.0, 0.0]])
    assert stefan_depth_m(ddt, None, lc) is None


def test_stefan_depth_switches_to_the_disturbed_ground_e_from_the_start_year():
    """E·√DDT as the ALT model deploys it: the E of disturbed ground on a pixel from its
    disturbance start year on, the class/pooled E before and elsewhere."""
    from gee_alt.disturbance_run import stefan_depth_m

    ddt = np.full((3, 1, 2), 900.0)  # √ = 30
    start = np.array([[2011, 0]])
    cal = {"E": 0.03, "E_by_class": {}, "E_disturbed": 0.07}
    d = stefan_depth_m(ddt, cal, None, years=[2010, 2011, 2012], disturbance_start=start)
    # by hand: pixel 0 0.9 m in 2010, 0.07*30 = 2.1 m from 2011; pixel 1 (never disturbed) 0.9 m
    assert np.allclose(d[:, 0, 0], [0.9, 2.1, 2.1]) and np.allclose(d[:, 0, 1], 0.9)
    # no E of disturbed ground in the calibration (not chosen): the start years change nothing
    d0 = stefan_depth_m(ddt, {**cal, "E_disturbed": None}, None, years=[2010, 2011, 2012], disturbance_start=start)
    assert np.allclose(d0, 0.9)


def test_ci_carries_the_uncertainty_of_the_disturbed_ground_e():
    """ALT maps whose impact pixels after the disturbance use an E of disturbed ground estimated
    with a 15 % relative error (k_hat ~ N(2, 0.3^2) times the undisturbed ALT, truth k = 2): with
    the E's relative sd passed in, the CI covers the effect measured by the same BACI on the true
    maps in >= 85 % of 80 worlds; without it, the CI is far too narrow (< 50 %)."""
    design = BaciDesign(buffer_m=300.0, elev_band_m=30.0, min_controls=20)
    kw = dict(design=design, before_last=2007, after_first=2010)
    rng = np.random.default_rng(11)
    hits_with = hits_without = 0
    n = 80
    for seed in range(n):
        base, start, dem = _world(0.0, seed)
        after = (np.array(YEARS)[:, None, None] >= 2010) & (start > 0)[None]
        truth = np.where(after, 2.0 * base, base)
        k_hat = 2.0 + 0.3 * rng.standard_normal()
        est = np.where(after, k_hat * base, base)
        ref = baci_effect(truth, YEARS, start, dem, 30.0, **kw)["effect_alt_m"]
        lo, hi = baci_effect(est, YEARS, start, dem, 30.0, rel_disturbed_e_sd=0.3 / k_hat, **kw)["effect_alt_ci95_m"]
        hits_with += lo <= ref <= hi
        lo, hi = baci_effect(est, YEARS, start, dem, 30.0, **kw)["effect_alt_ci95_m"]
        hits_without += lo <= ref <= hi
    assert hits_with / n >= 0.85 and hits_without / n < 0.5, (hits_with, hits_without)


def _flickering_world(seed: int):
    """The world of :func:`_world` with ALT lost on part of the impact square after 2010 and on
    every other control column in random years (NaN also in the transition years), its presence
    and a thaw index: three quantities whose panels differ."""
    alt, start, dem = _world(0.4, seed)
    rng = np.random.default_rng(seed)
    n = alt.shape[1]
    after = np.array([y >= 2010 for y in YEARS])
    alt[after[:, None, None] & (np.arange(n)[None, None, :] < 40) & (start > 0)[None]] = np.nan
    flicker = (np.arange(n)[None, :] % 2 == 0) & (start == 0)
    alt = np.where(flicker[None] & (rng.random(alt.shape) < 0.2), np.nan, alt)
    ddt = 1500.0 + 0.5 * (dem - 4000.0)[None] + rng.normal(0, 20, alt.shape)
    return {"alt": alt, "pf": np.isfinite(alt).astype(float), "ddt": ddt}, start, dem


def test_several_quantities_and_masks_in_one_pass_give_the_single_results():
    """:func:`baci_quantities` on three quantities and three impact masks (every impact pixel,
    a part, none with ALT) gives exactly each :func:`baci_quantity` call's result or error, reading
    each year of each quantity at most twice in all."""
    from gee_alt.io import YearMaps
    from gee_alt.science.disturbance import BaciQuantity, baci_quantities, baci_quantity, control_strata

    maps, start, dem = _flickering_world(3)
    design = BaciDesign(buffer_m=300.0, elev_band_m=30.0, min_controls=20)
    kw = dict(before_last=2007, after_first=2010)
    part = np.zeros(start.shape, bool)
    part[34:40, :] = True
    no_alt = np.zeros(start.shape, bool)
    no_alt[34:46, 34:40] = True  # ALT lost after 2010 there: an error on ALT, results on the rest
    masks = [None, part, no_alt]
    asked = {k: [] for k in maps}

    def served(k):
        return YearMaps(lambda i: asked[k].append(i) or maps[k][i], len(YEARS), start.shape)

    qs = {k: BaciQuantity(served(k), f"the {k}", rel_scale_sd=0.1) for k in maps}
    strata = control_strata(start > 0, dem, None, 30.0, design)
    got = baci_quantities(qs, YEARS, start, strata, masks, **kw)
    for k in maps:
        assert max(asked[k].count(i) for i in range(len(YEARS))) <= 2
        for mask, g in zip(masks, got[k], strict=True):
            one = dict(design=design, impact_mask=mask, what=f"the {k}", rel_scale_sd=0.1, **kw)
            try:
                ref = baci_quantity(maps[k], YEARS, start, dem, 30.0, **one)
            except GeeAltError as exc:
                assert isinstance(g, GeeAltError) and str(g) == str(exc)
            else:
                assert g == ref
    assert isinstance(got["alt"][2], GeeAltError) and not isinstance(got["pf"][2], GeeAltError)


def test_matching_and_control_means_are_those_of_the_stratum_keys():
    """The strata as dense codes give the levels and the per-stratum control means of the
    stratum keys themselves (a stratum count per key; the mean of each stratum's control values
    summed in pixel order), bit for bit."""
    from gee_alt.science.disturbance import _stratum_keys, control_strata, match_controls

    maps, start, dem = _flickering_world(4)
    lc = np.where(np.arange(80)[None, :] < 50, 1.0, 2.0) * np.ones((80, 1))
    design = BaciDesign(buffer_m=300.0, elev_band_m=20.0, min_controls=25)
    panel = np.isfinite(maps["alt"][[y != 2008 for y in YEARS]]).all(axis=0)  # before <= 2007, after >= 2009
    impact = (start > 0) & panel
    m = match_controls(impact, start > 0, dem, lc, 30.0, design, control_valid=panel)
    keys = _stratum_keys(dem, lc, 30.0, design)
    level = np.full(start.shape, -1)
    for li, key in enumerate(keys):  # the stratum counts per key value, pixel by pixel
        counts = dict(zip(*np.unique(key[m["control"]], return_counts=True), strict=True))
        for y, x in zip(*np.nonzero(impact & (level < 0)), strict=True):
            if counts.get(key[y, x], 0) >= design.min_controls:
                level[y, x] = li
    assert np.array_equal(m["level"], level) and len(set(m["level_counts"].values())) > 1
    strata = control_strata(start > 0, dem, lc, 30.0, design)
    r = baci_effect(maps["alt"], YEARS, start, dem, 30.0, landcover=lc, design=design, strata=strata)
    imp = np.flatnonzero((impact & (level >= 0)).ravel())
    ctrl = np.flatnonzero(m["control"].ravel())
    counter = np.empty((len(YEARS), imp.size))
    for li, key in enumerate(keys):
        sel = level.ravel()[imp] == li
        uniq, inv = np.unique(key.ravel()[ctrl], return_inverse=True)
        for t in range(len(YEARS)):
            v = maps["alt"][t].ravel()[ctrl]
            sums = np.bincount(inv, np.where(np.isfinite(v), v, 0.0), minlength=uniq.size)
            cnts = np.bincount(inv, np.isfinite(v).astype(float), minlength=uniq.size)
            counter[t, sel] = (sums / np.maximum(cnts, 1))[np.searchsorted(uniq, key.ravel()[imp[sel]])]
    imp_vals = maps["alt"].reshape(len(YEARS), -1)[:, imp]
    ref = np.nanmean(np.where(np.isfinite(imp_vals - counter), counter, np.nan), axis=1)
    assert r["before"][-1] == 2007 and r["after"][0] == 2009
    assert r["control_series_m"] == [float(v) for v in ref]


def test_last_year_reads_each_year_once_for_consumers_in_turn():
    from gee_alt.io import LastYear, YearMaps

    asked = []
    maps = LastYear(YearMaps(lambda i: asked.append(i) or np.full((2, 2), float(i)), 3, (2, 2)))
    got = [float(maps[i][0, 0]) for i in (0, 0, 1, 1, 2, 0)]
    assert got == [0.0, 0.0, 1.0, 1.0, 2.0, 0.0] and asked == [0, 1, 2, 0] and len(maps) == 3
