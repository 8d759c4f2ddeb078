"""Site sampling by windowed reads (issue 12 item 3) equals sampling the whole cube in memory."""

import warnings

import numpy as np
import pytest

from gee_alt.cube import make_ddt_cube
from gee_alt.grid import make_grid, rowcol_to_lonlat
from gee_alt.insitu.table import make_insitu_table
from gee_alt.science.homogeneity import site_heterogeneity
from gee_alt.science.sites import calibrate_from_cube, sample_ddt_at_sites

GRID = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (70, 50))
YEARS = [2010, 2011, 2012, 2013]


def _scene(seed=3):
    rng = np.random.default_rng(seed)
    ddt = rng.uniform(500, 1500, (len(YEARS), 50, 70)).astype("float32")
    ddt[rng.random(ddt.shape) < 0.1] = np.nan  # gaps: the window means skip them
    ddt[:, 20:23, 30:33] = np.nan
    dem = 4300 + rng.normal(0, 3, (50, 70))
    # sites: inside, on the edges (windows partly off the grid), in the NaN block, off the grid
    rcs = [(10, 10), (0, 5), (49, 69), (21, 31), (25, 0), (5, 68), (-20, 10)]
    recs = []
    for k, (r, c) in enumerate(rcs):
        lon, lat = rowcol_to_lonlat(GRID, [r + 0.5], [c + 0.5])
        for y in YEARS + [2020]:  # 2020: not in the cube
            recs.append(dict(site_id=f"S{k}", lon=float(lon[0]), lat=float(lat[0]), year=y, alt_m=1.5))
    return make_ddt_cube(ddt, YEARS, GRID), dem, make_insitu_table(recs), rcs


def _reference(ddt, table, rcs, radius):
    """In memory, by hand: the mean of the finite values of the (2r+1)² window in the row's year."""
    out = []
    for i, y in enumerate(table.year):
        r, c = rcs[int(str(table.site_id[i])[1:])]
        if int(y) not in YEARS:
            out.append(np.nan)
            continue
        a = ddt[YEARS.index(int(y))]
        vals = [
            a[rr, cc]
            for rr in range(r - radius, r + radius + 1)
            for cc in range(c - radius, c + radius + 1)
            if 0 <= rr < a.shape[0] and 0 <= cc < a.shape[1] and np.isfinite(a[rr, cc])
        ]
        out.append(np.mean(np.asarray(vals, float)) if vals else np.nan)
    return np.array(out)


@pytest.mark.parametrize("radius", [0, 1, 3])
def test_windowed_sampling_equals_the_whole_cube_in_memory(radius):
    cube, _, table, rcs = _scene()
    ref = _reference(cube["ddt_degc_days"].values, table, rcs, radius)
    got = sample_ddt_at_sites(cube, table, radius_px=radius)
    lazy = sample_ddt_at_sites(cube.chunk({"year": 1, "y": 16, "x": 16}), table, radius_px=radius)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert np.array_equal(got, lazy, equal_nan=True)  # a dask-backed cube gives the same bytes
    assert np.isnan(got[table.year == 2020]).all() and np.isfinite(got[:4]).all()


def test_screen_on_windows_equals_the_screen_on_the_whole_mean_ddt_map():
    cube, dem, table, _ = _scene()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_ddt = np.nanmean(np.asarray(cube["ddt_degc_days"].values, float), axis=0)  # the old way
    full = site_heterogeneity({"ddt": mean_ddt, "dem": dem}, GRID, table.lon, table.lat, radius_px=3)
    thresholds = {"ddt_cv": 0.3, "dem_std": 50.0}
    a = calibrate_from_cube(table, cube, fields={"dem": dem}, thresholds=thresholds, n_boot=50)
    b = calibrate_from_cube(
        table, cube.chunk({"year": 1, "y": 8, "x": 8}), fields={"dem": dem}, thresholds=thresholds, n_boot=50
    )
    assert list(a.heterogeneity)[: len(full)] == list(full)  # same metrics, same order
    for k, v in full.items():
        assert np.array_equal(a.heterogeneity[k], v, equal_nan=True), k
        assert np.array_equal(b.heterogeneity[k], v, equal_nan=True), k
    assert np.array_equal(a.ddt_degc_days, b.ddt_degc_days, equal_nan=True)
    assert np.array_equal(a.keep, b.keep) and a.reasons == b.reasons
    assert a.calibration.e_ == b.calibration.e_
