"""`gee-alt prepare` on synthetic raw files -> the input layout -> `run --engine local`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from gee_alt.export.cog import write_cog
from gee_alt.grid import same_grid
from gee_alt.io import read_raster
from gee_alt.prepare.lst import lst_grid, season_windows
from gee_alt.prepare.ndvi import ndvi_grid
from helpers.cli import assert_user_error, cli
from tests.helpers import raw_world as rw

pytest.importorskip("pyhdf.SD", reason="pyhdf (gee-alt[hdf]) is needed to write/read HDF4")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    cfg = rw.raw_cfg()
    dem = rw.write_dem_tiles(d / "dem")
    lst_files, lst_expected = rw.write_lst(d / "lst", cfg)
    ndvi_files, ndvi_expected = rw.write_ndvi(d / "ndvi", cfg)
    scenes, landsat_expected = rw.write_landsat(d / "landsat", cfg)
    return dict(
        dir=d,
        cfg=cfg,
        dem=dem,
        lst=lst_files,
        ndvi=ndvi_files,
        scenes=scenes,
        lst_expected=lst_expected,
        ndvi_expected=ndvi_expected,
        landsat_expected=landsat_expected,
    )


def prepare_args(world, out, **override):
    args = {
        "--aoi": ",".join(map(str, rw.BBOX)),
        "--years": str(rw.YEAR),
        "--dem": [world["dir"] / "dem"],
        "--modis-lst": [world["dir"] / "lst"],
        "--modis-ndvi": [world["dir"] / "ndvi"],
        "--landsat": [world["dir"] / "landsat"],
    }
    args.update(override)
    flat = ["prepare", "--out", out, "--quiet", "--json"]
    for k, v in args.items():
        for item in v if isinstance(v, list) else [v]:
            flat += [k, item]
    return flat


@pytest.fixture(scope="module")
def prepared(world):
    out = world["dir"] / "INPUTS"
    code, stdout, err = cli(*prepare_args(world, out))
    assert code == 0, err
    assert len(json.loads(stdout)["written"]) == 4
    return out


def test_prepared_composites_equal_the_independent_ones(world, prepared):
    cfg = world["cfg"]
    lst = read_raster(prepared / f"modis_lst/lst_{rw.YEAR}.tif")
    windows = season_windows(cfg, rw.YEAR)
    assert lst.descriptions == [w.start for w in windows] and lst.descriptions[0] == "2019-03-01"
    assert lst.tags["units"] == "degC" and "daily-mean" in lst.tags["quantity"]
    assert lst.tags["sensor"] == "MOD11A1+MYD11A1"  # Aqua covers 2019
    assert same_grid(lst.grid, lst_grid(cfg.grid()))
    exp = world["lst_expected"]
    np.testing.assert_allclose(lst.data, exp, atol=1e-4, equal_nan=True)
    assert np.isnan(lst.data[rw.EMPTY_WINDOW]).all()  # the window without any granule
    # cloud-flagged Terra day looks dropped: only Aqua's day look (look 1) remains there
    assert np.isfinite(lst.data[rw.CLOUDY_WINDOW, 0, 0])
    import rasterio

    with rasterio.open(prepared / f"modis_lst/lst_{rw.YEAR}.tif") as src:
        assert [src.tags(i + 1)["days"] for i in range(src.count)] == [str(w.days) for w in windows]
    ndvi = read_raster(prepared / f"modis_ndvi/ndvi_{rw.YEAR}.tif")
    assert same_grid(ndvi.grid, ndvi_grid(cfg.grid()))
    np.testing.assert_allclose(ndvi.data[0], world["ndvi_expected"], atol=1e-6, equal_nan=True)
    landsat = read_raster(prepared / f"landsat_ndvi/ndvi_{rw.YEAR}.tif")
    assert landsat.grid == cfg.grid() and cfg.grid()["crs"] == "EPSG:32647"
    assert cfg.grid()["crs_transform"][2] % 30 == 15  # the Landsat lattice (origin_offset_m 15)
    np.testing.assert_allclose(landsat.data[0], world["landsat_expected"], atol=1e-5, equal_nan=True)
    assert np.isnan(landsat.data[0, 12, 12])  # clouded in the first scene: the second's value alone?
    dem = read_raster(prepared / "dem.tif")
    assert dem.grid == cfg.grid() and np.isfinite(dem.data).all()
    assert 3000 < np.nanmin(dem.data) and np.nanmax(dem.data) < 4500


def test_rerun_skips_what_is_prepared(world, prepared):
    before = {p: p.stat().st_mtime_ns for p in prepared.rglob("*.tif")}
    stray = prepared / "modis_lst" / ".tmp-lst_2019.tif.abc123"  # as a killed prepare leaves it
    stray.write_bytes(b"partial")
    code, stdout, err = cli(*prepare_args(world, prepared))
    assert code == 0, err
    res = json.loads(stdout)
    assert res["written"] == [] and len(res["skipped"]) == 4
    assert before == {p: p.stat().st_mtime_ns for p in prepared.rglob("*.tif")}
    assert not stray.exists()


def test_prepare_then_run_equals_direct_composites(world, prepared, tmp_path):
    cfg = world["cfg"]
    direct = tmp_path / "direct"
    (direct).mkdir()
    shutil.copy(prepared / "dem.tif", direct / "dem.tif")
    windows = season_windows(cfg, rw.YEAR)
    y = rw.YEAR
    write_cog(direct / f"landsat_ndvi/ndvi_{y}.tif", world["landsat_expected"], cfg.grid())
    write_cog(direct / f"modis_ndvi/ndvi_{y}.tif", world["ndvi_expected"], ndvi_grid(cfg.grid()))
    write_cog(
        direct / f"modis_lst/lst_{y}.tif",
        world["lst_expected"],
        lst_grid(cfg.grid()),
        tags={"units": "degC", "quantity": "daily-mean land surface temperature, window composite"},
        band_descriptions=[w.start for w in windows],
        band_tags=[{"days": w.days} for w in windows],
    )
    insitu = tmp_path / "insitu.csv"
    rows = ["site_id,lon,lat,year,alt_m"]
    for i in range(8):
        rows.append(f"S{i},{99.02 + 0.02 * i:.3f},{38.02 + 0.012 * i:.3f},{y},{1.4 + 0.1 * i:.2f}")
    insitu.write_text("\n".join(rows) + "\n")
    ddt = {}
    for name, inputs in (("prepared", prepared), ("direct", direct)):
        out = tmp_path / f"run_{name}"
        code, _, err = cli(
            "run",
            "--engine",
            "local",
            "--inputs",
            inputs,
            "--out",
            out,
            "--quiet",
            "--workers",
            "1",
            "--insitu",
            insitu,
        )
        assert code == 0, err
        ddt[name] = read_raster(out / f"ddt/ddt_{y}.tif").data[0]
    assert np.isfinite(ddt["prepared"]).mean() > 0.9
    # the prepared composites are the independent ones to the last bit, so the runs agree exactly
    for rel in (f"landsat_ndvi/ndvi_{y}.tif", f"modis_ndvi/ndvi_{y}.tif", f"modis_lst/lst_{y}.tif"):
        assert np.array_equal(read_raster(prepared / rel).data, read_raster(direct / rel).data, equal_nan=True), rel
    np.testing.assert_array_equal(ddt["prepared"], ddt["direct"])


def _bad(world, tmp_path, fragment, **override):
    out = tmp_path / "BAD"
    res = cli(*prepare_args(world, out, **override))
    line = assert_user_error(res, fragment)
    assert not out.exists() or not any(out.rglob("*")), list(out.rglob("*"))
    return line


def test_bad_inputs_exit_2_one_line_nothing_written(world, tmp_path):
    from gee_alt.prepare.lst import lst_grid as grid_of
    from tests.helpers.modis_files import lst_layers, write_hdf

    lst_dir = world["dir"] / "lst"
    good = sorted(lst_dir.iterdir())
    # mixed collections: one collection-6 granule among 6.1 ones
    c6 = tmp_path / "c6"
    c6.mkdir()
    g = grid_of(world["cfg"].grid())
    ul = (g["crs_transform"][2], g["crs_transform"][5])
    shp = (g["shape_2d"][1], g["shape_2d"][0])
    import datetime as dt

    bad = write_hdf(
        c6 / "MOD11A1.A2019100.h25v05.006.hdf",
        "MOD11A1",
        dt.date(2019, 4, 10),
        ul,
        lst_layers(np.full(shp, 14000), np.full(shp, 13500)),
        version="6",
    )
    line = _bad(world, tmp_path, "mixed with collection", **{"--modis-lst": [lst_dir, bad]})
    assert str(bad) in line
    # corrupt HDF
    corrupt = tmp_path / "MOD11A1.A2019101.h25v05.061.hdf"
    corrupt.write_bytes(good[0].read_bytes()[:2000])
    assert str(corrupt) in _bad(world, tmp_path, "not a readable HDF4", **{"--modis-lst": [lst_dir, corrupt]})
    # wrong product given to --modis-lst
    ndvi_file = sorted((world["dir"] / "ndvi").iterdir())[0]
    _bad(world, tmp_path, "MOD13Q1 given to --modis-lst", **{"--modis-lst": [lst_dir, ndvi_file]})
    # missing QC layer
    layers = lst_layers(np.full(shp, 14000), np.full(shp, 13500))
    del layers["QC_Day"]
    noqc = write_hdf(tmp_path / "MOD11A1.A2019102.h25v05.061.hdf", "MOD11A1", dt.date(2019, 4, 12), ul, layers)
    _bad(world, tmp_path, "missing: QC_Day", **{"--modis-lst": [lst_dir, noqc]})
    # tiles not covering the AOI: the AOI moved east of the tiles
    _bad(world, tmp_path, "do not overlap the AOI", **{"--aoi": "99.5,38.0,99.7,38.15"})
    # Landsat Collection 1
    c1 = tmp_path / "LC08_L1TP_133033_20190715_20190720_01_T1"
    c1.mkdir()
    _bad(world, tmp_path, "Collection 1", **{"--landsat": [c1]})
