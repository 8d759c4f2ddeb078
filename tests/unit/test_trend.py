"""Per-pixel Theil-Sen / Mann-Kendall against scipy, recovery of injected trends, FP rate, chunking."""

import json

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from gee_alt.errors import GeeAltError
from gee_alt.grid import make_grid, rowcol_to_lonlat
from gee_alt.science.trend import (
    area_mean_series,
    disturbance_contrast,
    effective_sample_size,
    fdr_bh,
    mk_exact_p,
    rasterize_geojson,
    ring_mask,
    series_trend,
    theil_sen_mk,
    trend_cube,
)

YEARS = np.arange(2000, 2025)


def _mk_reference(t, x, continuity=True):
    """Textbook per-series Mann-Kendall (loops), independent of the vectorised code."""
    ok = np.isfinite(x)
    t, x = t[ok], x[ok]
    n = x.size
    s = sum(np.sign(x[j] - x[i]) for i in range(n) for j in range(i + 1, n))
    _, counts = np.unique(x, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - sum(c * (c - 1) * (2 * c + 5) for c in counts)) / 18
    num = s - np.sign(s) if continuity else s
    z = num / np.sqrt(var) if var > 0 else 0.0
    return s, 2 * stats.norm.sf(abs(z))


def test_matches_scipy_and_reference_on_pixels_with_nan_and_ties():
    rng = np.random.default_rng(0)
    v = rng.normal(0, 1, (25, 40)) + 0.03 * np.arange(25)[:, None]
    v[:, :10] = np.round(v[:, :10], 0)  # many ties
    v[rng.random(v.shape) < 0.15] = np.nan  # missing years
    t = YEARS.astype(float)
    res = theil_sen_mk(v, t, min_valid_years=5)
    res_nc = theil_sen_mk(v, t, min_valid_years=5, continuity=False)
    for p in range(v.shape[1]):
        ok = np.isfinite(v[:, p])
        assert res["slope"][p] == pytest.approx(stats.theilslopes(v[ok, p], t[ok])[0], rel=1e-5, abs=1e-6)
        s_ref, p_ref = _mk_reference(t, v[:, p])
        assert res["s"][p] == s_ref
        assert res["p_value"][p] == pytest.approx(p_ref, rel=1e-5)
        tau = stats.kendalltau(t[ok], v[ok, p], method="asymptotic")
        assert res_nc["p_value"][p] == pytest.approx(tau.pvalue, rel=1e-4, abs=1e-7)
        assert res["n_valid"][p] == ok.sum()


def test_injected_trend_recovered_within_10_percent():
    rng = np.random.default_rng(1)
    slope_true = 0.02  # m/yr (2 cm/yr)
    v = 1.5 + slope_true * (YEARS - 2000)[:, None, None] + rng.normal(0, 0.05, (25, 20, 25))
    res = theil_sen_mk(v, YEARS)
    assert res["slope"].shape == (20, 25)
    assert abs(np.median(res["slope"]) - slope_true) < 0.1 * slope_true
    assert np.mean(np.abs(res["slope"] - slope_true) < 0.1 * slope_true) > 0.8
    assert np.all(res["p_value"] < 0.001)


def test_mann_kendall_false_positive_rate_near_alpha():
    rng = np.random.default_rng(2)
    v = rng.normal(0, 1, (25, 2000))
    p = theil_sen_mk(v, YEARS)["p_value"]
    rate = np.mean(p < 0.05)
    sd = np.sqrt(0.05 * 0.95 / 2000)  # binomial sd ~ 0.0049
    assert abs(rate - 0.05) < 4 * sd, rate
    # p-values of pure noise are ~uniform
    assert stats.kstest(p, "uniform").pvalue > 0.001


def test_few_valid_years_give_nan():
    v = np.full((25, 3), np.nan, np.float32)
    v[:, 0] = np.arange(25)
    v[:9, 1] = np.arange(9)  # 9 valid < 10
    res = theil_sen_mk(v, YEARS, min_valid_years=10)
    assert res["slope"][0] == pytest.approx(1.0) and np.isnan(res["slope"][1]) and np.isnan(res["slope"][2])
    assert np.isnan(res["p_value"][1]) and list(res["n_valid"]) == [25, 9, 0]
    with pytest.raises(ValueError):
        theil_sen_mk(v, YEARS[:-1])


def test_chunked_driver_all_inputs_agree(tmp_path):
    rng = np.random.default_rng(3)
    cube = (rng.normal(0, 1, (25, 37, 11)) + 0.05 * np.arange(25)[:, None, None]).astype(np.float32)
    cube[:, 5, 5] = np.nan
    a = trend_cube(cube, YEARS, rows_per_chunk=4)  # default: one map-wide serial-correlation rho
    assert 0.0 <= a["serial_rho"] <= 0.95
    whole = theil_sen_mk(cube, YEARS, serial=a["serial_rho"])
    np.testing.assert_array_equal(a["slope"], whole["slope"])
    np.testing.assert_array_equal(a["p_value"], whole["p_value"])
    # memmap input, memmap outputs
    mm = np.lib.format.open_memmap(tmp_path / "cube.npy", mode="w+", dtype=np.float32, shape=cube.shape)
    mm[:] = cube
    out = {"slope": np.lib.format.open_memmap(tmp_path / "s.npy", mode="w+", dtype=np.float32, shape=(37, 11))}
    trend_cube(np.load(tmp_path / "cube.npy", mmap_mode="r"), YEARS, out=out, rows_per_chunk=5)
    np.testing.assert_array_equal(out["slope"], whole["slope"])
    # reader callback + writer callback
    calls, got = [], np.full((37, 11), np.nan, np.float32)

    def reader(r0, r1):
        calls.append((r0, r1))
        return cube[:, r0:r1]

    def writer(r0, r1, res):
        got[r0:r1] = res["p_value"]

    rho = a["serial_rho"]
    assert trend_cube(reader, YEARS, shape_yx=(37, 11), writer=writer, rows_per_chunk=10, serial=rho) is None
    assert calls == [(0, 10), (10, 20), (20, 30), (30, 37)]
    np.testing.assert_array_equal(got, whole["p_value"])
    # xarray Dataset with a named variable
    ds = xr.Dataset({"alt_m": (("year", "y", "x"), cube)}, coords={"year": YEARS})
    np.testing.assert_array_equal(trend_cube(ds, YEARS, var="alt_m", mem_budget_mb=0.1)["slope"], whole["slope"])
    with pytest.raises(GeeAltError, match="shape_yx"):
        trend_cube(reader, YEARS)


def test_area_mean_series_and_series_trend():
    cube = np.stack([np.full((4, 5), float(k)) for k in range(25)]).astype(np.float32)
    cube[:, 0, 0] = np.nan
    cube[3, 1, :] = 100.0
    mask = np.ones((4, 5), bool)
    mask[3, :] = False
    r = area_mean_series(cube, YEARS, mask=mask)
    assert r["n"][0] == 14  # 15 masked-in minus the NaN pixel
    assert r["mean"][0] == pytest.approx(0.0) and r["sd"][0] == pytest.approx(0.0)
    vals = np.r_[np.full(4, 3.0), np.full(10, 3.0)]
    vals[4:9] = 100.0  # row 1 (5 pixels) are 100 in year index 3
    assert r["mean"][3] == pytest.approx(vals.mean())
    sd = vals.std(ddof=1)
    half = stats.t.ppf(0.975, 13) * sd / np.sqrt(14)
    assert r["ci_hi"][3] - r["mean"][3] == pytest.approx(half)
    r2 = area_mean_series(cube, YEARS, mask=mask, n_eff=4)
    assert r2["ci_hi"][3] - r2["mean"][3] == pytest.approx(stats.t.ppf(0.975, 3) * sd / 2)
    st = series_trend(YEARS, 0.5 + 0.01 * (YEARS - 2000))
    assert st["slope"] == pytest.approx(0.01) and st["p_value"] < 1e-6 and st["slope_lo"] <= 0.01 <= st["slope_hi"]


def _disturbed_scene(shift, seed=4):
    rng = np.random.default_rng(seed)
    field = rng.normal(0.0, 0.3, (80, 80))
    field = (field + np.roll(field, 1, 0) + np.roll(field, 1, 1) + np.roll(field, (1, 1), (0, 1))) / 2  # correlated
    m = np.zeros((80, 80), bool)
    m[30:45, 30:50] = True
    field[m] += shift
    return field, m


def test_disturbance_contrast_detects_shift_and_not_noise():
    field, m = _disturbed_scene(shift=0.5)
    ring = ring_mask(m, 5)
    yy, xx = np.mgrid[0:80, 0:80]
    inside = np.c_[yy[m], xx[m]]
    d = np.sqrt(((np.c_[yy.ravel(), xx.ravel()][:, None, :] - inside[None]) ** 2).sum(-1)).min(1).reshape(80, 80)
    np.testing.assert_array_equal(ring, (~m) & (d <= 5))  # brute-force Euclidean ring
    r = disturbance_contrast(field, m, ring_width_px=5)
    assert r["difference"] == pytest.approx(0.5, abs=0.1)
    assert r["welch_p_neff"] < 1e-3 and r["n_inside"] == 300
    assert r["n_eff_inside"] < r["n_inside"] and 0.2 < r["rho_inside"] < 0.9
    assert r["welch_p_neff"] >= r["welch_p"]
    null, m0 = _disturbed_scene(shift=0.0)
    r0 = disturbance_contrast(null, m0, ring_width_px=5)
    assert r0["welch_p_neff"] > 0.05
    # cube input: per-year differences
    # cube input: the shift inside grows by 0.1 a year; each year's difference equals the brute-force
    # mean inside minus mean over the ring (the Euclidean ring computed above, independently)
    cube = np.stack([field + 0.01 * k + np.where(m, 0.1 * k, 0.0) for k in range(5)])
    rc = disturbance_contrast(cube, m, ring_width_px=5, years=range(2020, 2025))
    assert rc["by_year"]["years"] == [2020, 2021, 2022, 2023, 2024]
    by_hand = [float(cube[k][m].mean() - cube[k][(~m) & (d <= 5)].mean()) for k in range(5)]
    np.testing.assert_allclose(rc["by_year"]["difference"], by_hand, atol=1e-9)
    np.testing.assert_allclose(np.diff(by_hand), 0.1, atol=1e-9)


def test_effective_sample_size_white_noise_close_to_n():
    f = np.random.default_rng(5).normal(size=(50, 50))
    n_eff, rho = effective_sample_size(f, np.ones_like(f, bool))
    assert abs(rho) < 0.05 and n_eff > 0.9 * 2500


def test_rasterize_geojson(tmp_path):
    grid = make_grid("EPSG:32647", (30.0, 0.0, 500_000.0, 0.0, -30.0, 4_200_000.0), (100, 100))
    # polygon through the lon/lat of pixel corners (rows 20..40, cols 10..30)
    corners = [(20, 10), (20, 30), (40, 30), (40, 10), (20, 10)]
    lon, lat = rowcol_to_lonlat(grid, [c[0] for c in corners], [c[1] for c in corners])
    gj = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]],
                },
            }
        ],
    }
    p = tmp_path / "poly.geojson"
    p.write_text(json.dumps(gj))
    m = rasterize_geojson(p, grid)
    assert m.shape == (100, 100)
    assert abs(int(m.sum()) - 400) <= 20 and m[30, 20] and not m[50, 50]
    assert (rasterize_geojson(gj["features"][0], grid) == m).all()
    with pytest.raises(GeeAltError, match="FeatureCollection"):
        rasterize_geojson({"type": "Point", "coordinates": [0, 0]}, grid)
    with pytest.raises(GeeAltError, match="not found"):
        rasterize_geojson(tmp_path / "none.geojson", grid)


def test_bench_script_small_grid(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_trend", Path(__file__).resolve().parents[2] / "scripts" / "bench_trend.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "b.json"
    assert (
        mod.main(["--height", "40", "--width", "30", "--years", "25", "--workdir", str(tmp_path), "--out", str(out)])
        == 0
    )
    r = json.loads(out.read_text())
    assert r["grid_height"] == 40 and r["n_years"] == 25 and r["peak_rss_mb"] > 0
    assert abs(r["median_slope_m_per_yr"] - 0.01) < 0.001
    assert r["nan_pixels"] == 10 * 30  # the no-data stripe


# ----------------------------------------------------------- serial correlation, exact MK, FDR (issue 17)
def _ar1(n_years, shape, rho, rng):
    e = rng.standard_normal((n_years, *shape))
    x = np.empty_like(e)
    x[0] = e[0] / np.sqrt(1 - rho**2)
    for k in range(1, n_years):
        x[k] = rho * x[k - 1] + e[k]
    return x


def test_mk_false_positive_rate_under_ar1_is_controlled_and_power_reported():
    """AR(1) rho = 0.4, 25 years, no trend: the independent-years MK rejects ~17 % at alpha = 0.05;
    the Hamed-Rao-corrected map test must stay <= 7 % (simulation is the independent truth)."""
    rng = np.random.default_rng(17)
    x = _ar1(25, (60, 60), 0.4, rng)
    plain = trend_cube(x, YEARS, serial="none")
    corrected = trend_cube(x, YEARS)
    fpr_plain = float(np.mean(plain["p_value"] < 0.05))
    fpr = float(np.mean(corrected["p_value"] < 0.05))
    assert fpr_plain > 0.12  # the defect this fixes
    assert fpr <= 0.07
    assert corrected["serial_rho"] == pytest.approx(0.4, abs=0.08)  # map-wide rho recovered
    # power with a real trend (0.1 sd/yr of the marginal sd): reported, and far above the false-positive rate
    xt = x + 0.1 * np.arange(25)[:, None, None]
    power = float(np.mean(trend_cube(xt, YEARS)["p_value"] < 0.05))
    print(f"AR(1) rho=0.4, n=25: FPR plain {fpr_plain:.3f}, corrected {fpr:.3f}; power at 0.1/yr {power:.3f}")
    assert power > 0.5
    # white noise: the correction does not make the test anticonservative or useless
    w = trend_cube(rng.standard_normal((25, 60, 60)), YEARS)
    assert 0.02 <= float(np.mean(w["p_value"] < 0.05)) <= 0.07


def test_single_series_fpr_and_ci_coverage_under_ar1():
    rng = np.random.default_rng(5)
    x = _ar1(25, (1500,), 0.4, rng)
    res = [series_trend(YEARS, x[:, k]) for k in range(x.shape[1])]
    fpr = np.mean([r["p_value"] < 0.05 for r in res])
    cover = np.mean([r["slope_lo"] <= 0.0 <= r["slope_hi"] for r in res])
    plain = np.mean([series_trend(YEARS, x[:, k], serial="none")["p_value"] < 0.05 for k in range(300)])
    assert fpr <= 0.09 and plain > 0.12  # one short series' own rho is noisy: ~7 % (documented)
    assert cover >= 0.91


def test_series_trend_without_serial_correction_is_scipys_sen_ci():
    rng = np.random.default_rng(2)
    y = 0.5 + 0.01 * (YEARS - 2000) + 0.02 * rng.standard_normal(YEARS.size)
    ref = stats.theilslopes(y, YEARS, alpha=0.95)
    r = series_trend(YEARS, y, serial="none")
    assert r["slope"] == pytest.approx(ref.slope, rel=1e-6)
    assert r["slope_lo"] == pytest.approx(ref.low_slope, rel=1e-6)
    assert r["slope_hi"] == pytest.approx(ref.high_slope, rel=1e-6)
    assert r["intercept"] == pytest.approx(ref.intercept, rel=1e-6)
    # a common multiplicative error (E) widens the CI by slope * rel_sd in quadrature
    r2 = series_trend(YEARS, y, serial="none", rel_scale_sd=0.1)
    z = stats.norm.ppf(0.975)
    sd = np.hypot((r["slope_hi"] - r["slope_lo"]) / (2 * z), 0.1 * r["slope"])
    assert r2["slope_hi"] - r2["slope_lo"] == pytest.approx(2 * z * sd, rel=1e-9)


def test_few_years_use_the_exact_mk_distribution():
    rng = np.random.default_rng(0)
    for n in (4, 5, 6, 7):
        t = np.arange(n, dtype=float)
        for _ in range(5):
            y = rng.permutation(n).astype(float) + 0.1 * rng.random()
            ref = stats.kendalltau(t, y, method="exact").pvalue
            got = theil_sen_mk(y[:, None], t, min_valid_years=3, serial="pixel")["p_value"][0]
            assert got == pytest.approx(ref, rel=1e-5)
    # n = 5, perfectly monotone: 2/120 by counting permutations
    assert mk_exact_p([10], [5])[0] == pytest.approx(2 / 120)


def test_fdr_bh_hand_example_and_null_control():
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan])
    # sorted 0.01, 0.03, 0.04, 0.2 vs k*0.05/4 = 0.0125, 0.025, 0.0375, 0.05 -> only 0.01 passes
    np.testing.assert_array_equal(fdr_bh(p, 0.05), [True, False, False, False, False])
    p2 = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # step-up: largest k with p_(k) <= 0.05 k / 10 is k = 2 (0.008 <= 0.01; 0.039 > 0.015 ... 0.042 > 0.025)
    assert fdr_bh(p2, 0.05).sum() == 2
    rng = np.random.default_rng(1)
    null = rng.random((400, 500))
    assert np.mean([fdr_bh(row).any() for row in null]) <= 0.08  # under the global null P(any) = q = 0.05
