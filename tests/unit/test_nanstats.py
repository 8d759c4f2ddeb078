"""Warning-free NaN reductions equal numpy's, bit for bit, and never warn (safe in threads)."""

import warnings

import numpy as np
import pytest

from gee_alt.science.nanstats import nanmean_first_axis, nanmedian_first_axis


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equal_to_numpy_and_silent_on_all_nan_columns(dtype):
    rng = np.random.default_rng(5)
    a = (rng.normal(size=(7, 20, 30)) * 50).astype(dtype)
    a[rng.random(a.shape) < 0.5] = np.nan
    a[:, 3, :] = np.nan  # a row of never-observed pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median, mean = np.nanmedian(a, axis=0), np.nanmean(a, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m2, n2 = nanmedian_first_axis(a), nanmean_first_axis(a)
    np.testing.assert_array_equal(m2, median, strict=True)
    np.testing.assert_array_equal(n2, mean, strict=True)
    assert np.isnan(m2[3]).all() and np.isnan(n2[3]).all()


def test_hand_values():
    a = np.array([[1.0, np.nan], [3.0, np.nan], [8.0, np.nan]])
    np.testing.assert_array_equal(nanmedian_first_axis(a), [3.0, np.nan])
    np.testing.assert_array_equal(nanmean_first_axis(a), [4.0, np.nan])
