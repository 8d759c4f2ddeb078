"""Cloud-Optimized GeoTIFFs from write_cog: valid COGs (rio-cogeo), float32/NaN/DEFLATE, tags, same bytes."""

import os

import numpy as np
import rasterio
from rio_cogeo.cogeo import cog_validate

from gee_alt.export.cog import write_cog
from gee_alt.grid import make_grid
from gee_alt.io import read_raster

# 700 x 600 px: larger than one 512 px block, so the COG has internal tiles and overviews
GRID = make_grid("EPSG:32647", (30, 0, 500000, 0, -30, 4200000), (700, 600))


def test_cog_is_valid_float32_deflate_with_tags(tmp_path):
    a = np.random.default_rng(0).normal(size=(600, 700)).astype("float32")
    a[10:20, 30:40] = np.nan
    p = write_cog(
        tmp_path / "x.tif", a, GRID, tags={"units": "m", "year": 2010, "synthetic": 1}, band_descriptions=["alt_m"]
    )
    is_valid, errors, warnings = cog_validate(p)
    assert is_valid and errors == [] and warnings == []
    with rasterio.open(p) as src:
        assert src.dtypes == ("float32",) and np.isnan(src.nodata)
        assert src.compression.name.lower() == "deflate" and src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
        assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
        assert src.overviews(1) == [2], "700 x 600 px with 512 px blocks: one overview level"
        assert src.tags()["units"] == "m" and src.tags()["year"] == "2010" and "gee_alt_version" in src.tags()
        assert src.descriptions == ("alt_m",)
        assert src.crs.to_epsg() == 32647 and tuple(src.transform)[:6] == (30, 0, 500000, 0, -30, 4200000)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    r = read_raster(p)
    np.testing.assert_array_equal(np.isnan(r.data[0]), np.isnan(a))
    np.testing.assert_allclose(r.data[0][~np.isnan(a)], a[~np.isnan(a)])
    assert oct(os.stat(p).st_mode & 0o777) != oct(0o600)


def test_small_multiband_cog_is_valid(tmp_path):
    g = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (7, 5))
    data = np.stack([np.full((5, 7), v, "float32") for v in (1.0, 2.0, 3.0)])
    p = write_cog(
        tmp_path / "ddt.tif",
        data,
        g,
        band_descriptions=["ddt", "ddt_sd", "n_obs"],
        band_tags=[{"units": "degC day"}, {"units": "degC day"}, {"units": "1"}],
    )
    is_valid, errors, _ = cog_validate(p)
    assert is_valid and errors == []
    with rasterio.open(p) as src:
        assert src.count == 3 and src.descriptions == ("ddt", "ddt_sd", "n_obs") and src.tags(3)["units"] == "1"
        assert [float(src.read(b)[4, 6]) for b in (1, 2, 3)] == [1.0, 2.0, 3.0]


def test_same_array_gives_same_bytes(tmp_path):
    a = np.arange(600 * 700, dtype="float32").reshape(600, 700)
    b1 = write_cog(tmp_path / "a.tif", a, GRID, tags={"k": 1}).read_bytes()
    b2 = write_cog(tmp_path / "b.tif", a, GRID, tags={"k": 1}).read_bytes()
    assert b1 == b2
