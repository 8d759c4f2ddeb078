"""Property-based tests (hypothesis; few examples, no deadline):

- sharpening with residual correction conserves the coarse observation: the sharpened field,
  aggregated back to the coarse grid, is close to the observation (much closer than without
  the correction), for random scenes (coefficients, noise, radiance or linear aggregation);
- Stefan calibration is invariant to the order of the rows: permuting the sites gives the
  identical E, CI, E sd and leave-one-site-out scores;
- DDT is monotone in temperature: warming any composite never lowers DDT, and DDT ignores
  frost (sub-zero temperatures) entirely.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gee_alt.cube import geo_dataarray
from gee_alt.grid import make_grid
from gee_alt.science.resample import aggregate
from gee_alt.science.sharpen import RandomForestSharpener
from gee_alt.science.stefan import StefanCalibration
from gee_alt.science.thaw import ddt_from_composites

FEW = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
N = 96  # fine pixels a side (30 m)
FINE = make_grid("EPSG:32647", (30, 0, 500010, 0, -30, 4200000), (N, N))
COARSE = make_grid("EPSG:32647", (240, 0, 500010, 0, -240, 4200000), (N // 8, N // 8))


@FEW
@given(
    seed=st.integers(0, 2**16),
    slope=st.floats(-12, 12),
    ndvi_coef=st.floats(-15, 15),
    noise=st.floats(0.0, 0.5),
    radiance=st.booleans(),
)
def test_residual_correction_conserves_the_coarse_mean(seed, slope, ndvi_coef, noise, radiance):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:N, 0:N] / N
    dem = 4000 + 300 * np.sin(3 * xx + 2 * yy + rng.uniform(0, 6)) + 50 * rng.standard_normal((N, N))
    ndvi = np.clip(0.4 + 0.2 * np.cos(4 * yy - xx) + 0.05 * rng.standard_normal((N, N)), 0, 1)
    truth = 10 + slope * (dem - 4000) / 1000 + ndvi_coef * (ndvi - 0.4) + 0.3 * np.sin(9 * xx * yy)
    obs, _, cover = aggregate(truth[None], FINE, COARSE, radiance=radiance, with_std=False)
    obs = obs + noise * rng.standard_normal(obs.shape)
    X = geo_dataarray(np.stack([dem, ndvi]).astype("float32"), FINE, ["dem", "ndvi"], dim="feature")
    y = geo_dataarray(obs.astype("float32"), COARSE, ["t"])
    kw = dict(n_estimators=10, radiance=radiance, keep_gaps=False, n_jobs=1, random_state=seed % 100)
    on = RandomForestSharpener(**kw).fit(X, y).predict(X).values
    off = RandomForestSharpener(residual_correction=False, **kw).fit(X, y).predict(X).values
    agg_on, _, _ = aggregate(on, FINE, COARSE, radiance=radiance, with_std=False)
    agg_off, _, _ = aggregate(off, FINE, COARSE, radiance=radiance, with_std=False)
    inner = (cover > 0.99) & np.isfinite(obs[0])
    err_on = np.abs(agg_on[0] - obs[0])[inner]
    err_off = np.abs(agg_off[0] - obs[0])[inner]
    scale = float(np.std(obs[0][inner])) + 0.05
    assert abs(float(np.mean((agg_on[0] - obs[0])[inner]))) < 0.05 * scale  # the mean is conserved
    assert err_on.mean() <= err_off.mean() + 1e-6 and err_on.mean() < 0.35 * scale


@st.composite
def calibration_rows(draw):
    n_sites = draw(st.integers(3, 9))
    years = draw(st.integers(1, 3))
    e = draw(st.floats(0.02, 0.08))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    ddt = rng.uniform(300, 2500, (n_sites, years))
    alt = e * np.sqrt(ddt) * rng.lognormal(0, 0.1, ddt.shape)
    sites = np.repeat(np.array([f"S{i:02d}" for i in range(n_sites)], dtype=object), years)
    perm = draw(st.permutations(list(range(n_sites * years))))
    return ddt.ravel(), alt.ravel(), sites, np.asarray(perm)


@FEW
@given(rows=calibration_rows())
def test_stefan_calibration_is_invariant_to_row_order(rows):
    ddt, alt, sites, perm = rows
    a = StefanCalibration(n_boot=200, random_state=1).fit(ddt, alt, sites)
    b = StefanCalibration(n_boot=200, random_state=1).fit(ddt[perm], alt[perm], sites[perm])
    assert a.e_ == b.e_
    assert a.e_ci95_ == b.e_ci95_ and a.e_sd_ == b.e_sd_
    assert a.loo_["rmse_m"] == b.loo_["rmse_m"] and a.loo_["n"] == b.loo_["n"]


@FEW
@given(seed=st.integers(0, 2**16), n=st.integers(1, 30), warm=st.floats(0, 20))
def test_ddt_is_monotone_in_temperature(seed, n, warm):
    rng = np.random.default_rng(seed)
    lst = rng.uniform(-25, 25, (n, 4, 5))
    days = rng.integers(1, 17, n).astype(float)
    base = ddt_from_composites(lst, days)
    delta = rng.uniform(0, warm, lst.shape) * (rng.random(lst.shape) < 0.5)
    warmer = ddt_from_composites(lst + delta, days)
    assert np.all(warmer >= base - 1e-9)
    # an independent value: pixel 0 summed by hand, composite by composite
    by_hand = sum(max(float(lst[k, 0, 0]), 0.0) * float(days[k]) for k in range(n))
    assert base[0, 0] == pytest.approx(by_hand, rel=1e-12, abs=1e-9)
    # frost does not count: cooling sub-zero composites changes nothing
    colder = np.where(lst < 0, lst - warm, lst)
    np.testing.assert_array_equal(ddt_from_composites(colder, days), base)
    # a hand-computed case: composites at -5, 3, 10 degC lasting 8, 8, 5 days -> 3*8 + 10*5 = 74 degC day
    hand = ddt_from_composites(np.array([-5.0, 3.0, 10.0]).reshape(3, 1, 1), np.array([8.0, 8.0, 5.0]))
    assert float(hand[0, 0]) == pytest.approx(74.0)
