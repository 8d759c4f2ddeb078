"""Both engines end in the same products: ``run --engine ee`` through the stub pixel server
(serving a local run's DDT cube and site fields, i.e. test data, never Earth Engine results)
writes the same files as ``run --engine local``, with identical calibration and ALT."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from rasterio.warp import transform_bounds

from gee_alt import runs
from gee_alt.config import load_config
from gee_alt.grid import bounds, same_grid
from gee_alt.io import read_raster
from helpers.cli import cli
from helpers.ee import StubServer
from helpers.robust import YEARS, demo_inputs

PRODUCT_KINDS = ("ddt", "alt", "trend", "report")


def product_set(run) -> set[str]:
    """Relative paths of every product of a run (report figures by name)."""
    return {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}


# The EE windows of these runs: 8-day steps from 02-26 (day of year 57 = 1 + 7 x 8, before any
# 29 February) land on the synthetic world's composites (days 1 + 8k) in leap and common years
# alike, through the year's end, so every knot of the local engine's thaw-progress curve is an EE
# knot and the served medians reproduce it (the local season's first composite differs by year:
# its middle day must fall on or after 03-01).
EE_SEASON = '[season]\nthaw_start = "02-26"\nthaw_end = "12-31"\n'


def ee_toml(grid, bbox) -> str:
    """The EE run's config on the local run's grid (see :data:`EE_SEASON`)."""
    w, s, e, n = bbox
    return (
        f"[study]\nyears = [{YEARS[0]}, {YEARS[-1]}]\n[aoi]\nbbox = [{w}, {s}, {e}, {n}]\n"
        f'[grid]\ncrs = "{grid["crs"]}"\norigin_offset_m = 0.0\n[pull]\ninitial_delay_s = 0.0\n{EE_SEASON}'
    )


def served_thaw_fractions(inputs, cfg):
    """The stub's answer to a year's thaw-progress request: the local engine's curve for the same
    inputs (its season plan, unrounded) at the EE knots ``fKK`` — test data standing for the
    server's area medians, never Earth Engine results."""
    from gee_alt.engines.ee import composite, thaw
    from gee_alt.engines.local.engine import LocalEngineParams
    from gee_alt.engines.local.layout import InputLayout
    from gee_alt.engines.local.season import composite_key, lst_climatology, plan_season

    layout = InputLayout(inputs)
    climatology = lst_climatology(layout, list(YEARS))

    def answer(year):
        comp = layout.modis_lst(year)
        curve = plan_season(comp, climatology.get(composite_key(comp)), LocalEngineParams()).fraction_by_doy
        windows = composite.lst_windows(year, cfg.season.thaw_start, cfg.season.thaw_end, cfg.season.lst_step_days)
        knots = thaw.thaw_fraction_knots(windows)
        return {f"f{k:02d}": float(curve[int(x) - 1]) for k, x in enumerate(knots[1:])}

    return answer


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """A local run on the small synthetic layout without its land-cover map (the EE engine has none)."""
    d = tmp_path_factory.mktemp("parity")
    inputs = d / "inputs"
    shutil.copytree(demo_inputs(tmp_path_factory), inputs)
    runs.landcover_path(inputs).unlink()
    code, out, err = cli(
        "run",
        "--engine",
        "local",
        "--inputs",
        inputs,
        "--out",
        d / "local",
        "--workers",
        "1",
        "--trees",
        "10",
        "--quiet",
    )
    assert code == 0, err
    return d / "local", inputs


def test_ee_run_writes_the_same_products_as_the_local_run(ee_offline, monkeypatch, tmp_path, local_run):
    from gee_alt.engines.ee import session

    local, inputs = local_run
    grid = read_raster(runs.dem_path(local)).grid
    left, b, r, t = bounds(grid)
    w, s, e, n = transform_bounds(grid["crs"], "EPSG:4326", left + 9, b + 9, r - 9, t - 9, densify_pts=21)
    (tmp_path / "s.toml").write_text(ee_toml(grid, (w, s, e, n)))
    cfg = load_config(tmp_path / "s.toml")
    assert same_grid(cfg.grid(), grid)  # the EE grid is the local run's grid

    def served(year, g):
        if year == 0:
            return np.stack(
                [read_raster(runs.dem_path(local)).data[0], read_raster(runs.ndvi_mean_path(local)).data[0]]
            )
        return read_raster(runs.ddt_path(local, year)).data[:4]  # DDT, sd, n_obs, DDF (the EE layers)

    monkeypatch.setattr(session, "initialize", lambda *a, **k: None)
    stub = StubServer(grid, arrays=served, fractions=served_thaw_fractions(inputs, cfg)).install(monkeypatch)
    code, out, err = cli(
        "run",
        "--engine",
        "ee",
        "--config",
        tmp_path / "s.toml",
        "--project",
        "p",
        "--insitu",
        runs.insitu_csv_path(inputs),
        "--out",
        tmp_path / "ee",
        "--quiet",
    )
    assert code == 0, err
    ee_run = tmp_path / "ee"
    assert set(stub.pixel_calls) == {0, *YEARS}  # every year and the site fields, once each
    assert stub.fraction_calls == {y: 1 for y in YEARS}  # one thaw-progress request per year
    for y in YEARS:  # the EE knots carry the local engine's thaw-progress curve into the cube
        tag = "ddt_fraction_by_doy"
        assert read_raster(runs.ddt_path(ee_run, y)).tags[tag] == read_raster(runs.ddt_path(local, y)).tags[tag]
    assert product_set(ee_run) == product_set(local)
    for kind in PRODUCT_KINDS:
        assert any(p.startswith(kind + "/") for p in product_set(ee_run)), kind
    cal_l, cal_e = (json.loads((r / runs.CALIBRATION).read_text()) for r in (local, ee_run))
    assert (
        cal_e["E"] == cal_l["E"]
        and cal_e["pairs"] == cal_l["pairs"]
        and cal_e["screen_fields"] == cal_l["screen_fields"]
        and {"ddt", "dem", "ndvi"} <= set(cal_e["screen_fields"])
    )
    for y in YEARS:
        np.testing.assert_array_equal(
            read_raster(runs.alt_path(ee_run, y)).data, read_raster(runs.alt_path(local, y)).data
        )
        assert read_raster(runs.alt_path(ee_run, y)).tags["engine"] == "ee"
    np.testing.assert_array_equal(
        read_raster(runs.trend_slope_path(ee_run)).data, read_raster(runs.trend_slope_path(local)).data
    )
    assert not (ee_run / runs.RESUME_DIR).exists()


def test_sharpen_local_through_the_stub_gives_the_local_engines_alt(ee_offline, monkeypatch, tmp_path, local_run):
    """``run --engine ee --sharpen local``: the synthetic world's inputs served as Earth Engine
    composites (stub; whatever world ``demo_inputs`` writes: grids, windows and dates are read
    from its files) are pulled into RUN/inputs and sharpened by the local engine: the same ALT,
    byte for byte, and the same calibration as the local engine on those inputs."""
    import datetime as dt

    from gee_alt.engines.ee import local_inputs, session
    from gee_alt.engines.local.layout import InputLayout
    from gee_alt.science.forest import RandomForestSettings
    from helpers.ee import InputsStub

    local, inputs = local_run
    layout = InputLayout(inputs)
    grid = layout.grid
    lst0 = layout.modis_lst(YEARS[0])
    days = [int(d) for d in lst0.days]
    left, b, r, t = bounds(grid)
    w, s, e, n = transform_bounds(grid["crs"], "EPSG:4326", left + 9, b + 9, r - 9, t - 9, densify_pts=21)
    rf = RandomForestSettings(n_estimators=10)  # what `run --engine local --trees 10` used
    rf_toml = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in rf.model_dump().items() if v is not None)
    (tmp_path / "s.toml").write_text(
        f"[study]\nyears = [{YEARS[0]}, {YEARS[-1]}]\n[aoi]\nbbox = [{w}, {s}, {e}, {n}]\n"
        f'[grid]\ncrs = "{grid["crs"]}"\norigin_offset_m = 0.0\n[pull]\ninitial_delay_s = 0.0\n'
        f"[season]\nlst_step_days = {days[0]}\n"
        f"[rf]\n{rf_toml}"
    )
    cfg = load_config(tmp_path / "s.toml")
    assert same_grid(cfg.grid(), grid)
    for y in YEARS:  # the pulled windows (the whole year, whatever the thaw season) are the world's
        # composites (a world placing them by day of year starts them a day earlier in leap years:
        # lengths, not dates, enter DDT)
        comp = layout.modis_lst(y)
        windows = local_inputs.pull_windows(cfg, y)
        assert [x.days for x in windows] == [int(d) for d in comp.days]
        assert abs((dt.date.fromisoformat(windows[0].start) - comp.start_dates[0]).days) <= 1
    ndvi_grid, lst_grid = layout.modis_ndvi(YEARS[0]).grid, lst0.raster.grid
    monkeypatch.setattr(
        local_inputs, "pull_grids", lambda c: {"fine": c.grid(), "modis_ndvi": ndvi_grid, "modis_lst": lst_grid}
    )
    served = {
        local_inputs.KINDS["dem"]: (grid, lambda y: layout.dem.data),
        local_inputs.KINDS["landsat_ndvi"]: (grid, lambda y: layout.landsat_ndvi(y).data),
        local_inputs.KINDS["modis_ndvi"]: (ndvi_grid, lambda y: layout.modis_ndvi(y).data),
        # the world's day/night looks and view times, band for band (the layout EE pulls)
        local_inputs.KINDS["modis_lst"]: (lst_grid, lambda y: read_raster(layout.modis_lst_path(y)).data),
    }
    monkeypatch.setattr(session, "initialize", lambda *a, **k: session.SessionInfo("user", "p", "", "standard"))
    stub = InputsStub(served).install(monkeypatch)
    args = ["--config", tmp_path / "s.toml", "--project", "p", "--insitu", runs.insitu_csv_path(inputs)]
    code, out, err = cli(
        "run", "--engine", "ee", "--sharpen", "local", *args, "--out", tmp_path / "ee", "--trees", "10",
        "--workers", "1", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    ee_run = tmp_path / "ee"
    # every input pulled once: the DEM (year 0) and three composites per year
    assert stub.requests.keys() == {(1, 0), *((k, y) for y in YEARS for k in (2, 3, 4))}
    cal_l, cal_e = (json.loads((r / runs.CALIBRATION).read_text()) for r in (local, ee_run))
    assert cal_e["E"] == cal_l["E"] and cal_e["pairs"] == cal_l["pairs"]
    for y in YEARS:
        np.testing.assert_array_equal(
            read_raster(runs.alt_path(ee_run, y)).data, read_raster(runs.alt_path(local, y)).data
        )
        np.testing.assert_array_equal(
            read_raster(runs.ddt_path(ee_run, y)).data[:4], read_raster(runs.ddt_path(local, y)).data[:4]
        )
        assert read_raster(runs.ddt_path(ee_run, y)).tags["engine"] == "ee"
    # the pulled layout is the world's, file for file
    pulled = InputLayout(runs.inputs_dir(ee_run))
    assert pulled.years == list(YEARS) and same_grid(pulled.modis_lst(YEARS[0]).raster.grid, lst_grid)
    assert not (ee_run / runs.RESUME_DIR).exists()


def test_a_failed_year_ends_the_run_incomplete_and_a_rerun_fills_it(ee_offline, monkeypatch, tmp_path, local_run):
    """``run --engine ee`` with one year failing on the server: exit 3, one line naming the year
    and Earth Engine's reason, products for the other years, no manifest; the same command again
    pulls only that year and completes."""
    from gee_alt.engines.ee import session
    from helpers.ee import years_in_expression

    local, inputs = local_run
    grid = read_raster(runs.dem_path(local)).grid
    left, b, r, t = bounds(grid)
    w, s, e, n = transform_bounds(grid["crs"], "EPSG:4326", left + 9, b + 9, r - 9, t - 9, densify_pts=21)
    (tmp_path / "s.toml").write_text(ee_toml(grid, (w, s, e, n)))
    cfg = load_config(tmp_path / "s.toml")
    broken = {YEARS[1]}

    class Stub(StubServer):
        def compute_pixels(self, params):
            import ee

            if years_in_expression(params["expression"]) & broken:
                raise ee.EEException("Image.add: If one image has no bands, the other must also have no bands.")
            return super().compute_pixels(params)

    def served(year, g):
        if year == 0:
            return np.stack(
                [read_raster(runs.dem_path(local)).data[0], read_raster(runs.ndvi_mean_path(local)).data[0]]
            )
        return read_raster(runs.ddt_path(local, year)).data[:4]  # DDT, sd, n_obs, DDF (the EE layers)

    monkeypatch.setattr(session, "initialize", lambda *a, **k: None)
    stub = Stub(grid, arrays=served, fractions=served_thaw_fractions(inputs, cfg)).install(monkeypatch)
    args = ["run", "--engine", "ee", "--config", tmp_path / "s.toml", "--project", "p"]
    args += ["--insitu", runs.insitu_csv_path(inputs), "--out", tmp_path / "ee", "--quiet"]
    code, out, err = cli(*args)
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 3 and len(lines) == 1, err
    assert f"1 of {len(YEARS)} year(s) missing ({YEARS[1]}" in lines[0] and "no bands" in lines[0]
    run = tmp_path / "ee"
    assert runs.years_of(run, "alt") == [YEARS[0], YEARS[2]] and not (run / runs.MANIFEST).exists()
    val = json.loads((run / runs.VALIDATION).read_text())
    assert list(val["missing_years"]) == [str(YEARS[1])]
    calls = dict(stub.pixel_calls)
    broken.clear()
    code, out, err = cli(*args)
    assert code == 0, err
    assert stub.pixel_calls[YEARS[0]] == calls[YEARS[0]] and stub.pixel_calls[YEARS[2]] == calls[YEARS[2]]
    assert runs.years_of(run, "alt") == list(YEARS) and (run / runs.MANIFEST).exists()
    np.testing.assert_array_equal(
        read_raster(runs.alt_path(run, YEARS[1])).data, read_raster(runs.alt_path(local, YEARS[1])).data
    )
