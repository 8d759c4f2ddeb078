"""MODIS LST granules (real MOD11A1 tile, synthetic HDF4 and GeoTIFF) -> window composites."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from gee_alt.config import load_config
from gee_alt.errors import GeeAltError
from gee_alt.grid import MODIS_1KM, shape_yx
from gee_alt.prepare import lst as prep_lst
from gee_alt.prepare.modis_files import open_granule, same_collection
from gee_alt.science import product_rules as rules
from tests.helpers.modis_files import degc_to_dn, lst_layers, write_hdf, write_tiff_granule

pyhdf_sd = pytest.importorskip("pyhdf.SD", reason="pyhdf (gee-alt[hdf]) is needed to read HDF4")

REAL_TILE = Path(__file__).resolve().parents[3] / "shared/data/modis/MOD11A1.A2019305.h14v09.006.hdf"
if not REAL_TILE.exists():
    REAL_TILE = Path("/work/shared/data/modis/MOD11A1.A2019305.h14v09.006.hdf")
SMALL_BBOX = (99.0, 38.0, 99.05, 38.03)


def small_cfg(bbox=SMALL_BBOX):
    cfg = load_config(None)
    return dataclasses.replace(cfg, bbox=bbox, aoi_geometry=None, crs=None)


def _independent(sds: str, row: int, col: int) -> int:
    sd = pyhdf_sd.SD(str(REAL_TILE), pyhdf_sd.SDC.READ)
    try:
        return int(sd.select(sds).get(start=(row, col), count=(1, 1))[0, 0])  # SDreaddata, no slicing
    finally:
        sd.end()


@pytest.mark.skipif(not REAL_TILE.exists(), reason=f"real MOD11A1 tile not present at {REAL_TILE}")
def test_real_mod11a1_tile_decodes_like_pyhdf_at_known_pixels():
    g = open_granule(REAL_TILE)
    assert (g.product, g.collection, g.date, g.platform) == ("MOD11A1", "6", dt.date(2019, 11, 1), "terra")
    assert g.grid["shape_2d"] == (1200, 1200)
    assert g.grid["crs_transform"][2] == pytest.approx(-4447802.079066)  # h14: origin + 14 tiles
    assert g.grid["crs_transform"][0] == pytest.approx(MODIS_1KM, rel=1e-7)
    dn = g.read("LST_Day_1km", 341, 0, 1, 9)[0]
    qc = g.read("QC_Day", 341, 0, 1, 9)[0]
    # independent pyhdf reads of the same pixels
    assert [int(v) for v in dn] == [_independent("LST_Day_1km", 341, c) for c in range(9)]
    assert [int(v) for v in qc] == [_independent("QC_Day", 341, c) for c in range(9)]
    assert int(dn[3]) == 15010 and int(qc[3]) == 0  # good quality
    assert int(dn[0]) == 15035 and int(qc[0]) == 65  # 0b01_0000_01: "check other bits", error <= 2 K
    assert int(dn[8]) == 0 and int(qc[8]) == 2  # cloud: fill
    t2 = rules.lst_degc(dn, qc, max_error_k=2)
    assert t2[3] == pytest.approx(15010 * 0.02 - 273.15, abs=1e-4)  # 27.05 degC: scale 0.02 K applied
    assert t2[0] == pytest.approx(15035 * 0.02 - 273.15, abs=1e-4)
    assert np.isnan(t2[8])  # cloud-flagged, fill 0
    t1 = rules.lst_degc(dn, qc, max_error_k=1)
    assert np.isnan(t1[0]) and t1[3] == pytest.approx(27.05, abs=1e-4)  # error class 01 rejected at 1 K
    # whole tile: every accepted pixel has DN > 0, every cloud (mandatory 10) or fill pixel is NaN
    full_dn = g.read("LST_Day_1km", 0, 0, 1200, 1200)
    full_qc = g.read("QC_Day", 0, 0, 1200, 1200)
    t = rules.lst_degc(full_dn, full_qc, 2)
    assert np.isnan(t[(full_qc & 3) >= 2]).all() and np.isnan(t[full_dn == 0]).all()
    assert np.isfinite(t).sum() == int(((full_dn > 0) & ((full_qc & 3) <= 1) & ((full_qc >> 6) <= 1)).sum())
    assert np.isfinite(t).sum() > 300_000
    assert 5 < np.nanmean(t) < 45  # tropical Brazil, daytime, 1 November


def _tile_over(grid, pad=2):
    a, _, c, _, e, f = grid["crs_transform"]
    w, h = grid["shape_2d"]
    return (c - pad * a, f + pad * a), (h + 2 * pad, w + 2 * pad)


def _day(tmp, product, date, ul, shape, day_c, night_c, qc_day=None, version="61", name=None):
    fn = name or f"{product}.A{date.year}{date.timetuple().tm_yday:03d}.h25v05.0{version}.hdf"
    day = np.broadcast_to(degc_to_dn(day_c), shape) if day_c is not None else np.zeros(shape, "uint16")
    night = np.broadcast_to(degc_to_dn(night_c), shape) if night_c is not None else np.zeros(shape, "uint16")
    return write_hdf(tmp / fn, product, date, ul, lst_layers(day, night, qc_day=qc_day), version=version)


def test_terra_only_year_window_means_and_empty_window(tmp_path):
    cfg = small_cfg()
    grid = prep_lst.lst_grid(cfg.grid())
    ul, shape = _tile_over(grid)
    files = [
        _day(tmp_path, "MOD11A1", dt.date(2001, 3, 1), ul, shape, 10.0, -4.0),
        _day(tmp_path, "MOD11A1", dt.date(2001, 3, 3), ul, shape, 14.0, -2.0),
        _day(tmp_path, "MOD11A1", dt.date(2001, 3, 5), ul, shape, None, -6.0),  # cloudy day: fill
        # Aqua is ignored in 2001 (it does not cover the season): a wild value would show
        _day(tmp_path, "MYD11A1", dt.date(2001, 3, 2), ul, shape, 40.0, 30.0),
        # second window: a day look only -> no night -> NaN
        _day(tmp_path, "MOD11A1", dt.date(2001, 3, 10), ul, shape, 5.0, None),
    ]
    granules = [open_granule(p) for p in files]
    lst, windows = prep_lst.composite_year(granules, cfg, 2001, grid)
    assert windows[0].start == "2001-03-01" and windows[0].days == 8
    assert lst.shape == (len(windows), *shape_yx(grid))
    # day mean (10 + 14)/2 = 12, night mean (-4 - 2 - 6)/3 = -4 -> (12 - 4)/2 = 4.0 (DN rounding < 0.01 K)
    assert np.allclose(lst[0], 4.0, atol=0.012)
    assert np.isnan(lst[1]).all()  # a window with day looks only
    assert np.isnan(lst[2:]).all()  # empty windows (no granule at all)


def test_terra_aqua_pooled_qc_masked_and_geotiff_export(tmp_path):
    cfg = small_cfg()
    grid = prep_lst.lst_grid(cfg.grid())
    ul, shape = _tile_over(grid)
    qc = np.zeros(shape, "uint8")
    qc[2, 2] = 0b10  # cloud
    qc[2, 3] = 0b10_0000_01  # error class 10 (<= 3 K): rejected with lst_max_error_k = 2
    files = [
        _day(tmp_path, "MOD11A1", dt.date(2019, 3, 1), ul, shape, 10.0, -10.0, qc_day=qc),
        _day(tmp_path, "MYD11A1", dt.date(2019, 3, 2), ul, shape, 20.0, -6.0),
    ]
    # a third look as a GeoTIFF export (Earth Engine-like name), Terra
    layers = lst_layers(np.full(shape, degc_to_dn(30.0)), np.full(shape, degc_to_dn(-2.0)))
    files.append(write_tiff_granule(tmp_path / "MOD11A1_061_2019_03_04.tif", ul, MODIS_1KM, layers))
    granules = [open_granule(p) for p in files]
    assert granules[2].product == "MOD11A1" and granules[2].collection == "6.1"
    lst, _ = prep_lst.composite_year(granules, cfg, 2019, grid)
    # day (10+20+30)/3 = 20, night (-10-6-2)/3 = -6 -> 7
    assert lst[0, 2, 2] == pytest.approx(7.0, abs=0.012)
    # the cloud and error-class pixels drop Terra's day look: day (20+30)/2 = 25 -> (25-6)/2 = 9.5
    assert lst[0, 0, 0] == pytest.approx(9.5, abs=0.012)  # tile (2, 2) -> grid (0, 0)
    assert lst[0, 0, 1] == pytest.approx(9.5, abs=0.012)  # tile (2, 3) -> grid (0, 1)
    assert lst[0, 1, 1] == pytest.approx(7.0, abs=0.012)


def test_bad_granules_one_line_naming_the_file(tmp_path):
    cfg = small_cfg()
    grid = prep_lst.lst_grid(cfg.grid())
    ul, shape = _tile_over(grid)
    c6 = _day(tmp_path, "MOD11A1", dt.date(2019, 3, 1), ul, shape, 10.0, -4.0, version="6")
    c61 = _day(tmp_path, "MOD11A1", dt.date(2019, 3, 2), ul, shape, 10.0, -4.0, version="61")
    with pytest.raises(GeeAltError, match=r"collection 6.1 mixed with collection 6") as exc:
        same_collection([open_granule(c6), open_granule(c61)])
    assert str(c61) in str(exc.value) and "\n" not in str(exc.value)
    corrupt = tmp_path / "MOD11A1.A2019062.h25v05.061.hdf"
    corrupt.write_bytes(c61.read_bytes()[:3000])
    with pytest.raises(GeeAltError, match="not a readable HDF4 file"):
        open_granule(corrupt)
    wrong = write_hdf(
        tmp_path / "MOD11A2.A2019065.h25v05.061.hdf",
        "MOD11A2",
        dt.date(2019, 3, 6),
        ul,
        lst_layers(np.ones(shape), np.ones(shape)),
    )
    with pytest.raises(GeeAltError, match="product MOD11A2 is not one gee-alt prepares"):
        open_granule(wrong)
    layers = lst_layers(np.ones(shape), np.ones(shape))
    del layers["QC_Night"]
    noqc = write_hdf(tmp_path / "MOD11A1.A2019070.h25v05.061.hdf", "MOD11A1", dt.date(2019, 3, 11), ul, layers)
    with pytest.raises(GeeAltError, match="layer\\(s\\) missing: QC_Night"):
        open_granule(noqc)


@pytest.mark.skipif(not REAL_TILE.exists(), reason=f"real MOD11A1 tile not present at {REAL_TILE}")
def test_real_tile_window_composite_matches_independent_decoding():
    """An AOI inside h14v09 (Brazil, partly cloudy on 2019-11-01): the composite of that one day
    is (day + night)/2 where both looks pass QC, NaN elsewhere — checked cell by cell against
    raw pyhdf reads decoded here with explicit bit arithmetic."""
    import math

    from gee_alt.grid import MODIS_SINUSOIDAL
    from gee_alt.prepare.modis_files import window_in

    g = open_granule(REAL_TILE)
    # lon/lat of the tile cells rows 430..450, cols 130..150 (inverse sinusoidal)
    r_earth = 6371007.181
    x0, y0, px = g.grid["crs_transform"][2], g.grid["crs_transform"][5], g.grid["crs_transform"][0]
    lat = [-(y0 - (r + 0.5) * px) / r_earth * -180 / math.pi for r in (430, 450)]
    lon = [(x0 + (c + 0.5) * px) / (r_earth * math.cos(math.radians(lat[0]))) * 180 / math.pi for c in (130, 150)]
    cfg = small_cfg((min(lon), min(lat), max(lon), max(lat)))
    grid = prep_lst.lst_grid(cfg.grid())
    assert grid["crs"] == MODIS_SINUSOIDAL and cfg.grid()["crs"].startswith("EPSG:327")  # UTM south
    lst, windows = prep_lst.composite_year([g], cfg, 2019, grid)
    k = next(i for i, w in enumerate(windows) if w.start <= "2019-11-01" < w.end)
    assert np.isnan(np.delete(lst, k, axis=0)).all()  # one day: the other windows are empty
    tr, tc, gr, gc, hh, ww = window_in(g.grid, grid)
    assert (gr, gc, hh, ww) == (0, 0, *shape_yx(grid))  # the AOI lies inside the tile
    sd = pyhdf_sd.SD(str(REAL_TILE), pyhdf_sd.SDC.READ)
    try:
        raw = {n: sd.select(n).get(start=(tr, tc), count=(hh, ww)) for n in prep_lst_layers()}
    finally:
        sd.end()

    def ok(dn, qc):
        return (dn > 0) & ((qc & 0b11) <= 1) & (((qc >> 6) & 0b11) <= 1)  # lst_max_error_k = 2

    both = ok(raw["LST_Day_1km"], raw["QC_Day"]) & ok(raw["LST_Night_1km"], raw["QC_Night"])
    expected = np.where(both, (raw["LST_Day_1km"] * 0.02 + raw["LST_Night_1km"] * 0.02) / 2 - 273.15, np.nan).astype(
        "float32"
    )
    np.testing.assert_allclose(lst[k], expected, atol=1e-4, equal_nan=True)
    assert 0.2 < both.mean() < 0.9  # some clear cells, some clouded: both cases are checked
    assert 15 < np.nanmean(lst[k]) < 35


def prep_lst_layers():
    return ("LST_Day_1km", "QC_Day", "LST_Night_1km", "QC_Night")
