"""The random-forest sharpener against a known truth it has never seen (not the demo scene)."""

import numpy as np
import pytest

from gee_alt.cube import geo_dataarray
from gee_alt.science.resample import aggregate, interpolate
from gee_alt.science.sharpen import RandomForestSharpener
from helpers.scenes import sharpen_scene


@pytest.fixture(scope="module")
def scene():
    return sharpen_scene(n=384, seed=11)


def _X(s):
    t = s["terrain"]
    return geo_dataarray(np.stack([*t.values(), s["ndvi"]]), s["fine_grid"], [*t, "ndvi"], dim="feature")


def _rmse(a, b):
    m = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[m] - b[m]) ** 2)))


def test_sharpening_beats_bilinear_on_every_band(scene):
    X = _X(scene)
    y = geo_dataarray(scene["coarse"], scene["coarse_grid"], ["a", "b", "c"])
    model = RandomForestSharpener(radiance=True, random_state=0).fit(X, y)
    out = model.predict(X).values
    bil = interpolate(scene["coarse"], scene["coarse_grid"], scene["fine_grid"], "bilinear")
    for b in range(3):
        r_sharp, r_bil = _rmse(out[b], scene["truth"][b]), _rmse(bil[b], scene["truth"][b])
        assert r_sharp <= 0.6 * r_bil, (b, r_sharp, r_bil)
    # gaps of the coarse observation stay gaps at 30 m (per band), elsewhere values everywhere
    gaps = ~np.isfinite(interpolate(scene["coarse"], scene["coarse_grid"], scene["fine_grid"], "nearest"))
    assert np.array_equal(~np.isfinite(out), gaps)
    assert model.n_train_ >= 30 and np.all(model.oob_rmse_ > 0)


def test_residual_correction_conserves_the_coarse_observation(scene):
    X = _X(scene)
    y = geo_dataarray(scene["coarse"][:1], scene["coarse_grid"])
    on = RandomForestSharpener(radiance=True, keep_gaps=False).fit(X, y).predict(X).values
    off = RandomForestSharpener(radiance=True, keep_gaps=False, residual_correction=False).fit(X, y).predict(X).values
    agg_on, _, cover = aggregate(on, scene["fine_grid"], scene["coarse_grid"], radiance=True, with_std=False)
    agg_off, _, _ = aggregate(off, scene["fine_grid"], scene["coarse_grid"], radiance=True, with_std=False)
    inner = (cover > 0.99) & np.isfinite(scene["coarse"][0])
    err_on = np.abs(agg_on[0] - scene["coarse"][0])[inner]
    err_off = np.abs(agg_off[0] - scene["coarse"][0])[inner]
    assert err_on.mean() < 0.5 * err_off.mean()
    assert abs(np.mean(agg_on[0][inner] - scene["coarse"][0][inner])) < 0.02


def test_same_seed_same_result_and_seed_matters(scene):
    X = _X(scene)
    y = geo_dataarray(scene["coarse"][:1], scene["coarse_grid"])
    kw = dict(radiance=True, linear_base=False)  # forest only, so the seed shows
    a = RandomForestSharpener(random_state=3, **kw).fit(X, y).predict(X).values
    b = RandomForestSharpener(random_state=3, **kw).fit(X, y).predict(X).values
    c = RandomForestSharpener(random_state=4, **kw).fit(X, y).predict(X).values
    assert np.array_equal(a, b, equal_nan=True)
    assert not np.array_equal(a, c, equal_nan=True)


def test_nan_predictors_give_nan_and_no_overlap_is_an_error(scene):
    from gee_alt.errors import GeeAltError
    from gee_alt.grid import make_grid

    X = _X(scene)
    Xv = X.values.copy()
    Xv[-1, :5, :5] = np.nan
    Xn = geo_dataarray(Xv, scene["fine_grid"], list(X["feature"].values), dim="feature")
    y = geo_dataarray(scene["coarse"][:1], scene["coarse_grid"])
    out = RandomForestSharpener(keep_gaps=False).fit(Xn, y).predict(Xn).values
    assert np.isnan(out[0, :5, :5]).all() and np.isfinite(out[0, 100:110, 100:110]).all()
    far = make_grid("EPSG:32647", (926.6, 0, 100000, 0, -926.6, 3000000), (10, 10))
    with pytest.raises(GeeAltError, match="overlap"):
        RandomForestSharpener().fit(X, geo_dataarray(np.ones((1, 10, 10)), far))


def test_many_bands_share_one_forest_via_components(scene):
    X = _X(scene)
    rng = np.random.default_rng(0)
    base = scene["coarse"][0]
    stack = np.stack([base + d for d in rng.normal(0, 2, 12)])  # 12 composites, one pattern
    stack[:, ~np.isfinite(base)] = np.nan
    m = RandomForestSharpener(radiance=True, max_components=4).fit(X, geo_dataarray(stack, scene["coarse_grid"]))
    assert len(m.models_) == 1 and len(m.models_[0][0]) == 12
    comps = m.models_[0][1]["comps"]
    assert comps is not None and comps.shape[0] <= 4
    out = m.predict(X).values
    # every composite is sharpened as well as the single band alone
    single = (
        RandomForestSharpener(radiance=True).fit(X, geo_dataarray(stack[:1], scene["coarse_grid"])).predict(X).values
    )
    truth0 = scene["truth"][0] + (stack[0] - base)[np.isfinite(base)].mean()
    assert _rmse(out[0], truth0) <= 1.1 * _rmse(single[0], truth0)


def test_forest_takes_over_where_the_truth_is_nonlinear():
    s = sharpen_scene(n=384, seed=5, n_bands=1, gap_frac=0.0, noise=0.05)
    from gee_alt.science.resample import aggregate as agg

    # a threshold response to elevation that no linear trend can follow
    truth = np.where(s["dem"] > 4000, 6.0, 0.0) + 0.5 * (s["ndvi"] - 0.4)
    obs, _, cover = agg(truth, s["fine_grid"], s["coarse_grid"], with_std=False)
    obs[:, cover < 0.5] = np.nan
    X = _X(s)
    y = geo_dataarray(obs, s["coarse_grid"])
    rf = RandomForestSharpener(min_samples_leaf=3, keep_gaps=False).fit(X, y)
    assert rf.models_[0][1]["rf_weight"] > 0
    lin = RandomForestSharpener(min_samples_leaf=3, keep_gaps=False).fit(X, y)
    lin.models_[0][1]["rf_weight"] = 0.0  # the same model with the forest switched off
    r_rf = _rmse(rf.predict(X).values[0], truth)
    r_lin = _rmse(lin.predict(X).values[0], truth)
    assert r_rf < 0.97 * r_lin, (r_rf, r_lin)  # coarse training smooths a step; the forest still helps
