"""Cloud-Optimized GeoTIFF writer: float32, nodata NaN, DEFLATE with the floating-point predictor.

The settings are fixed so the same array on the same grid gives the same bytes (the runs compare
files byte for byte). The write is atomic (:func:`gee_alt.io.atomic_path`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gee_alt import __version__
from gee_alt.grid import Grid, rasterio_profile, shape_yx
from gee_alt.io import atomic_path

# DEFLATE level 1 writes ~2x faster than the default level 6 for ~5 % larger files (full study
# grid: 0.38 s vs 0.81 s, 23.2 vs 22.2 MB); GDAL's compression threads give identical bytes.
COG_OPTIONS = dict(
    compress="DEFLATE",
    level=1,
    predictor=3,
    blocksize=512,
    overview_resampling="average",
    BIGTIFF="IF_SAFER",
    num_threads=2,
)

#: Above this band count a small grid gets tiles of its own size (GDAL decodes a whole
#: pixel-interleaved tile, all bands, for every band read: 368 bands of 512² px take 10 s).
MANY_BANDS = 16


def write_cog(
    path: str | os.PathLike,
    data: np.ndarray,
    grid: Grid,
    *,
    tags: dict | None = None,
    band_descriptions: list[str] | None = None,
    band_tags: list[dict] | None = None,
) -> Path:
    """Write a float32 Cloud-Optimized GeoTIFF (nodata NaN, DEFLATE level 1 with the floating-point
    predictor, 512 px tiles, overviews) atomically.

    ``data`` is ``(y, x)`` or ``(band, y, x)`` on ``grid``. ``tags`` (dataset metadata, e.g.
    ``units``, ``year``, ``method``) are stored with the package version added.
    """
    import rasterio

    arr = np.asarray(data, dtype="float32")
    if arr.ndim == 2:
        arr = arr[None]
    h, w = shape_yx(grid)
    if arr.shape[1:] != (h, w):
        raise ValueError(f"array shape {arr.shape[1:]} does not match grid (height, width) {(h, w)}")
    prof = rasterio_profile(grid, count=arr.shape[0])
    prof.update(driver="COG", **COG_OPTIONS)
    if arr.shape[0] > MANY_BANDS:  # pixel-interleaved tiles hold every band: keep them no larger than the grid
        prof["blocksize"] = min(COG_OPTIONS["blocksize"], 16 * -(-max(h, w) // 16))
    all_tags = {"gee_alt_version": __version__}
    all_tags.update({k: str(v) for k, v in (tags or {}).items()})
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **prof) as dst:
            dst.write(arr)
            dst.update_tags(**all_tags)
            for i in range(arr.shape[0]):
                if band_descriptions:
                    dst.set_band_description(i + 1, band_descriptions[i])
                if band_tags:
                    dst.update_tags(i + 1, **{k: str(v) for k, v in band_tags[i].items()})
    return Path(path)


def write_cog_from(
    path: str | os.PathLike,
    source: str | os.PathLike,
    *,
    tags: dict | None = None,
    band_descriptions: list[str] | None = None,
    band_tags: list[dict] | None = None,
) -> Path:
    """Write the COG of a float32 raster on disk (e.g. a VRT mosaic of tiles), streamed by GDAL
    (memory about a block, not the raster): the bytes :func:`write_cog` gives for the same values
    (tested). The metadata is set on ``source`` (a scratch VRT) before the copy."""
    import rasterio
    from rasterio.shutil import copy as copy_raster

    all_tags = {"gee_alt_version": __version__}
    all_tags.update({k: str(v) for k, v in (tags or {}).items()})
    with rasterio.open(source, "r+") as src:
        src.update_tags(**all_tags)
        for i in range(src.count):
            if band_descriptions:
                src.set_band_description(i + 1, band_descriptions[i])
            if band_tags:
                src.update_tags(i + 1, **{k: str(v) for k, v in band_tags[i].items()})
    with atomic_path(path) as tmp:
        copy_raster(str(source), str(tmp), driver="COG", **COG_OPTIONS)
    return Path(path)


class CogRows:
    """A COG written row chunk by row chunk: windowed writes into a striped scratch GeoTIFF next to
    ``path`` (uncompressed, so no block waits half written in GDAL's cache), then
    :func:`write_cog_from` (streamed by GDAL). The same bytes :func:`write_cog` gives for the whole
    array (tested); memory about a row chunk. Nothing exists at ``path`` until :meth:`close`.

    ``count`` bands float32 on ``grid``; ``tags``, ``band_descriptions``, ``band_tags`` as in
    :func:`write_cog`. :meth:`discard` removes the scratch file (an error stopped the run).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        grid: Grid,
        count: int = 1,
        *,
        tags: dict | None = None,
        band_descriptions: list[str] | None = None,
        band_tags: list[dict] | None = None,
    ):
        import tempfile

        import rasterio

        from gee_alt.io import TMP_PREFIX

        self.path, self.grid, self.count = Path(path), grid, int(count)
        self._meta = dict(tags=tags, band_descriptions=band_descriptions, band_tags=band_tags)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + self.path.name + ".rows.", suffix=".tif", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        prof = rasterio_profile(grid, count=self.count)
        prof.update(driver="GTiff", tiled=False, compress="NONE", BIGTIFF="IF_SAFER")
        self._dst = rasterio.open(self.tmp, "w", **prof)

    def write(self, row0: int, data: np.ndarray) -> None:
        """Write ``data`` (``(y, x)`` or ``(band, y, x)``, rows ``row0 .. row0 + len``) into the scratch file."""
        from rasterio.windows import Window

        arr = np.asarray(data, dtype="float32")
        if arr.ndim == 2:
            arr = arr[None]
        self._dst.write(arr, window=Window(0, int(row0), arr.shape[2], arr.shape[1]))

    def close(self) -> Path:
        """Finish: the COG at ``path`` (atomic), scratch removed."""
        self._dst.close()
        try:
            write_cog_from(self.path, self.tmp, **self._meta)
        finally:
            self.tmp.unlink(missing_ok=True)
        return self.path

    def discard(self) -> None:
        """Drop the scratch file without writing ``path``."""
        if not self._dst.closed:
            self._dst.close()
        self.tmp.unlink(missing_ok=True)
