"""Whole-grid maps computed by row blocks (issue 12, memory independent of the extent): the same
values as on the whole grid, whatever the block size."""

import numpy as np
import pytest

from gee_alt.applicability_run import _draw_mapped, _in_classes
from gee_alt.science.permafrost_probability import static_predictors
from gee_alt.science.terrain import aspect_components, by_row_blocks, slope_deg


def _dem(h=53, w=41, seed=3):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    dem = (300 + 40 * np.sin(y / 7.0) * np.cos(x / 5.0) + rng.normal(0, 2, (h, w))).astype("float32")
    dem[5:8, 10:13] = np.nan  # a hole: NaN derivatives around it
    return dem


@pytest.mark.parametrize("rows", [1, 2, 7, 52, 53, 1000])
def test_derivatives_by_row_blocks_equal_the_whole_grid(rows):
    dem = _dem()
    for fn in (lambda d: slope_deg(d, 30.0), lambda d: aspect_components(d, 30.0)[0]):
        whole = fn(dem)
        blocks = by_row_blocks(fn, dem, rows)
        assert blocks.dtype == whole.dtype == np.float32
        assert np.array_equal(blocks, whole, equal_nan=True)
    assert np.isnan(slope_deg(dem, 30.0)).any() and np.isfinite(slope_deg(dem, 30.0)).any()


def test_static_predictors_do_not_depend_on_the_block_size(monkeypatch):
    import gee_alt.science.terrain as terrain

    dem, ndvi = _dem(), np.linspace(0, 1, 53 * 41, dtype="float32").reshape(53, 41)
    a = static_predictors(dem, ndvi, 30.0)
    monkeypatch.setattr(terrain, "BLOCK_ROWS", 3)
    b = static_predictors(dem, ndvi, 30.0)
    assert a.keys() == b.keys() == {"elevation_m", "slope_deg", "northness", "ndvi_mean"}
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=True), k
    assert np.array_equal(a["slope_deg"], slope_deg(dem, 30.0), equal_nan=True)  # the whole-grid values


@pytest.mark.parametrize("seed", range(5))
def test_draw_over_mapped_pixels_is_the_whole_grid_draw(seed):
    """The NNDM prediction points: drawn among the mapped pixels only, the same pixels as the draw
    over the whole grid with probability ∝ mapped years (0 elsewhere)."""
    rng = np.random.default_rng(seed)
    h, w = 61, 47
    mapped = rng.integers(0, 26, (h, w)).astype("int16")
    mapped[rng.random((h, w)) < 0.4] = 0
    pred = [rng.normal(size=(h, w)), rng.normal(size=(h, w)).astype("float32")]
    pred[1][rng.random((h, w)) < 0.1] = np.nan
    for n in (1, 300, 10_000):
        weights = mapped.ravel().astype(float) * (np.isfinite(pred[0]) & np.isfinite(pred[1])).ravel()
        size = min(n, int((weights > 0).sum()))
        whole = np.random.default_rng(0).choice(weights.size, size=size, replace=False, p=weights / weights.sum())
        assert np.array_equal(_draw_mapped(mapped, pred, n), whole)
    assert _draw_mapped(np.zeros((h, w), "int16"), pred, 10) is None


def test_in_classes_by_row_blocks(monkeypatch):
    import gee_alt.applicability_run as ar

    rng = np.random.default_rng(1)
    lc = rng.integers(1, 6, (70, 9)).astype("float32")
    lc[rng.random(lc.shape) < 0.2] = np.nan
    monkeypatch.setattr(ar, "AOA_ROWS", 4)
    got = _in_classes(lc, [2, 5, -1])
    assert np.array_equal(got, np.isin(np.nan_to_num(lc, nan=-1).astype(int), [2, 5, -1]))


@pytest.mark.parametrize("r0, r1", [(0, 1), (0, 53), (10, 11), (20, 37), (52, 53), (40, 53)])
def test_static_rows_are_the_rows_of_the_whole_grid(r0, r1):
    from gee_alt.science.permafrost_probability import static_rows

    dem, ndvi = _dem(), np.linspace(0, 1, 53 * 41, dtype="float32").reshape(53, 41)
    whole = static_predictors(dem, ndvi, 30.0)
    rows = static_rows(dem, ndvi, 30.0, r0, r1)
    assert rows.keys() == whole.keys()
    for k in whole:
        assert np.array_equal(rows[k], whole[k][r0:r1], equal_nan=True), k
    assert static_rows(None, ndvi, 30.0, r0, r1).keys() == {"ndvi_mean"}
