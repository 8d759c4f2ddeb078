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
    assert r["unsampled_classes"] == [3] and r["unsampled_fraction"] == 0.4 and r["lower_bound"] is True
    # with a between-class variance for unsampled ground the estimate there is model-based, not a bound
    assert _unsampled(lc, np.array([1.0, 2.0, np.nan]), mapped, tau2_u=1e-5)["lower_bound"] is False
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


# ------------------------------------------------------------ extrapolation term (issue 17 item 1)
def test_tau2_upper_limit_of_two_classes_by_hand():
    from scipy.stats import chi2

    from gee_alt.science.applicability import tau2_upper

    # K = 2: Q(t) = (E1 - E2)^2 / (v1 + v2 + 2 t), so Q(t) = c gives t = ((dE)^2 / c - v1 - v2) / 2
    e, se = [0.030, 0.026], [0.0015, 0.0010]
    c = chi2.ppf(0.1, 1)
    hand = ((0.004**2) / c - 0.0015**2 - 0.0010**2) / 2
    assert tau2_upper(e, se, level=0.9) == pytest.approx(hand, rel=1e-6)
    # classes closer than their standard errors: Q(0) already below the quantile -> 0
    assert tau2_upper([0.03, 0.0300001], [0.002, 0.002], level=0.9) == 0.0
    assert np.isnan(tau2_upper([0.03], [0.001]))


def test_tau2_upper_limit_covers_the_true_between_class_variance_at_its_level():
    from gee_alt.science.applicability import tau2_upper

    rng = np.random.default_rng(3)
    tau2, hits, n = 0.004**2, 0, 600
    for _ in range(n):
        k = rng.integers(2, 6)  # 2-5 classes with sites, as on a real study area
        se = rng.uniform(0.0008, 0.002, k)
        e = 0.03 + rng.normal(0, np.sqrt(tau2), k) + rng.normal(0, se)
        hits += tau2_upper(e, se, level=0.9) >= tau2
    # the Q-profile limit is exact under the normal random-effects model: 90 % +- 3 sd of a binomial
    assert 0.9 - 3 * np.sqrt(0.09 / n) <= hits / n <= 0.9 + 3 * np.sqrt(0.09 / n)


def test_edrift_loo_by_hat_matrix_equals_refits_and_recovers_the_slope():
    from gee_alt.science.applicability import EDrift

    z_site, z_map, *_ = _clustered_world(0)
    rng = np.random.default_rng(1)
    e_site = 0.03 + 0.01 * z_site + rng.normal(0, 0.002, z_site.size)
    # fitted on the sites' E minus the deployed (pooled) E: the drift is the deployed E's error
    e_site = e_site - e_site.mean()
    d = EDrift().fit(z_site[:, None], e_site)
    assert d.used_
    # brute-force leave-one-out refits
    loo = []
    for i in range(z_site.size):
        m = np.arange(z_site.size) != i
        b = np.polyfit(z_site[m], e_site[m], 1)
        loo.append(np.polyval(b, z_site[i]) - e_site[i])
    assert d.loo_rmse_ == pytest.approx(np.sqrt(np.mean(np.square(loo))), rel=1e-9)
    # the drift at z = 3 against the truth 0.01 (3 - mean z of the sites), within 3 standard errors
    true_drift = 0.01 * (3.0 - z_site.mean())
    se = 0.002 / (z_site.std() * np.sqrt(z_site.size)) * (3.0 - z_site.mean())
    assert abs(d.predict(np.array([[3.0]]))[0] - true_drift) < 3 * se
    # no relation: the drift is not used (LOO of the site mean is better) or tiny
    e_flat = rng.normal(0, 0.002, z_site.size)
    flat = EDrift().fit(z_site[:, None], e_flat)
    assert (not flat.used_) or abs(flat.predict(np.array([[3.0]]))[0]) < 3 * se
    if not flat.used_:
        assert flat.predict(np.array([[3.0], [0.0]])).tolist() == [0.0, 0.0]


def test_extrapolation_term_covers_the_error_of_a_class_without_sites():
    """Classes with known E spread (tau = 0.006); sites in 4 of them, the 5th mapped without any
    site and given the pooled E. Over many simulated areas the 95 % interval built from the
    extrapolation term, pooled E +- 1.96 sqrt(MSE_E,out), covers the unsampled class's true E at
    least at the nominal rate, and the term's mean is of the order of the true mean square error
    (not a bound at any price: at most 4x it)."""
    from gee_alt.science.applicability import extrapolation_mse_e, tau2_upper

    rng = np.random.default_rng(11)
    tau, sigma, n_sites = 0.006, 0.004, 6
    cover, est, true = [], [], []
    for _ in range(800):
        e_cls = 0.03 + rng.normal(0, tau, 5)
        site_e = [e_cls[k] + rng.normal(0, sigma, n_sites) for k in range(4)]
        allsites = np.concatenate(site_e)
        e_pool = allsites.mean()
        e_sd = allsites.std(ddof=1) / np.sqrt(allsites.size)
        resid = np.sqrt(np.mean([s.var(ddof=1) for s in site_e]))  # within-class spread of site E
        t2 = tau2_upper([s.mean() for s in site_e], [s.std(ddof=1) / np.sqrt(n_sites) for s in site_e])
        mse = float(extrapolation_mse_e(e_sd, resid, 0.0, True, t2))
        # a pixel of class 5: its true E is the class E plus the place-to-place spread
        err = e_cls[4] + rng.normal(0, sigma) - e_pool
        cover.append(abs(err) <= 1.96 * np.sqrt(mse))
        est.append(mse)
        true.append(err**2)
    assert np.mean(cover) >= 0.93
    ratio = np.mean(est) / np.mean(true)
    assert 1.0 <= ratio <= 4.0, ratio
