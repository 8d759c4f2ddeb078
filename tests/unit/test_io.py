"""COG writing and raster reading: validity, tags, atomicity, clear errors."""

import os

import numpy as np
import pytest
import rasterio

from gee_alt.errors import GeeAltError
from gee_alt.grid import make_grid
from gee_alt.io import atomic_path, list_stray_temporaries, read_raster, write_cog, write_json_atomic

GRID = make_grid("EPSG:32647", (30, 0, 500000, 0, -30, 4200000), (700, 600))


def test_cog_is_valid_float32_deflate_with_tags(tmp_path):
    a = np.random.default_rng(0).normal(size=(600, 700)).astype("float32")
    a[10:20, 30:40] = np.nan
    p = write_cog(tmp_path / "x.tif", a, GRID, tags={"units": "m", "year": 2010, "synthetic": 1},
                  band_descriptions=["alt_m"])
    with rasterio.open(p) as src:
        assert src.dtypes == ("float32",) and np.isnan(src.nodata)
        assert src.compression.name.lower() == "deflate"
        assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
        assert src.overviews(1), "a COG carries overviews"
        assert src.tags()["units"] == "m" and src.tags()["year"] == "2010" and "gee_alt_version" in src.tags()
        assert src.descriptions == ("alt_m",)
        assert src.crs.to_epsg() == 32647 and tuple(src.transform)[:6] == GRID["crs_transform"]
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    r = read_raster(p)
    np.testing.assert_array_equal(np.isnan(r.data[0]), np.isnan(a))
    np.testing.assert_allclose(r.data[0][~np.isnan(a)], a[~np.isnan(a)])
    assert oct(os.stat(p).st_mode & 0o777) != oct(0o600)


def test_same_array_gives_same_bytes(tmp_path):
    a = np.arange(600 * 700, dtype="float32").reshape(600, 700)
    b1 = write_cog(tmp_path / "a.tif", a, GRID, tags={"k": 1}).read_bytes()
    b2 = write_cog(tmp_path / "b.tif", a, GRID, tags={"k": 1}).read_bytes()
    assert b1 == b2


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert not target.exists() and list_stray_temporaries(tmp_path) == []
    with pytest.raises(ValueError):       # shape mismatch: no file, no temporary
        write_cog(tmp_path / "bad.tif", np.zeros((3, 3)), GRID)
    assert list(tmp_path.iterdir()) == []


def test_write_json_replaces_nan_with_null(tmp_path):
    p = write_json_atomic(tmp_path / "a.json", {"x": float("nan"), "y": np.float32(1.5)})
    assert p.read_text().replace(" ", "").replace("\n", "") == '{"x":null,"y":1.5}'


def test_unwritable_destination_is_a_user_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")                 # a folder that cannot exist, even for root
    with pytest.raises(GeeAltError, match="cannot write"):
        write_json_atomic(blocker / "sub" / "a.json", {})
    with pytest.raises(GeeAltError, match="cannot write"):
        write_cog(blocker / "x.tif", np.zeros((600, 700)), GRID)


def test_read_raster_errors_name_the_file(tmp_path):
    with pytest.raises(GeeAltError, match="not found"):
        read_raster(tmp_path / "missing.tif")
    txt = tmp_path / "notes.tif"
    txt.write_text("not a raster")
    with pytest.raises(GeeAltError, match="not a readable raster"):
        read_raster(txt)
    p = tmp_path / "nocrs.tif"
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning), \
            rasterio.open(p, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32") as dst:
        dst.write(np.zeros((1, 4, 4), "float32"))
    with pytest.raises(GeeAltError, match="no CRS"):
        read_raster(p)
    good = write_cog(tmp_path / "g.tif", np.zeros((600, 700)), GRID)
    with pytest.raises(GeeAltError, match="expected 3 band"):
        read_raster(good, bands=3)
