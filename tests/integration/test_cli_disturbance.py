"""`gee-alt disturbance RUN --mines MINES`: a run directory with a known step effect; bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gee_alt import runs
from gee_alt.export.cog import write_cog
from gee_alt.grid import make_grid
from helpers.cli import assert_user_error, cli

YEARS = list(range(2000, 2012))
GRID = make_grid("EPSG:32647", (30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0), (90, 90))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """ALT = 1 m + elevation term + common yearly weather + noise; pixels dug in 2005 get +0.4 m
    from 2006 on (a known effect), permafrost (ALT) lost on a 3 x 3 corner of the mine after 2005."""
    d = tmp_path_factory.mktemp("dist")
    r = d / "run"
    rng = np.random.default_rng(0)
    yy, _ = np.mgrid[0:90, 0:90]
    dem = 4000.0 + 2.0 * yy
    start = np.zeros((90, 90), "float32")
    start[40:52, 40:52] = 2005
    weather = rng.normal(0, 0.05, len(YEARS))
    for i, y in enumerate(YEARS):
        a = 1.0 + 0.001 * (dem - 4000.0) + weather[i] + rng.normal(0, 0.03, dem.shape)
        if y >= 2006:
            a[start > 0] += 0.4
            a[40:43, 40:43] = np.nan
        write_cog(runs.alt_path(r, y), a.astype("float32"), GRID)
    write_cog(runs.dem_path(r), dem.astype("float32"), GRID)
    write_cog(d / "mine.tif", start, GRID)
    return r


def test_known_effect_within_its_ci(run):
    code, out, err = cli("disturbance", run, "--mines", run.parent / "mine.tif", "--buffer-m", "300", "--json")
    assert code == 0, err
    res = json.loads(out)
    lo, hi = res["effect_alt_ci95_m"]
    assert lo <= 0.4 <= hi and abs(res["effect_alt_m"] - 0.4) < 0.05
    assert res["before"] == list(range(2000, 2005)) and res["after"] == list(range(2006, 2012))
    assert res["impact_pixels"] == 144 and res["impact_pixels_used"] == 144 - 9
    assert json.loads((run / "disturbance.json").read_text())["effect_alt_m"] == res["effect_alt_m"]


def test_bad_inputs_exit_2_with_one_line(run, tmp_path):
    assert_user_error(cli("disturbance", run, "--mines", tmp_path / "none.geojson"), "not found")
    bad = tmp_path / "m.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]}))
    assert_user_error(cli("disturbance", run, "--mines", bad), "start_year")
    empty = tmp_path / "empty.tif"
    write_cog(empty, np.zeros((90, 90), "float32"), GRID)
    assert_user_error(cli("disturbance", run, "--mines", empty), "no disturbed pixel")
    mine = run.parent / "mine.tif"
    assert_user_error(cli("disturbance", run, "--mines", mine, "--before-last", "2010"), "before the first disturbance")
    assert_user_error(cli("disturbance", run, "--mines", mine, "--after-first", "2030"), "do not span")
    assert_user_error(cli("disturbance", run, "--mines", run.parent / "mine.tif", "--buffer-m", "-1"), "--buffer-m")


def test_bad_mines_for_the_alt_model_exit_2_and_write_nothing(tmp_path):
    """``gee-alt run --disturbance MINES``: an unusable MINES stops the run before anything is written."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    out = tmp_path / "out"
    bad = tmp_path / "m.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]}))
    late = tmp_path / "late.geojson"
    feat = {"type": "Feature", "properties": {"start_year": 1200}, "geometry": None}
    late.write_text(json.dumps({"type": "FeatureCollection", "features": [feat]}))
    empty = tmp_path / "empty.tif"
    write_cog(empty, np.zeros((90, 90), "float32"), GRID)
    for mines, why in (
        (tmp_path / "none.geojson", "not found"),
        (bad, "start_year"),
        (late, "not a plausible year"),
        (empty, "no disturbed pixel"),
    ):
        args = ("run", "--engine", "local", "--inputs", inputs, "--out", out, "--disturbance", mines)
        assert_user_error(cli(*args), why)
        assert not out.exists()
    noraster = tmp_path / "x.tif"
    noraster.write_text("not a raster")
    assert_user_error(cli("run", "--inputs", inputs, "--out", out, "--disturbance", noraster), "readable raster")
    assert not out.exists()


def test_several_impact_masks_in_one_pass_give_each_call_s_result(run):
    """``disturbance_runs`` on several impact masks (one pass over the maps, one set of strata)
    gives each ``disturbance_run`` call's result, or the error it raises."""
    from gee_alt.disturbance_run import control_strata_of_run, disturbance_run, disturbance_runs
    from gee_alt.errors import GeeAltError
    from gee_alt.pipeline import read_alt_maps

    mines = run.parent / "mine.tif"
    part = np.zeros((90, 90), bool)
    part[44:52, :] = True
    lost = np.zeros((90, 90), bool)
    lost[40:43, 40:43] = True  # no ALT after 2005 there
    masks = [None, part, lost]
    maps = read_alt_maps(run)
    strata = control_strata_of_run(run, mines, maps.grid)
    got = disturbance_runs(run, mines, masks, maps=maps, strata=strata)
    assert isinstance(got[2], GeeAltError)
    for mask, g in zip(masks, got, strict=True):
        try:
            ref = disturbance_run(run, mines, impact_mask=mask, write=False)
        except GeeAltError as exc:
            assert str(g) == str(exc)
        else:
            assert g == ref
