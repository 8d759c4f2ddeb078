"""`gee-alt run --permafrost-map MAP`: a user permafrost map replaces the frost-number criterion.

The map is written in EPSG:4326 (not the run's UTM grid), so the check of where ALT is mapped is
against hand geometry: a pixel is permafrost when its centre lies west of the map's dividing
meridian (pixels within one map cell of it are not judged)."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from gee_alt.demo.ideal import IdealScene, IdealSpec, write_demo_inputs
from gee_alt.grid import rowcol_to_lonlat
from gee_alt.io import read_raster
from helpers.cli import assert_user_error, cli

YEARS = [2011, 2012, 2013]
CELL_DEG = 0.0002  # ~ 18-22 m: finer than the 30 m grid


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pfm")
    scene = IdealScene(IdealSpec(seed=3, years=tuple(YEARS), size_px=128))
    write_demo_inputs(scene, d / "inputs", d / "truth", YEARS, workers=1)
    return d / "inputs"


def _grid_lonlat(path):
    r = read_raster(path, bands=1)
    h, w = r.data.shape[1:]
    rr, cc = np.mgrid[0:h, 0:w]
    lon, lat = rowcol_to_lonlat(r.grid, rr.ravel(), cc.ravel())
    return np.asarray(lon).reshape(h, w), np.asarray(lat).reshape(h, w)


def _write_map(path, lon, lat, values_fn, nodata=255):
    west, north = float(lon.min()) - 0.01, float(lat.max()) + 0.01
    nx = int((float(lon.max()) + 0.01 - west) / CELL_DEG) + 1
    ny = int((north - float(lat.min()) + 0.01) / CELL_DEG) + 1
    clon = west + (np.arange(nx) + 0.5) * CELL_DEG
    clat = north - (np.arange(ny) + 0.5) * CELL_DEG
    data = values_fn(*np.meshgrid(clon, clat)).astype("uint8")
    prof = dict(driver="GTiff", width=nx, height=ny, count=1, dtype="uint8", crs="EPSG:4326", nodata=nodata)
    with rasterio.open(path, "w", transform=from_origin(west, north, CELL_DEG, CELL_DEG), **prof) as dst:
        dst.write(data, 1)
    return path


def test_user_permafrost_map_decides_where_alt_is_mapped(inputs, tmp_path):
    lon, lat = _grid_lonlat(inputs / "dem.tif")
    lon0 = float(np.median(lon))
    lat_cut = float(np.quantile(lat, 0.1))  # the southern tenth: nodata (unknown)

    def values(x, y):
        return np.where(y < lat_cut, 255, np.where(x < lon0, 1, 0))

    pmap = _write_map(tmp_path / "pf.tif", lon, lat, values)
    out = tmp_path / "run"
    code, _, err = cli(
        "run", "--engine", "local", "--inputs", inputs, "--out", out, "--permafrost-map", pmap, "--quiet", "--json"
    )
    assert code == 0, err
    crit = json.loads((out / "calibration.json").read_text())["permafrost_criterion"]
    assert crit["source"] == "map" and crit["map_file"] == "permafrost_map.tif"
    margin = 1.5 * CELL_DEG
    west, east = lon < lon0 - margin, lon > lon0 + margin
    south, north = lat < lat_cut - margin, lat > lat_cut + margin
    on_grid = read_raster(out / "permafrost_map.tif", bands=1).data[0]
    assert np.all(on_grid[west & north] == 1) and np.all(on_grid[east & north] == 0)
    assert np.all(np.isnan(on_grid[south]))
    for y in YEARS:
        alt = read_raster(out / "alt" / f"alt_{y}.tif", bands=1).data[0]
        assert np.isfinite(alt[west & north]).mean() > 0.95  # DDT may be NaN on a few pixels
        assert not np.isfinite(alt[east | south]).any()
        pf = read_raster(out / "permafrost" / f"permafrost_{y}.tif").data[0]
        np.testing.assert_array_equal(pf, on_grid)
    ext = json.loads((out / "trend" / "trend.json").read_text())["permafrost_extent"]
    n_pf = int((on_grid == 1).sum())
    assert ext["area_km2"] == pytest.approx([n_pf * 0.0009] * len(YEARS), rel=1e-9)
    assert ext["fraction"][0] == pytest.approx(n_pf / np.isfinite(on_grid).sum())
    assert ext["rule"].startswith("user permafrost map")


@pytest.mark.parametrize(
    "values, fragment",
    [
        (lambda x, y: np.where(x < np.median(x), 1, 2), "must be 1 (permafrost) or 0"),
        (lambda x, y: np.full(x.shape, 255), "no valid pixel"),
    ],
)
def test_bad_permafrost_map_is_refused_before_anything_runs(inputs, tmp_path, values, fragment):
    lon, lat = _grid_lonlat(inputs / "dem.tif")
    pmap = _write_map(tmp_path / "bad.tif", lon, lat, values)
    out = tmp_path / "run"
    assert_user_error(
        cli("run", "--engine", "local", "--inputs", inputs, "--out", out, "--permafrost-map", pmap), fragment
    )
    assert not out.exists()


def test_permafrost_map_off_the_grid_is_refused(inputs, tmp_path):
    lon, lat = _grid_lonlat(inputs / "dem.tif")
    pmap = _write_map(tmp_path / "far.tif", lon + 5.0, lat, lambda x, y: np.ones(x.shape))
    out = tmp_path / "run"
    assert_user_error(
        cli("run", "--engine", "local", "--inputs", inputs, "--out", out, "--permafrost-map", pmap),
        "does not cover any pixel",
    )
    assert not out.exists()
