"""Atomic writes, JSON and raster reading: atomicity, clear errors.

COG content is checked in tests/integration/test_export_cog.py."""

import numpy as np
import pytest
import rasterio

from gee_alt.errors import GeeAltError
from gee_alt.export.cog import write_cog
from gee_alt.grid import make_grid
from gee_alt.io import atomic_path, list_stray_temporaries, read_raster, write_json_atomic

GRID = make_grid("EPSG:32647", (30, 0, 500000, 0, -30, 4200000), (700, 600))


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert not target.exists() and list_stray_temporaries(tmp_path) == []
    with pytest.raises(ValueError):  # shape mismatch: no file, no temporary
        write_cog(tmp_path / "bad.tif", np.zeros((3, 3)), GRID)
    assert list(tmp_path.iterdir()) == []


def test_write_json_replaces_nan_with_null(tmp_path):
    p = write_json_atomic(tmp_path / "a.json", {"x": float("nan"), "y": np.float32(1.5)})
    assert p.read_text().replace(" ", "").replace("\n", "") == '{"x":null,"y":1.5}'


def test_unwritable_destination_is_a_user_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # a folder that cannot exist, even for root
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
    with (
        pytest.warns(rasterio.errors.NotGeoreferencedWarning),
        rasterio.open(p, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32") as dst,
    ):
        dst.write(np.zeros((1, 4, 4), "float32"))
    with pytest.raises(GeeAltError, match="no CRS"):
        read_raster(p)
    good = write_cog(tmp_path / "g.tif", np.zeros((600, 700)), GRID)
    with pytest.raises(GeeAltError, match="expected 3 band"):
        read_raster(good, bands=3)
