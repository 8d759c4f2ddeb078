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
