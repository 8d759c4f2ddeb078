"""Issue 12: the demo's scores are summed a year at a time with bounded memory; the sums must not
depend on how the pixel-years are grouped, and must equal the scores of the whole stack."""

import numpy as np

from gee_alt.demo.scoring import _Moments, _StratumSums, at_pixels, metrics
from gee_alt.science.applicability import map_error_estimate


def _errors(seed=0, n=(6, 50_000)):
    rng = np.random.default_rng(seed)
    e = (rng.standard_normal(n) * rng.choice([1e-3, 0.2, 30.0], size=n)).astype("float32")
    e[rng.random(n) < 0.1] = np.nan
    return e


def test_moments_equal_the_whole_stack_and_ignore_the_grouping():
    e = _errors()
    whole = metrics(e)
    by_year = _Moments.merged(_Moments.of(row) for row in e)
    pieces = np.array_split(np.random.default_rng(1).permutation(e.ravel()), 7)
    shuffled = _Moments.merged(_Moments.of(p) for p in pieces)
    a, b = by_year.metrics(), shuffled.metrics()
    assert a == b  # exact sums: any grouping, the same bits
    assert a["n"] == whole["n"] == int(np.isfinite(e).sum())
    np.testing.assert_allclose([a["rmse"], a["bias"]], [whole["rmse"], whole["bias"]], rtol=1e-12)
    # against an independent exact computation (Python fractions of the float32 values)
    from fractions import Fraction

    fin = [Fraction(float(v)) for v in e.ravel()[np.isfinite(e.ravel())][:5000]]
    m = _Moments.of(e.ravel()[np.isfinite(e.ravel())][:5000]).metrics()
    assert m["bias"] == float(sum(fin) / len(fin))
    assert m["rmse"] == float(np.sqrt(float(sum(f * f for f in fin) / len(fin))))


def test_empty_moments_are_nan_like_metrics():
    m = _Moments.merged([_Moments.of(np.array([np.nan], "float32")), _Moments()]).metrics()
    assert m["n"] == 0 and np.isnan(m["rmse"]) and np.isnan(m["bias"])


def test_stratum_sums_match_map_error_estimate_year_by_year():
    rng = np.random.default_rng(3)
    ddt = (rng.random((4, 60, 70)) * 1500 - 50).astype("float32")
    ddt[rng.random(ddt.shape) < 0.2] = np.nan
    inside = rng.random((60, 70)) < 0.7
    want = map_error_estimate(ddt, inside, 0.0004, 0.0011)
    acc = _StratumSums(inside)
    for year in ddt:
        acc.add(np.asarray(year, float))
    got = acc.map_error(0.0004, 0.0011)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12)
        assert np.isfinite(got[k])


def test_at_pixels_reads_the_same_values_as_the_whole_layer():
    rng = np.random.default_rng(5)
    lst = rng.random((3, 40, 30)).astype("float32")
    idx = np.sort(rng.choice(1200, 100, replace=False))
    np.testing.assert_array_equal(at_pixels(lst, idx), lst.reshape(3, -1)[:, idx])
    np.testing.assert_array_equal(at_pixels(lst[0], idx)[0], lst[0].ravel()[idx])


def test_pixel_order_mean_of_one_year_equals_the_stacked_mean():
    """The trend scores read the truth a year at a time; their area means keep the bits of
    ``np.nanmean(stack[:, mask], axis=1)`` on the whole stack."""
    from gee_alt.demo.scoring import _pixel_order_nanmean

    rng = np.random.default_rng(7)
    stack = (rng.random((6, 90_000)) * 2.5).astype("float32")
    stack[rng.random(stack.shape) < 0.05] = np.nan
    mask = rng.random(90_000) < 0.6
    want = np.nanmean(stack[:, mask], axis=1)
    got = np.array([_pixel_order_nanmean(row[mask]) for row in stack])
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)
