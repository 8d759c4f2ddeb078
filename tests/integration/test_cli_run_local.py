"""`gee-alt run --engine local` on an input directory, then the per-step commands on its run directory."""

import json
from pathlib import Path

import numpy as np
import pytest

from gee_alt.demo.ideal import IdealScene, IdealSpec, write_demo_inputs
from gee_alt.io import read_raster
from helpers.cli import assert_user_error, cli

YEARS = [2011, 2012, 2013, 2014]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inp")
    scene = IdealScene(IdealSpec(seed=5, years=tuple(YEARS), size_px=192))
    write_demo_inputs(scene, d / "inputs", d / "truth", YEARS, workers=1)
    return d


@pytest.fixture(scope="module")
def run_dir(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    code, stdout, err = cli(
        "run",
        "--engine",
        "local",
        "--inputs",
        inputs / "inputs",
        "--insitu",
        inputs / "inputs" / "insitu.csv",
        "--out",
        out,
        "--json",
        "--quiet",
    )
    assert code == 0, err
    res = json.loads(stdout)
    assert res["years"] == YEARS
    return out


def _truth_alt(inputs, year):
    return read_raster(inputs / "truth" / f"alt_{year}.tif").data[0]


def test_pooled_e_matches_the_worlds_e_at_the_sites(run_dir):
    """The pooled E against the world's own E (:data:`E_BY_CLASS`, ±3 % smooth variation) at the
    sites the calibration used, weighted by their rows: within 5 %."""
    cal = json.loads((run_dir / "calibration.json").read_text())
    scene = IdealScene(IdealSpec(seed=5, years=tuple(YEARS), size_px=192))
    st = scene.sites()
    e_true = scene.crop(scene.e_outer)
    idx = [int(p["site_id"][3:]) - 1 for p in cal["pairs"]]
    e_sites = float(np.mean([e_true[st["row"][i], st["col"][i]] for i in idx]))
    assert cal["E"] == pytest.approx(e_sites, rel=0.05)


def test_run_writes_the_documented_layout(run_dir):
    for y in YEARS:
        for rel in (f"ddt/ddt_{y}.tif", f"alt/alt_{y}.tif", f"alt/alt_sd_{y}.tif"):
            assert (run_dir / rel).exists()
    for rel in (
        "calibration.json",
        "validation.json",
        "manifest.json",
        "cube.nc",
        "report/report.md",
        "report/report.html",
        "trend/alt_trend_cm_per_yr.tif",
        "landcover.tif",
    ):
        assert (run_dir / rel).exists(), rel
    ddt = read_raster(run_dir / "ddt/ddt_2012.tif")
    assert ddt.descriptions == ["ddt_degc_days", "ddt_sd_degc_days", "n_obs", "clear_sky_fraction"]
    # thaw-season composites only: no freezing index, so no frost number and no permafrost mask
    assert not (run_dir / "permafrost").exists()
    assert ddt.tags["engine"] == "local" and ddt.tags["units"] == "degC day"


def test_alt_sd_covers_the_truth(run_dir, inputs):
    """The nominal 95 % interval ALT ± 1.96 sd contains the world's true ALT on 90-100 % of pixels."""
    alt, sd = read_raster(run_dir / "alt/alt_2012.tif").data[0], read_raster(run_dir / "alt/alt_sd_2012.tif").data[0]
    truth = _truth_alt(inputs, 2012)
    ok = np.isfinite(alt) & np.isfinite(sd) & np.isfinite(truth)
    assert ok.mean() > 0.95 and np.all(sd[ok] > 0)
    assert 0.90 <= np.mean(np.abs(alt[ok] - truth[ok]) <= 1.96 * sd[ok]) <= 1.0


def test_alt_against_the_worlds_truth(run_dir, inputs):
    """ALT against the world's true ALT (E(land cover)·√(true DDT)): RMSE under 12 % of the mean
    true ALT over the map, and under 20 % within every land-cover class that has a class E."""
    cal = json.loads((run_dir / "calibration.json").read_text())
    alt = read_raster(run_dir / "alt/alt_2013.tif").data[0]
    lc = read_raster(run_dir / "landcover.tif").data[0]
    truth = _truth_alt(inputs, 2013)
    ok = np.isfinite(alt) & np.isfinite(truth)
    assert np.sqrt(np.mean((alt[ok] - truth[ok]) ** 2)) < 0.12 * truth[ok].mean()
    for k in cal["E_by_class"]:
        m = ok & (lc == float(k))
        assert np.sqrt(np.mean((alt[m] - truth[m]) ** 2)) < 0.20 * truth[m].mean(), k


def test_alt_step_rewrites_the_runs_alt_bytes(run_dir, tmp_path):
    """``gee-alt alt`` on a copy of a finished run rewrites ALT, its sd (inflated outside the area
    of applicability), permafrost and the AOA byte for byte as ``gee-alt run`` wrote them."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    products = sorted(p.relative_to(run_dir) for p in (run_dir / "alt").glob("*.tif")) + [Path("aoa.tif")]
    assert (run_dir / "aoa.tif").exists() and len(products) >= 2 * len(YEARS) + 1
    for rel in products:
        (copy / rel).unlink()
    code, out, err = cli("alt", copy, "--json")
    assert code == 0, err
    for rel in products:
        assert (copy / rel).read_bytes() == (run_dir / rel).read_bytes(), rel


def test_step_commands_rerun_on_the_run_directory(run_dir, inputs):
    code, out, err = cli(
        "calibrate", run_dir, "--insitu", inputs / "inputs" / "insitu.csv", "--by-class", "no", "--json"
    )
    assert code == 0, err
    cal = json.loads(out)
    assert cal["E_by_class"] == {} and cal["E_ci95"][0] < cal["E"] < cal["E_ci95"][1]
    code, out, err = cli("alt", run_dir, "--json")
    # ALT and ALT sd per year, plus the E-source flag (pooled E everywhere with --by-class no)
    assert code == 0 and len(json.loads(out)["written"]) == 2 * len(YEARS) + 1
    src = read_raster(run_dir / "alt/e_source.tif").data[0]
    assert np.nanmax(src) == 0.0
    alt = read_raster(run_dir / "alt/alt_2013.tif").data[0]
    ddt = read_raster(run_dir / "ddt/ddt_2013.tif").data[0]
    np.testing.assert_allclose(alt, (cal["E"] * np.sqrt(ddt)).astype("float32"), rtol=1e-6, equal_nan=True)
    code, out, err = cli("validate", run_dir, "--json")
    assert code == 0 and json.loads(out)["insitu_loo"]["n"] > 10
    code, out, err = cli("trend", run_dir, "--json")
    assert code == 0 and json.loads(out)["years"] == YEARS


def test_run_refuses_to_mix_runs_and_bad_years(run_dir, inputs, tmp_path):
    assert_user_error(cli("run", "--engine", "local", "--inputs", inputs / "inputs", "--out", run_dir), "overwrite")
    assert_user_error(
        cli("run", "--engine", "local", "--inputs", inputs / "inputs", "--years", "1990-1991", "--out", tmp_path / "x"),
        "no inputs for year",
    )
    assert_user_error(
        cli("run", "--engine", "local", "--inputs", tmp_path / "nothing", "--out", tmp_path / "y"), "not found"
    )
    assert_user_error(cli("run", "--engine", "gpu", "--out", tmp_path / "z"), "--engine")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_rf_table_of_the_config_drives_the_local_engine_and_flags_override_it(inputs, tmp_path):
    """One forest settings block for both engines: ``run --engine local --config`` takes ``[rf]``,
    ``--trees``/``--seed`` override it (recorded in the resume settings, hence in the manifest)."""
    (tmp_path / "rf.toml").write_text("[rf]\nn_estimators = 7\nrandom_state = 3\n")
    out = tmp_path / "run"
    code, _, err = cli(
        "run",
        "--engine",
        "local",
        "--inputs",
        inputs / "inputs",
        "--out",
        out,
        "--config",
        tmp_path / "rf.toml",
        "--trees",
        "5",
        "--years",
        "2011-2013",
        "--workers",
        "1",
        "--quiet",
    )
    assert code == 0, err
    rf = json.loads((out / "manifest.json").read_text())["settings"]["rf"]
    assert rf["n_estimators"] == 5 and rf["random_state"] == 3 and rf["min_samples_leaf"] == 10


def test_alt_step_uses_the_disturbed_ground_e_from_the_start_year(run_dir, tmp_path):
    """A calibration with an E of disturbed ground (here set to 1.6 x E by hand): ``gee-alt alt``
    refuses to map without the disturbance years, rejects a bad MINES before writing, and with a
    raster of start years multiplies ALT by E_disturbed / E exactly from the start year on."""
    import shutil

    from gee_alt import runs
    from gee_alt.export.cog import write_cog

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    cal = json.loads((copy / "calibration.json").read_text())
    e = cal["E"]
    cal.update(E_disturbed=1.6 * e, E_disturbed_ci95=[1.5 * e, 1.7 * e], resid_E_sd_disturbed=0.0)
    (copy / "calibration.json").write_text(json.dumps(cal))
    assert_user_error(cli("alt", copy), "--disturbance")
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]}))
    before = {y: runs.alt_path(copy, y).read_bytes() for y in YEARS}
    assert_user_error(cli("alt", copy, "--disturbance", bad), "start_year")
    assert all(runs.alt_path(copy, y).read_bytes() == b for y, b in before.items())
    grid = read_raster(runs.alt_path(run_dir, YEARS[0])).grid
    start = np.zeros((192, 192), "float32")
    start[40:80, 40:80] = 2013
    mines = tmp_path / "mines.tif"
    write_cog(mines, start, grid)
    code, out, err = cli("alt", copy, "--disturbance", mines, "--quiet")
    assert code == 0, err
    src = read_raster(runs.e_source_path(copy)).data
    pooled = src[0] == 0  # pixels on the pooled E (not a class E) before their start year
    for y in YEARS:
        old = read_raster(runs.alt_path(run_dir, y)).data[0]
        new = read_raster(runs.alt_path(copy, y)).data[0]
        dug = (start > 0) & (start <= y)
        np.testing.assert_array_equal(new[~dug], old[~dug])
        m = dug & pooled & np.isfinite(old)
        if y >= 2013:
            assert m.sum() > 100
            np.testing.assert_allclose(new[m], old[m] * 1.6, rtol=1e-5)
        else:
            assert not dug.any()
    assert np.all(src[1][(start > 0) & np.isfinite(src[0])] == 2013) and np.all(np.isnan(src[1][start == 0]))
