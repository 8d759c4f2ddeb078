"""End to end on a synthetic scene: DDT cube + in-situ table -> screen -> Stefan E recovered."""

import numpy as np
import pytest

from gee_alt.cube import make_ddt_cube
from gee_alt.errors import GeeAltError
from gee_alt.grid import make_grid, rowcol_to_lonlat
from gee_alt.insitu.table import make_insitu_table
from gee_alt.science.sites import calibrate_from_cube, sample_ddt_at_sites

GRID = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (120, 90))
YEARS = list(range(2010, 2016))
E_TRUE = 0.045


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:90, 0:120]
    base = 900.0 + 8.0 * xx + 3.0 * yy  # smooth DDT gradient
    ddt = np.stack([base * (1 + 0.03 * k) for k in range(len(YEARS))]).astype(np.float32)
    dem = 4200.0 - 0.6 * xx + rng.normal(0, 0.5, (90, 120))
    dem[:, 90:] += 15.0 * (xx[:, 90:] - 90)  # steep slope on the east
    return make_ddt_cube(ddt, YEARS, GRID), dem, rng


def test_calibration_from_cube_recovers_e_and_drops_steep_sites():
    cube, dem, rng = _scene()
    recs, sites_rc = [], []
    for _ in range(30):
        r, c = int(rng.integers(10, 80)), int(rng.integers(10, 110))
        sites_rc.append((r, c))
    for k, (r, c) in enumerate(sites_rc):
        lon, lat = rowcol_to_lonlat(GRID, [r + 0.5], [c + 0.5])
        for yi, y in enumerate(YEARS):
            d = float(cube["ddt_degc_days"].values[yi, r, c])
            recs.append(
                dict(
                    site_id=f"S{k}",
                    lon=float(lon[0]),
                    lat=float(lat[0]),
                    year=y,
                    alt_m=E_TRUE * np.sqrt(d) + rng.normal(0, 0.05),
                )
            )
    recs.append(dict(site_id="S0", lon=recs[0]["lon"], lat=recs[0]["lat"], year=1999, alt_m=1.0))  # year not in cube
    table = make_insitu_table(recs)
    ddt = sample_ddt_at_sites(cube, table)
    r0, c0 = sites_rc[0]
    assert ddt[0] == pytest.approx(float(cube["ddt_degc_days"].values[0, r0, c0]))
    assert np.isnan(ddt[-1])
    res = calibrate_from_cube(table, cube, fields={"dem": dem}, n_boot=200, random_state=1)
    steep = [k for k, (r, c) in enumerate(sites_rc) if c + 3 >= 90]
    assert steep, "scene should hold steep sites"
    for k in range(30):
        rows = [i for i, rec in enumerate(recs[:-1]) if rec["site_id"] == f"S{k}"]
        assert all(res.keep[i] == (k not in steep) for i in rows)
        if k in steep:
            assert "dem_std" in res.reasons[rows[0]]
    assert not res.keep[-1] and "not in the DDT cube" in res.reasons[-1]
    cal = res.calibration
    assert abs(cal.e_ - E_TRUE) < 0.001 and cal.e_ci95_[0] < cal.e_ < cal.e_ci95_[1]
    assert cal.e_ci95_[1] - cal.e_ci95_[0] < 0.002  # (CI coverage is tested over many trials in test_stefan)
    d = res.to_dict()
    assert d["screen"]["n_kept"] == int(res.keep.sum()) and d["n_used"] == int(res.keep.sum())


def test_nothing_left_is_a_user_error():
    cube, dem, _ = _scene()
    table = make_insitu_table([dict(site_id="A", lon=0.0, lat=0.0, year=2010, alt_m=1.0)])
    with pytest.raises(GeeAltError, match="no in-situ row left"):
        calibrate_from_cube(table, cube)
