"""The world's daily pass gives every pixel the same bits wherever it sits (the tiled generator's
byte identity rests on it): float32 BLAS does not (its kernels depend on the shape, the column's
place in it and the CPU), so the pass combines its basis in exact fixed point."""

from __future__ import annotations

import numpy as np
import pytest

from gee_alt.demo.realistic import ground


def _lincomb(coef, basis):
    coef_q = ground.quantize(coef, ground.COEF_QUANTUM)
    basis_q = ground.quantize(basis, ground.BASIS_QUANTUM)
    ground.exact_sum_bound(coef_q, basis)
    out = np.empty((coef.shape[0], basis.shape[1]), "float32")
    ground.exact_lincomb(coef_q, basis_q, np.empty(out.shape, "float64"), out)
    return out


def test_a_pixels_bits_do_not_depend_on_its_place_or_the_call_shape():
    rng = np.random.default_rng(0)
    coef = (rng.normal(size=(16, 28)) * 3).astype("float32")
    basis = rng.uniform(-1, 1, size=(28, 4099)).astype("float32")
    whole = _lincomb(coef, basis)
    for p0, p1 in ((0, 1), (1, 4), (3, 67), (100, 1123), (2050, 4099), (4098, 4099)):
        np.testing.assert_array_equal(_lincomb(coef, basis[:, p0:p1]), whole[:, p0:p1])
        np.testing.assert_array_equal(_lincomb(coef[5:9], basis[:, p0:p1]), whole[5:9, p0:p1])
    # and it is the linear combination, to float32's precision
    ref = coef.astype("float64") @ basis.astype("float64")
    np.testing.assert_allclose(whole, ref, rtol=0, atol=2e-5 * np.abs(ref).max())


def test_the_exact_bound_is_enforced():
    coef = np.full((2, 3), 200.0, "float32")
    basis = np.ones((3, 5), "float32")
    with pytest.raises(ValueError, match="exact bound"):
        _lincomb(coef, basis)
