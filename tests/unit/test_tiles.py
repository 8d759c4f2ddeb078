"""gee_alt.engines.local.tiles: tile files and GDAL warps of their mosaic (the in-memory bytes)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling

from gee_alt.engines.local.tiles import WARP_SUM_MEM_MB, read_tile, tiles_of, warp_mosaic, write_mosaic, write_tile
from gee_alt.grid import grid_from_bbox, modis_grid
from gee_alt.science.resample import _warp

FINE = grid_from_bbox((99.2, 38.0, 99.37, 38.13), 30.0)  # ~500 x 480 px of the study area, UTM 47N


def _field(dtype):
    h, w = FINE["shape_2d"][1], FINE["shape_2d"][0]
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, h, w)).cumsum(axis=2).astype(dtype)
    a[:, 40:60, 100:180] = np.nan  # a gap
    return a


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tile_files_are_band_interleaved_and_exact(tmp_path, dtype):
    a = _field(dtype)
    t = tiles_of(FINE, 256)[0]
    p = write_tile(tmp_path / "t.tif", a[:, t.slices()[0], t.slices()[1]], FINE, t)
    with rasterio.open(p) as src:
        assert src.profile["interleave"] == "band"  # a warp of one band decodes that band only
        assert src.dtypes[0] == dtype
    np.testing.assert_array_equal(read_tile(p), a[:, t.slices()[0], t.slices()[1]])


@pytest.mark.parametrize("tile_px", [128, 200])
def test_mosaic_warps_give_the_in_memory_bytes(tmp_path, tile_px):
    """Average (the predictors' coarse mean) and sum within the sum budget (the coverage counts):
    the bytes of the in-memory warp of the whole array, for any tile size, at a demo-sized scene."""
    a = _field("float64")
    parts = []
    for t in tiles_of(FINE, tile_px):
        r, c = t.slices()
        parts.append((t, write_tile(tmp_path / f"{t.name}.tif", a[:, r, c], FINE, t)))
    vrt = write_mosaic(tmp_path / "m.vrt", parts, FINE, 3, "float64")
    coarse = modis_grid(FINE, 926.625433)
    mean = warp_mosaic(vrt, [1, 2, 3], coarse, Resampling.average)
    np.testing.assert_array_equal(mean, _warp(a, FINE, coarse, Resampling.average))
    valid = np.isfinite(a[0]).astype("float64")
    parts = []
    for t in tiles_of(FINE, tile_px):
        r, c = t.slices()
        parts.append((t, write_tile(tmp_path / f"v{t.name}.tif", valid[r, c], FINE, t)))
    vrt = write_mosaic(tmp_path / "v.vrt", parts, FINE, 1, "float64")
    counts = warp_mosaic(vrt, [1], coarse, Resampling.sum, fill=0.0, mem_mb=WARP_SUM_MEM_MB)[0]
    np.testing.assert_array_equal(counts, _warp(valid, FINE, coarse, Resampling.sum, fill=0.0))
    assert np.nanmax(counts) > 900  # whole 1 km cells of 30 m pixels are counted (~954)
