"""The benchmark's osgeo stand-in (scripts/osgeo_shim): warps against hand computations and rasterio.

No pyDMS needed; the shim must reproduce what GDAL's gdal.Warp/Open/MEM/Translate would give, so that
running pyDMS on it does not change pyDMS's numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject

SHIM = Path(__file__).resolve().parents[2] / "scripts" / "osgeo_shim"


@pytest.fixture(scope="module")
def gdal():
    sys.path.insert(0, str(SHIM))
    try:
        from osgeo import gdal as g

        yield g
    finally:
        sys.path.remove(str(SHIM))
        for k in [k for k in sys.modules if k == "osgeo" or k.startswith("osgeo.")]:
            del sys.modules[k]


UTM = CRS.from_epsg(32647).to_wkt()


def _mem(gdal, a, gt, wkt=UTM, nodata=None):
    a = np.atleast_3d(a.T).T if a.ndim == 2 else a  # (band, y, x)
    ds = gdal.GetDriverByName("MEM").Create("MEM", a.shape[2], a.shape[1], a.shape[0], gdal.GDT_Float32)
    ds.SetGeoTransform(gt)
    ds.SetProjection(wkt)
    for i in range(a.shape[0]):
        ds.GetRasterBand(i + 1).WriteArray(a[i])
    if nodata is not None:
        ds.GetRasterBand(1).SetNoDataValue(nodata)
    return ds


def test_average_warp_to_coarser_grid_is_block_mean(gdal):
    # 4x4 at 30 m -> 2x2 at 60 m, same origin: each output is the mean of a 2x2 block (hand computed)
    a = np.arange(16, dtype="float32").reshape(4, 4)
    src = _mem(gdal, a, (500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0))
    out = gdal.Warp(
        "",
        src,
        format="MEM",
        dstSRS=UTM,
        xRes=60.0,
        yRes=-60.0,
        outputBounds=[500000.0, 4200000.0 - 120.0, 500120.0, 4200000.0],
        resampleAlg="average",
    )
    want = np.array([[(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4], [(8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]])
    assert out.GetGeoTransform() == (500000.0, 60.0, 0.0, 4200000.0, 0.0, -60.0)
    np.testing.assert_allclose(out.GetRasterBand(1).ReadAsArray(), want, rtol=0, atol=1e-6)


def test_nearest_warp_to_finer_shifted_grid_repeats_pixels(gdal):
    # 2x2 at 60 m -> 30 m grid shifted by one 30 m pixel east: output column j takes source column
    # floor((30 j + 30 + 15) / 60) (pixel centres), by hand: [0, 1, 1, (outside)]
    a = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    src = _mem(gdal, a, (500000.0, 60.0, 0.0, 4200000.0, 0.0, -60.0), nodata=-9.0)
    out = gdal.Warp(
        "",
        src,
        format="MEM",
        dstSRS=UTM,
        xRes=30.0,
        yRes=30.0,
        outputBounds=[500030.0, 4200000.0 - 120.0, 500150.0, 4200000.0],
        resampleAlg=gdal.GRA_NearestNeighbour,
    )
    got = out.GetRasterBand(1).ReadAsArray()
    want = np.array([[1, 2, 2, -9], [1, 2, 2, -9], [3, 4, 4, -9], [3, 4, 4, -9]], "float32")
    np.testing.assert_array_equal(got, want)
    assert out.GetRasterBand(1).GetNoDataValue() == -9.0  # gdalwarp: destination takes the source nodata


def test_without_nodata_outside_is_zero_and_nan_nodata_is_kept(gdal):
    a = np.ones((2, 2), "float32")
    gt = (500000.0, 60.0, 0.0, 4200000.0, 0.0, -60.0)
    kw = dict(format="MEM", xRes=60.0, yRes=60.0, outputBounds=[500000.0, 4199880.0, 500180.0, 4200000.0])
    out = gdal.Warp("", _mem(gdal, a, gt), **kw).GetRasterBand(1).ReadAsArray()
    np.testing.assert_array_equal(out, [[1, 1, 0], [1, 1, 0]])  # gdalwarp's INIT_DEST=0 without nodata
    out = gdal.Warp("", _mem(gdal, a, gt, nodata=np.nan), **kw).GetRasterBand(1).ReadAsArray()
    assert np.isnan(out[:, 2]).all() and (out[:, :2] == 1).all()


def test_output_size_follows_gdalwarp_rounding(gdal):
    gt, nx, ny = gdal.warp_grid([0.0, 0.0, 100.0, 70.0], 30.0, -30.0)
    # int(100 / 30 + 0.5) = 3, int(70 / 30 + 0.5) = 2; origin (minX, maxY); resolution kept
    assert (nx, ny) == (3, 2) and gt == (0.0, 30.0, 0.0, 70.0, 0.0, -30.0)
    gt, nx, ny = gdal.warp_grid([0.0, 0.0, 100.0, 70.0], width=4, height=7)
    assert (nx, ny) == (4, 7) and gt == (0.0, 25.0, 0.0, 70.0, 0.0, -10.0)


@pytest.mark.parametrize("alg", ["cubic", "bilinear", "average"])
def test_cross_crs_warp_equals_rasterio(gdal, alg):
    # UTM 30 m field -> a sinusoidal 926 m grid: the shim must be exactly rasterio.warp.reproject
    rng = np.random.default_rng(1)
    a = rng.normal(10.0, 2.0, (64, 64)).astype("float32")
    gt = (420000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0)
    sinu = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
    src = _mem(gdal, a, gt, nodata=np.nan)
    bounds = [8600000.0, 4180000.0, 8600000.0 + 926.625 * 3, 4180000.0 + 926.625 * 2]
    out = gdal.Warp(
        "", src, format="MEM", dstSRS=sinu, xRes=926.625, yRes=926.625, outputBounds=bounds, resampleAlg=alg
    )
    want = np.full((2, 3), np.nan, "float32")
    reproject(
        a,
        want,
        src_transform=Affine.from_gdal(*gt),
        src_crs=CRS.from_wkt(UTM),
        src_nodata=np.nan,
        dst_transform=Affine(926.625, 0, bounds[0], 0, -926.625, bounds[3]),
        dst_crs=CRS.from_user_input(sinu),
        dst_nodata=np.nan,
        resampling=Resampling[alg],
    )
    np.testing.assert_array_equal(out.GetRasterBand(1).ReadAsArray(), want)


def test_translate_and_open_round_trip(gdal, tmp_path):
    a = np.arange(12, dtype="float32").reshape(2, 2, 3)
    a[0, 0, 0] = np.nan
    src = _mem(gdal, a, (500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0))
    path = tmp_path / "x.tif"
    gdal.Translate(str(path), src, format="COG", creationOptions=["COMPRESS=DEFLATE"], noData=np.nan)
    ds = gdal.Open(str(path))
    assert (ds.RasterCount, ds.RasterYSize, ds.RasterXSize) == (2, 2, 3)
    assert ds.GetGeoTransform() == (500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0)
    assert CRS.from_wkt(ds.GetProjection()) == CRS.from_epsg(32647)
    np.testing.assert_array_equal(ds.GetRasterBand(2).ReadAsArray(), a[1])
    assert np.isnan(ds.GetRasterBand(1).GetNoDataValue())
