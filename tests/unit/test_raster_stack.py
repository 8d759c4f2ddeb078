"""io.RasterStack: whole-year reads do not keep their files open (each open dataset holds its own
block buffers: issue 12, memory independent of the years); windowed reads do, until close()."""

import numpy as np
import rasterio
from rasterio.transform import from_origin

from gee_alt.io import RasterStack


def _write(path, a):
    prof = dict(driver="GTiff", width=a.shape[1], height=a.shape[0], count=1, dtype="float32", nodata=-9999.0)
    with rasterio.open(path, "w", crs="EPSG:32647", transform=from_origin(0, 0, 30, 30), **prof) as dst:
        dst.write(np.where(np.isnan(a), -9999.0, a).astype("float32"), 1)


def test_whole_reads_close_their_file_and_windows_keep_it_open(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((3, 20, 30)).astype("float32")
    data[1, 2:5, 3:7] = np.nan
    paths = []
    for i, a in enumerate(data):
        paths.append(tmp_path / f"y{i}.tif")
        _write(paths[-1], a)
    s = RasterStack(paths, (20, 30))
    for i in range(3):
        np.testing.assert_array_equal(s[i], data[i])  # nodata read as NaN
    assert s._open == {}  # whole rasters: nothing kept open
    np.testing.assert_array_equal(s.rows(4, 9), data[:, 4:9])
    assert sorted(s._open) == [0, 1, 2]  # windows: kept open for the block cache
    np.testing.assert_array_equal(s[1], data[1])  # an open file is read, and stays open
    assert sorted(s._open) == [0, 1, 2]
    s.close()
    assert s._open == {}
    np.testing.assert_array_equal(s[2], data[2])


def test_dask_chunk_reads_read_only_their_window(tmp_path, monkeypatch):
    """dask's chunk getter indexes with an integer year (``(3, slice(r0, r1), slice(0, W))``): that
    reads one year's rows, not the whole stack (at the full grid x 25 years the NetCDF read every
    year of every row for each of its 500 blocks). Every integer/slice mix gives NumPy's answer."""
    import dask.array as dsa
    import pytest

    rng = np.random.default_rng(1)
    data = rng.random((4, 20, 30)).astype("float32")
    paths = []
    for i, a in enumerate(data):
        paths.append(tmp_path / f"y{i}.tif")
        _write(paths[-1], a)
    s = RasterStack(paths, (20, 30))
    reads = []
    real = RasterStack._read
    monkeypatch.setattr(RasterStack, "_read", lambda self, i, *a, **k: reads.append(i) or real(self, i, *a, **k))
    keys = [
        (2, slice(5, 12), slice(0, 30)),
        (slice(1, 3), 7),
        (-1, slice(None), 4),
        (0, 3, 5),
        (slice(0, 4), slice(2, 9)),
    ]
    for key in keys:
        reads.clear()
        np.testing.assert_array_equal(s[key], data[key])
        n_years = len(range(4)[key[0]]) if isinstance(key[0], slice) else 1
        assert len(reads) == n_years, (key, reads)
    lazy = dsa.from_array(s, chunks=(1, 10, 30), asarray=True, meta=np.empty((0, 0, 0), "float32"))
    reads.clear()
    np.testing.assert_array_equal(lazy[3, 0:10].compute(), data[3, 0:10])
    assert reads == [3]
    with pytest.raises(IndexError):
        s[4, 0:3]
