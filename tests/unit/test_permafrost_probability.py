"""The permafrost presence probability and the probabilistic area, against simulated truth.

A population of pixels has presence drawn from a known logistic law in two predictors; drill
holes are a covariate-shifted sample of it (drawn with a weight that depends on the predictors,
like holes near valley roads). The summed probabilities of the fitted model recover the
population's permafrost area within the bootstrap CI and without bias over many repetitions,
while the area of the map thresholded at 0.5 is biased; when the model leaves out a predictor
that drives the selection, importance weights by the density ratio remove most of the bias."""

import numpy as np
import pytest
from pyproj import Transformer

from gee_alt import downstream, runs
from gee_alt.cube import make_ddt_cube
from gee_alt.errors import GeeAltError
from gee_alt.grid import make_grid
from gee_alt.io import read_raster
from gee_alt.science.permafrost_probability import (
    AreaAccumulator,
    PresenceProbability,
    density_ratio_weights,
    holes_design,
)

BETA = np.array([-0.8, 1.2, 0.9])  # intercept, x1 (frost-number-like), x2 (terrain-like): prevalence ~0.35


def _world(seed: int, n_pop: int = 40000, n_holes: int = 400, shift: float = 0.8):
    """Population predictors ``(n_pop, 2)`` and presence; holes drawn with weight exp(-shift x2) (shifted)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_pop, 2))
    p = 1 / (1 + np.exp(-(BETA[0] + x @ BETA[1:])))
    y = rng.uniform(size=n_pop) < p
    w = np.exp(-shift * x[:, 1])
    holes = rng.choice(n_pop, size=n_holes, replace=False, p=w / w.sum())
    return x, y, holes


def _area_ci(model, x):
    boot = model.boot_proba(x).sum(axis=1)
    return np.percentile(boot, [2.5, 97.5])


def test_summed_probabilities_recover_the_area_within_the_ci_and_thresholding_is_biased():
    err_sum, err_thr, hits = [], [], 0
    for seed in range(16):
        x, y, holes = _world(seed)
        m = PresenceProbability(names=("x1", "x2"), n_boot=60, random_state=seed).fit(x[holes], y[holes])
        p = m.predict_proba(x)
        truth = float(y.sum())
        lo, hi = _area_ci(m, x)
        hits += lo <= truth <= hi
        err_sum.append((p.sum() - truth) / truth)
        err_thr.append(((p >= 0.5).sum() - truth) / truth)
    assert hits >= 13  # nominal 95 %: 15-16 of 16 expected
    assert abs(np.mean(err_sum)) < 0.04  # unbiased
    # the map thresholded at 0.5 misses much of the area: the overlap is asymmetric at prevalence ~0.35
    assert np.mean(err_thr) < -0.15


def test_density_ratio_weights_correct_a_model_that_leaves_out_the_selection_predictor():
    """Fitting on x1 alone: p(presence | x1) on the holes differs from the population's because
    the holes favour low x2; weights p_pop(x)/p_holes(x) in (x1, x2) recover the population's."""
    plain, weighted = [], []
    for seed in range(8):
        x, y, holes = _world(seed, shift=1.2)
        truth = float(y.sum())
        rng = np.random.default_rng(100 + seed)
        w = density_ratio_weights(x[holes], x[rng.choice(len(x), 5000, replace=False)], clip=20.0)
        a = PresenceProbability(names=("x1",), n_boot=0).fit(x[holes, :1], y[holes])
        b = PresenceProbability(names=("x1",), n_boot=0).fit(x[holes, :1], y[holes], sample_weight=w)
        plain.append((a.predict_proba(x[:, :1]).sum() - truth) / truth)
        weighted.append((b.predict_proba(x[:, :1]).sum() - truth) / truth)
        assert 1.0 < b.effective_n_ < 400
    # the holes sit where x2 is low, where permafrost is rarer at a given x1: the plain fit underestimates
    assert np.mean(plain) < -0.1
    assert abs(np.mean(weighted)) < 0.5 * abs(np.mean(plain))


def test_round_trip_and_nan_predictors():
    x, y, holes = _world(1)
    m = PresenceProbability(names=("x1", "x2"), n_boot=30).fit(x[holes], y[holes])
    back = PresenceProbability.from_dict(m.to_dict())
    q = np.vstack([x[:5], [[np.nan, 0.0]]])
    np.testing.assert_allclose(back.predict_proba(q)[:5], m.predict_proba(q)[:5])
    assert np.isnan(m.predict_proba(q)[5])
    assert back.boot_proba(q).shape == (m.boot_coef_.shape[0], 5)
    # a larger coefficient on x1 than 0: presence rises with it
    assert m.coef_[0] > 0 and m.C_ in m.Cs


def test_too_few_holes_of_a_kind_is_refused_in_one_line():
    x = np.linspace(0, 1, 30)[:, None]
    with pytest.raises(GeeAltError, match="at least 5 drill holes") as e:
        PresenceProbability().fit(x, x[:, 0] > 0.9)
    assert "\n" not in str(e.value)


def test_area_accumulator_sums_and_ci_by_hand():
    acc = AreaAccumulator(2, 20)
    p = np.array([[0.2, 0.4], [np.nan, 1.0]])
    sub = np.array([[False, True], [True, False]])  # the NaN pixel of the subsample is left out
    boot = np.tile(np.array([[0.2], [0.6]]), (10, 1))  # 20 replicates of the one subsample pixel (p 0.4)
    acc.add(0, p[:1], sub[:1], boot)  # two strips of one row each
    acc.add(0, p[1:], sub[1:], np.empty((20, 0)))
    acc.add(1, np.array([[0.5]]), np.array([[True]]), 1.25 * boot)
    out = acc.result([2010, 2011], px_km2=0.0009)
    np.testing.assert_allclose(out["area_km2"], [1.6 * 0.0009, 0.5 * 0.0009])
    np.testing.assert_allclose(out["fraction"], [1.6 / 3, 0.5])
    lo, hi = out["area_km2_ci95"][0]  # the ratio replicate / point is 0.5 or 1.5
    assert lo == pytest.approx(1.6 * 0.0009 * 0.5) and hi == pytest.approx(1.6 * 0.0009 * 1.5)
    lo, hi = out["area_km2_ci95"][1]
    assert lo == pytest.approx(0.5 * 0.0009 * 0.5) and hi == pytest.approx(0.5 * 0.0009 * 1.5)


# ------------------------------------------------------------------- holes and the downstream
GRID = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (40, 20))
YEARS = [2010, 2011, 2012]


def _hole_csv(folder, cells, f_map):
    to_ll = Transformer.from_crs("EPSG:32647", "EPSG:4326", always_xy=True)
    lines = ["site_id,lon,lat,year,permafrost"]
    for k, (r, c, year) in enumerate(cells):
        lon, lat = to_ll.transform(600_000.0 + 30 * c + 15, 4_200_000.0 - 30 * r - 15)
        lines.append(f"H{k},{lon:.7f},{lat:.7f},{year},{'true' if f_map[r, c] >= 0.46 else 'false'}")
    (folder / runs.BOREHOLES_CSV).write_text("\n".join(lines) + "\n")


def test_a_hole_is_read_in_its_drilling_year_or_the_nearest_year_of_the_run(tmp_path):
    from gee_alt.science.permafrost import read_boreholes

    frost = np.stack([np.full((20, 40), v) for v in (0.40, 0.45, 0.50)])
    _hole_csv(tmp_path, [(1, 1, 2011), (2, 2, 2003), (3, 3, 2030)], frost[1])
    x, y = holes_design(frost, YEARS, GRID, read_boreholes(tmp_path / runs.BOREHOLES_CSV), {}, ("frost_number",))
    np.testing.assert_allclose(x[:, 0], [0.45, 0.40, 0.50])
    assert y.tolist() == [False, False, False]


class _E:
    e_by_class_: dict = {}

    def predict(self, ddt, classes=None, disturbed=None):
        return 0.05 * np.sqrt(ddt)

    def predict_sd(self, ddt, ddt_sd, classes=None, disturbed=None):
        return np.full(np.shape(ddt), 0.1)


def test_stream_alt_writes_probability_class_and_the_probabilistic_area(tmp_path):
    """F rises along the columns; holes on every second pixel with a noisy boundary at F 0.46."""
    rng = np.random.default_rng(0)
    f = np.linspace(0.36, 0.56, 40)[None, None, :] * np.ones((3, 20, 40))
    ddt = np.full((3, 20, 40), 1600.0)
    cube = make_ddt_cube(ddt, YEARS, GRID, ddf_degc_days=ddt * (f / (1 - f)) ** 2, engine="local")
    f_noisy = f[0] + 0.03 * rng.standard_normal((20, 40))
    cells = [(r, c, 2011) for r in range(0, 20, 2) for c in range(0, 40, 2)]
    _hole_csv(tmp_path, cells, f_noisy)
    crit = downstream.permafrost_criterion(cube, tmp_path / "insitu.csv", fields=downstream.SiteFields())
    assert crit["source"] == "probability" and crit["presence_model"]["predictors"] == ["frost_number"]
    presence = downstream.presence_of(crit, downstream.SiteFields(), GRID)
    maps = downstream.stream_alt(tmp_path, cube, _E(), {"E": 0.05}, presence=presence, stac=False, rows_per_chunk=7)
    pf = read_raster(runs.permafrost_path(tmp_path, 2011), bands=None)
    assert pf.descriptions[-1] == "presence_probability"
    cls, prob = pf.data[0], pf.data[2]
    np.testing.assert_array_equal(cls, (prob >= 0.5).astype("float32"))
    assert prob[0, 0] < 0.1 and prob[0, -1] > 0.9
    alt = read_raster(runs.alt_path(tmp_path, 2011)).data[0]
    assert np.isfinite(alt[cls == 1]).all() and np.isnan(alt[cls == 0]).all()
    ext = downstream.extent_series(maps)
    px_km2 = 30.0 * 30.0 / 1e6
    np.testing.assert_allclose(ext["probabilistic"]["area_km2"][1], prob.astype("float64").sum() * px_km2, rtol=1e-5)
    np.testing.assert_allclose(ext["area_km2"][1], cls.sum() * px_km2, rtol=1e-6)
    lo, hi = ext["probabilistic"]["area_km2_ci95"][1]
    assert lo < ext["probabilistic"]["area_km2"][1] < hi
    # the downstream's streamed permafrost equals mapped_years' count
    mapped = downstream.mapped_years(cube, _E(), presence=presence)
    np.testing.assert_array_equal(
        mapped, (np.stack([read_raster(runs.permafrost_path(tmp_path, y)).data[0] for y in YEARS]) == 1).sum(0)
    )


# ------------------------------------------------------------------- clamping


def test_clamped_predictors_stay_in_the_holes_range_and_the_frost_number_does_not():
    x, y, holes = _world(3)
    m = PresenceProbability(names=("frost_number", "x2"), n_boot=20, clamp=("x2",)).fit(x[holes], y[holes])
    lo, hi = x[holes, 1].min(), x[holes, 1].max()
    np.testing.assert_array_equal(m.lower_, [-np.inf, lo])
    far = m.predict_proba(np.array([[0.0, hi + 5.0], [0.0, lo - 5.0], [4.0 + x[holes, 0].max(), 0.0]]))
    edge = m.predict_proba(np.array([[0.0, hi], [0.0, lo], [x[holes, 0].max(), 0.0]]))
    np.testing.assert_array_equal(far[:2], edge[:2])
    assert far[2] > edge[2]  # not clamped: presence keeps rising with the frost number
    back = PresenceProbability.from_dict(m.to_dict())
    assert list(m.to_dict()["clamped_to_holes_range"]) == ["x2"]
    np.testing.assert_array_equal(back.predict_proba(np.array([[0.0, hi + 5.0]])), far[:1])
    at_far, at_edge = back.boot_proba(np.array([[0.0, hi + 5.0]])), m.boot_proba(np.array([[0.0, hi]]))
    np.testing.assert_array_equal(at_far, at_edge)


def test_the_downstream_clamps_the_static_predictors_to_the_holes_and_not_the_frost_number(tmp_path):
    """Holes on the lower half of a DEM ramp only: the elevation is clamped to the hole pixels'
    range, so the upper half is predicted as at its edge; the frost number is never clamped."""
    f = np.linspace(0.36, 0.56, 40)[None, None, :] * np.ones((3, 20, 40))
    ddt = np.full((3, 20, 40), 1600.0)
    cube = make_ddt_cube(ddt, YEARS, GRID, ddf_degc_days=ddt * (f / (1 - f)) ** 2, engine="local")
    dem = (3500.0 + 10.0 * np.arange(20)[:, None] + 0.5 * np.arange(40)[None, :]).astype("float32")
    rng = np.random.default_rng(2)
    cells = [(r, c, 2011) for r in range(10, 20, 2) for c in range(0, 40, 2)]
    _hole_csv(tmp_path, cells, f[0] + 0.03 * rng.standard_normal((20, 40)))
    fields = downstream.SiteFields(dem_m=dem)
    crit = downstream.permafrost_criterion(cube, tmp_path / "insitu.csv", fields=fields)
    rng_of = crit["presence_model"]["clamped_to_holes_range"]
    assert "frost_number" not in rng_of
    rows = np.array([r for r, _, _ in cells])
    cols = np.array([c for _, c, _ in cells])
    assert rng_of["elevation_m"] == [float(dem[rows, cols].min()), float(dem[rows, cols].max())]
    p = downstream.presence_of(crit, fields, GRID).rows(f[1], 0, 20)
    at_edge = downstream.presence_of(crit, downstream.SiteFields(dem_m=np.maximum(dem, dem[10:].min())), GRID)
    np.testing.assert_array_equal(p[:10], at_edge.rows(f[1], 0, 20)[:10])
