"""Area of applicability: hand-computed dissimilarity index, classes without sites flagged, map error."""

from __future__ import annotations

import numpy as np
import pytest

from gee_alt.science.applicability import AreaOfApplicability, map_error_estimate


def test_dissimilarity_index_by_hand():
    # three sites of class 1 on a line (one predictor, sd 1 by construction: values -1, 0, 1)
    x = np.array([[-1.0], [0.0], [1.0]])
    aoa = AreaOfApplicability().fit(x, np.array([1, 1, 1]))
    # mean pairwise distance (scaled by sd = 1): (1 + 2 + 1)/3
    assert aoa.mean_dist_ == pytest.approx(4 / 3)
    # each site's distance to the nearest other site is 1 -> DI 0.75, threshold = max = 0.75
    np.testing.assert_allclose(aoa.train_di_, 0.75)
    assert aoa.threshold_ == pytest.approx(0.75)
    di, inside = aoa.predict(np.array([[0.5], [2.0], [3.0], [0.0]]), np.array([1, 1, 1, 2]))
    np.testing.assert_allclose(di, [0.5 * 0.75, 1.0 * 0.75, 2.0 * 0.75, 0.0])
    # inside: DI <= 0.75 and a class with sites; class 2 has none -> outside even at DI 0
    assert inside.tolist() == [True, True, False, False]


def test_map_error_weights_pixels_by_their_thaw():
    ddt = np.array([[[100.0, 400.0]], [[100.0, 400.0]]])  # 2 years, 1 x 2 pixels
    inside = np.array([[True, False]])
    r = map_error_estimate(ddt, inside, mse_e_in=1e-4, mse_e_out=4e-4)
    # by hand: pixel-years 100*1e-4 (x2) and 400*4e-4 (x2) -> mean 0.085, sqrt
    assert r["rmse_m"] == pytest.approx(np.sqrt((2 * 0.01 + 2 * 0.16) / 4))
    assert r["outside_fraction"] == pytest.approx(0.5)


def test_classes_without_sites_make_the_map_error_a_lower_bound():
    from gee_alt.applicability_run import _unsampled

    lc = np.array([[1, 1, 2, 2], [3, 3, 3, np.nan]], dtype=float)
    mapped = np.array([[True, True, True, False], [True, True, False, True]])
    r = _unsampled(lc, np.array([1.0, 2.0, np.nan]), mapped)
    # mapped pixels with a class: 1, 1, 2, 3, 3 -> class 3 has no site and holds 2 of 5
    assert r == {"unsampled_classes": [3], "unsampled_fraction": 0.4, "lower_bound": True}
    assert _unsampled(lc, np.array([1.0, 2.0, 3.0]), mapped)["lower_bound"] is False
    assert _unsampled(None, None, mapped)["lower_bound"] is False


def test_an_empty_side_has_no_error_estimate_not_zero():
    ddt = np.full((2, 2, 2), 900.0)
    r = map_error_estimate(ddt, np.zeros((2, 2), bool), mse_e_in=1e-4, mse_e_out=4e-4)
    assert np.isnan(r["rmse_inside_m"]) and r["outside_fraction"] == 1.0
    assert r["rmse_outside_m"] == pytest.approx(np.sqrt(900.0 * 4e-4))


def _clustered_world(seed: int):
    """E rises with a predictor z (E = 0.03 + 0.01 z): 30 sites clustered at low z (valley floors),
    the map spread over z in [0, 3]. Each site has 3 years of ALT = E √DDT + noise."""
    rng = np.random.default_rng(seed)
    z_site = np.abs(rng.normal(0.3, 0.3, 30))
    z_map = rng.uniform(0, 3, 4000)
    sites = np.repeat(np.arange(30).astype(str), 3)
    ddt = rng.uniform(900, 1600, sites.size)
    e_site = 0.03 + 0.01 * z_site + rng.normal(0, 0.002, 30)
    alt = e_site[sites.astype(int)] * np.sqrt(ddt) + rng.normal(0, 0.05, sites.size)
    return z_site, z_map, sites, np.sqrt(ddt), alt


def test_nndm_folds_match_the_prediction_distances_and_see_the_extrapolation_error():
    from gee_alt.science.applicability import nndm_exclusions, nndm_mse_e
    from gee_alt.science.stefan import fit_e

    ratios_nndm, ratios_loo = [], []
    for seed in range(5):
        z_site, z_map, sites, x, alt = _clustered_world(seed)
        # true map error of the deployed pooled E, in E units (independent of any CV)
        e_hat = fit_e(x, alt)
        true_mse_e = float(np.mean((0.03 + 0.01 * z_map - e_hat) ** 2))
        res = nndm_exclusions(z_site[:, None], z_map[:, None])
        assert res["w"] < res["w_loo"]  # the folds' distances are closer to the map's
        assert np.median(res["nnd_cv"]) > 3 * np.median(np.sort(np.abs(z_site[:, None] - z_site[None]), 1)[:, 1])
        nndm = nndm_mse_e(x, alt, sites, {str(i): {str(j) for j in e} for i, e in enumerate(res["exclude"])})
        loo = nndm_mse_e(x, alt, sites, {str(i): {str(i)} for i in range(30)})
        ratios_nndm.append(nndm["mse_e"] / true_mse_e)
        ratios_loo.append(loo["mse_e"] / true_mse_e)
    # site LOO sees a small fraction of the map's error; NNDM sees much more of it
    assert np.median(ratios_loo) < 0.2
    assert np.median(ratios_nndm) > 2 * np.median(ratios_loo)


def test_nndm_is_loo_when_the_map_is_like_the_sites():
    from gee_alt.science.applicability import nndm_exclusions

    rng = np.random.default_rng(3)
    xs = rng.uniform(0, 1, (40, 2))
    xp = xs[rng.integers(0, 40, 2000)] + rng.normal(0, 0.01, (2000, 2))  # prediction points at the sites
    res = nndm_exclusions(xs, xp)
    assert all(len(e) == 1 for e in res["exclude"])  # only the held-out site itself
