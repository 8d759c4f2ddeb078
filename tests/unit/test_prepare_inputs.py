"""prepare's DEM, MOD13Q1 and Landsat readers, and the one shared definition of the product rules."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from gee_alt.config import load_config
from gee_alt.errors import GeeAltError
from gee_alt.grid import MODIS_250M, shape_yx
from gee_alt.prepare import dem as prep_dem
from gee_alt.prepare import landsat as prep_landsat
from gee_alt.prepare import ndvi as prep_ndvi
from gee_alt.prepare.modis_files import open_granule
from gee_alt.science import product_rules as rules
from tests.helpers import raw_world as rw
from tests.helpers.modis_files import write_tiff_granule


def test_ee_graphs_and_numpy_readers_share_one_definition():
    from gee_alt.engines.ee import collections as col

    for name in (
        "LST_SCALE_K",
        "QC_MANDATORY_BITS",
        "QC_MANDATORY_MAX_OK",
        "QC_LST_ERROR_SHIFT",
        "QC_LST_ERROR_BITS",
        "AQUA_LST_START",
        "MODIS_NDVI_SCALE",
        "SR_SCALE",
        "SR_OFFSET",
        "QA_PIXEL_CLEAR_BITS",
        "QA_PIXEL_SNOW_BIT",
    ):
        assert getattr(col, name) is getattr(rules, name), name
    assert col.lst_error_class_max is rules.lst_error_class_max
    assert (rules.LST_SCALE_K, rules.SR_SCALE, rules.SR_OFFSET) == (0.02, 0.0000275, -0.2)


def test_qc_rules_bit_by_bit():
    qc = np.array([0b00, 0b01, 0b10, 0b11, 0b01_0000_01, 0b10_0000_00, 0b11_0000_00], "uint8")
    assert rules.lst_qc_ok(qc, 2).tolist() == [True, True, False, False, True, False, False]
    assert rules.lst_qc_ok(qc, 4).tolist() == [True, True, False, False, True, True, True]
    assert rules.lst_qc_ok(qc, 1).tolist() == [True, True, False, False, False, False, False]
    assert rules.view_time_h(np.array([105, 255], "uint8"))[0] == pytest.approx(10.5)
    assert np.isnan(rules.view_time_h(np.array([255], "uint8"))[0])
    m = rules.window_daily_mean_degc(np.array([20.0, 20.0]), np.array([2, 0]), np.array([-6.0, -3.0]), np.array([1, 1]))
    assert m[0] == pytest.approx(2.0) and np.isnan(m[1])  # (10 - 6)/2; no day look -> NaN
    assert rules.aqua_in_season("2002-07-04") and not rules.aqua_in_season("2002-03-01")
    v = rules.mod13q1_ndvi(np.array([5000, -3000, 5000, 5000]), np.array([0, 0, 2, -1]), 1)
    assert v[0] == pytest.approx(0.5) and np.isnan(v[1:]).all()
    clear = rules.landsat_clear(np.array([21824, 21824 | 8, 21824 | 32, 1]), np.array([0, 0, 0, 0]), True)
    assert clear.tolist() == [True, False, False, False]
    assert not rules.landsat_clear(np.array([21824]), np.array([4]), True)[0]  # saturated


def test_dem_tiles_mosaic_onto_the_landsat_aligned_utm_grid(tmp_path):
    cfg = rw.raw_cfg()
    tiles = rw.write_dem_tiles(tmp_path / "dem")
    grid = cfg.grid()
    z = prep_dem.dem_on_grid(tiles, grid)
    assert grid["crs"] == "EPSG:32647" and grid["crs_transform"][2] % 30 == 15
    assert z.shape == shape_yx(grid) and np.isfinite(z).all()
    # the pixel centre's elevation from the formula the tiles were written with (bilinear at 1")
    from gee_alt.grid import rowcol_to_lonlat

    lon, lat = rowcol_to_lonlat(grid, np.array([100.5]), np.array([200.5]))
    assert z[100, 200] == pytest.approx(float(rw._dem_m(lon, lat)[0]), abs=1.0)
    with pytest.raises(GeeAltError, match="do not cover the AOI") as exc:
        prep_dem.dem_on_grid(tiles[:1], grid)  # the eastern tile missing
    assert str(tiles[0]) in str(exc.value)


def test_mod13q1_geotiff_export_and_median(tmp_path):
    cfg = dataclasses.replace(load_config(None), bbox=(99.0, 38.0, 99.02, 38.02), aoi_geometry=None, crs=None)
    grid = prep_ndvi.ndvi_grid(cfg.grid())
    a, _, c, _, _, f = grid["crs_transform"]
    shape = shape_yx(grid)
    files = []
    for i, (date, val) in enumerate(
        ((dt.date(2019, 6, 10), 4000), (dt.date(2019, 6, 26), 6000), (dt.date(2019, 7, 12), 7000))
    ):
        qa = np.zeros(shape, "int16")
        qa[0, 0] = 3 if i == 2 else 0  # cloudy in the third
        layers = {"NDVI": np.full(shape, val, "int16"), "SummaryQA": qa}
        name = f"MOD13Q1.A2019{date.timetuple().tm_yday:03d}.061.tif"
        files.append(write_tiff_granule(tmp_path / name, (c, f), MODIS_250M, layers))
    late = write_tiff_granule(tmp_path / "MOD13Q1.A2019273.061.tif", (c, f), MODIS_250M, layers)  # October
    granules = [open_granule(p) for p in [*files, late]]
    out = prep_ndvi.composite_year(granules, cfg, 2019, grid)
    assert out[1, 1] == pytest.approx(0.6)  # median of 0.4, 0.6, 0.7 (October outside 06-01..09-15)
    assert out[0, 0] == pytest.approx(0.5)  # median of 0.4, 0.6 (the cloudy one dropped)


def test_landsat_scene_identification(tmp_path):
    for name, fragment in (
        ("LC08_L1TP_133033_20190715_20190720_01_T1", "Collection 1"),
        ("LC08_L1TP_133033_20190715_20200827_02_T1", "Level-1"),
        ("some_folder", "no Landsat product id"),
    ):
        d = tmp_path / name
        d.mkdir()
        with pytest.raises(GeeAltError, match=fragment):
            prep_landsat.open_scene(d)
    d = tmp_path / "LC09_L2SP_133033_20220715_20220720_02_T1"
    d.mkdir()
    for band in ("SR_B4", "SR_B5", "QA_PIXEL"):
        (d / f"{d.name}_{band}.TIF").write_bytes(b"")
    with pytest.raises(GeeAltError, match="no QA_RADSAT band file"):
        prep_landsat.open_scene(d)
    (d / f"{d.name}_QA_RADSAT.TIF").write_bytes(b"")
    s = prep_landsat.open_scene(d)
    assert (s.mission, s.date) == (9, dt.date(2022, 7, 15)) and s.band_path("red").endswith("_SR_B4.TIF")
    bad_tar = tmp_path / "LC08_L2SP_133033_20190715_20200827_02_T1.tar"
    bad_tar.write_bytes(b"not a tar")
    with pytest.raises(GeeAltError, match="not a readable Landsat scene archive"):
        prep_landsat.open_scene(bad_tar)
