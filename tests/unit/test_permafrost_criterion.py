"""The permafrost criterion fitted on drill holes (presence/absence): a known threshold is
recovered within its CI, bad tables are refused in one line, and the downstream uses the fitted
threshold only when asked and when the holes exist."""

import numpy as np
import pytest
from pyproj import Transformer

from gee_alt import downstream, runs
from gee_alt.cube import make_ddt_cube
from gee_alt.errors import GeeAltError
from gee_alt.grid import make_grid
from gee_alt.science.permafrost import FrostNumberThreshold, read_boreholes

F50_TRUE, SLOPE_TRUE = 0.46, 60.0


def _holes(seed: int, n_holes: int = 200, n_years: int = 10):
    """Holes with a climate frost number uniform in 0.36-0.56, permafrost drawn from a logistic
    law with F50 = 0.46, and each year's F the climate one plus weather noise (sd 0.01)."""
    rng = np.random.default_rng(seed)
    f_clim = rng.uniform(0.36, 0.56, n_holes)
    present = rng.uniform(size=n_holes) < 1 / (1 + np.exp(-SLOPE_TRUE * (f_clim - F50_TRUE)))
    f_year = f_clim[:, None] + 0.01 * rng.standard_normal((n_holes, n_years))
    groups = np.repeat(np.arange(n_holes), n_years)
    return f_year.ravel(), np.repeat(present, n_years), groups


def test_a_known_threshold_is_recovered_within_its_ci():
    hits, widths = 0, []
    for seed in range(10):  # fast: Newton fits
        f, y, g = _holes(seed)
        m = FrostNumberThreshold(n_boot=300, random_state=seed).fit(f, y, g)
        lo, hi = m.f50_ci95_
        hits += lo <= F50_TRUE <= hi
        widths.append(hi - lo)
        assert abs(m.f50_ - F50_TRUE) < 0.02
    assert hits >= 8  # a 95 % CI: 10 of 10 expected, 8 allowed
    assert np.median(widths) < 0.03
    assert m.n_holes_ == 200 and m.n_obs_ == 2000


def test_the_ci_resamples_holes_not_hole_years():
    """Repeating each hole's year 10 times does not make the threshold 3x more certain."""
    f, y, g = _holes(3, n_years=1)
    one = FrostNumberThreshold(n_boot=300).fit(f, y, g)
    ten = FrostNumberThreshold(n_boot=300).fit(np.repeat(f, 10), np.repeat(y, 10), np.repeat(g, 10))
    w1, w10 = np.diff(one.f50_ci95_)[0], np.diff(ten.f50_ci95_)[0]
    assert w10 > 0.7 * w1


def test_predict_maps_at_and_above_the_threshold_and_keeps_unknown():
    f, y, g = _holes(0)
    m = FrostNumberThreshold(n_boot=50).fit(f, y, g)
    out = m.predict(np.array([m.f50_ - 0.01, m.f50_ + 0.01, np.nan]))
    assert out[0] == 0 and out[1] == 1 and np.isnan(out[2])


def test_too_few_holes_with_or_without_permafrost_is_refused():
    f = np.linspace(0.4, 0.5, 20)
    y = np.zeros(20, bool)
    y[-3:] = True
    with pytest.raises(GeeAltError, match="at least 5 drill holes"):
        FrostNumberThreshold().fit(f, y)


def test_presence_falling_with_frost_number_is_refused():
    f = np.linspace(0.4, 0.5, 40)
    with pytest.raises(GeeAltError, match="no threshold"):
        FrostNumberThreshold().fit(f, f < 0.45)


def test_bad_borehole_table_is_refused_in_one_line(tmp_path):
    p = tmp_path / runs.BOREHOLES_CSV
    p.write_text("site_id,lon,lat,year,permafrost\nA,99.1,38.1,2005,maybe\n")
    with pytest.raises(GeeAltError) as e:
        read_boreholes(p)
    assert "line 2" in str(e.value) and "\n" not in str(e.value)
    p.write_text("site_id,lon,lat,year\nA,99.1,38.1,2005\n")
    with pytest.raises(GeeAltError, match="permafrost"):
        read_boreholes(p)


# ------------------------------------------------------------------- downstream
GRID = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (40, 20))
YEARS = [2010, 2011, 2012]


def _cube(criterion: str | None = None):
    """F rises from 0.36 (column 0) to 0.56 (column 39); DDT 1600 everywhere."""
    f = np.linspace(0.36, 0.56, 40)[None, None, :] * np.ones((3, 20, 40))
    ddt = np.full((3, 20, 40), 1600.0)
    ddf = ddt * (f / (1 - f)) ** 2
    cube = make_ddt_cube(ddt, YEARS, GRID, ddf_degc_days=ddf, engine="local")
    if criterion:
        cube.attrs["permafrost_criterion"] = criterion
    return cube, f[0]


def _write_holes(folder, f_map, seed=0):
    """Holes on every second pixel, permafrost where the map's F >= 0.46 (a sharp boundary)."""
    to_ll = Transformer.from_crs("EPSG:32647", "EPSG:4326", always_xy=True)
    lines = ["site_id,lon,lat,year,permafrost"]
    k = 0
    for r in range(0, 20, 2):
        for c in range(0, 40, 2):
            lon, lat = to_ll.transform(600_000.0 + 30 * c + 15, 4_200_000.0 - 30 * r - 15)
            lines.append(f"H{k},{lon:.7f},{lat:.7f},2011,{'true' if f_map[r, c] >= F50_TRUE else 'false'}")
            k += 1
    (folder / runs.BOREHOLES_CSV).write_text("\n".join(lines) + "\n")


def test_downstream_fits_the_threshold_on_holes_next_to_the_insitu_table(tmp_path):
    cube, f = _cube()
    _write_holes(tmp_path, f)
    crit = downstream.permafrost_criterion(cube, tmp_path / "insitu.csv")
    assert crit["n_holes"] == 200 and crit["boreholes_file"] == runs.BOREHOLES_CSV
    # a sharp boundary between the columns at F 0.456 and 0.4611
    assert 0.455 <= crit["frost_number_min"] <= 0.462


def test_downstream_keeps_the_configured_threshold_without_holes_or_when_told(tmp_path):
    cube, f = _cube()
    crit = downstream.permafrost_criterion(cube, tmp_path / "insitu.csv")
    assert crit["frost_number_min"] == 0.5 and "no permafrost_boreholes.csv" in crit["rule"]
    _write_holes(tmp_path, f)
    cube, _ = _cube("frost_number")
    crit = downstream.permafrost_criterion(cube, tmp_path / "insitu.csv")
    assert crit["frost_number_min"] == 0.5 and "frost_number" in crit["rule"]


@pytest.mark.parametrize("criterion", ["frost_number", "boreholes"])
def test_the_configured_rule_travels_with_the_runs_ddt_files(tmp_path, criterion):
    """A run's DDT COGs carry its permafrost rule (config ``season.permafrost_criterion``), so
    ``gee-alt calibrate``/``alt`` on the run directory decide permafrost by the same rule; files
    without the tag take the default."""
    cube, f = _cube()
    run = tmp_path / "run"
    for i, y in enumerate(YEARS):
        runs.write_ddt_year(
            run,
            y,
            cube["ddt_degc_days"].values[i],
            GRID,
            ddf_degc_days=cube["ddf_degc_days"].values[i],
            engine="local",
            method="test",
            season="",
            extra_tags=runs.permafrost_rule_tags(criterion, True),
        )
    back = runs.read_ddt_cube(run, extras=("ddf_degc_days",))
    assert back.attrs["permafrost_criterion"] == criterion and back.attrs["permafrost_shift_weights"] == 1
    assert "frost_number" in back and "ddt_sd_degc_days" not in back
    _write_holes(tmp_path, f)
    crit = downstream.permafrost_criterion(back, tmp_path / "insitu.csv")
    if criterion == "frost_number":  # told to keep the configured threshold although holes exist
        assert crit["frost_number_min"] == 0.5 and "frost_number" in crit["rule"]
    else:  # the threshold fitted on the holes decides, no presence model
        assert 0.455 <= crit["frost_number_min"] <= 0.462 and "presence_model" not in crit
