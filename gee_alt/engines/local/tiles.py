"""Tiles of the fine grid and the files they are kept in while the local engine runs.

A scene is cut into square tiles of ``tile_px`` (the last row and column of tiles may be
smaller). Each tile's intermediate rasters are plain GeoTIFFs on the tile's window of the grid;
the tiles of one quantity are seen as one raster of the whole grid through a GDAL VRT mosaic,
so GDAL's warper aggregates them to the coarse grid exactly as it aggregates the same values
held in memory (tested: the same bytes for any tile size), reading a chunk at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from gee_alt.grid import Grid, affine_of, rasterio_profile, shape_yx, subgrid
from gee_alt.io import atomic_path

# GDAL's block cache of the processes reading tiles (MB; set by every task, see
# gee_alt.memory.set_gdal_cache_mb): the default (5 % of RAM) would grow with the extent; a
# small cache keeps memory about the tile.
GDAL_CACHE_MB = 64
# The warper's working memory (MB) when it reads a mosaic: GDAL reads the source a chunk at a
# time within this budget, so memory does not grow with the extent. The 512 x 512 demo window
# (27 composites) fits in one chunk, as in memory (gee_alt.science.resample._warp, 512 MB), so
# its bytes are the in-memory engine's; larger scenes are chunked the same way whatever the
# tile size (the mosaic is the same raster).
WARP_MEM_MB = 128
# The same for GDAL's ``sum`` resampling (the coverage counts): GDAL's own estimate of what a
# chunk needs is ~14x too small for this kernel (measured at the full study grid: a 1-band
# float64 mosaic within a 128 MB budget is warped in one chunk that takes 750 MB), so it gets a
# budget that holds its real use near the others' (8 MB: 120 MB). The 512 x 512 window still fits
# one chunk (the in-memory engine's bytes).
WARP_SUM_MEM_MB = 8
_GDAL_TYPES = {"float32": "Float32", "float64": "Float64"}


@dataclass(frozen=True)
class Tile:
    """A window of the fine grid: row and column offset, height and width (pixels)."""

    row: int
    col: int
    height: int
    width: int

    @property
    def name(self) -> str:
        return f"r{self.row:06d}_c{self.col:06d}"

    @property
    def window(self) -> tuple[int, int, int, int]:
        """``(row_off, col_off, height, width)`` as :func:`gee_alt.science.resample.interpolate` takes it."""
        return (self.row, self.col, self.height, self.width)

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def grid(self, grid: Grid) -> Grid:
        """The tile's own grid (a window of ``grid``)."""
        return subgrid(grid, self.col, self.row, self.width, self.height)

    def slices(self) -> tuple[slice, slice]:
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


def tiles_of(grid: Grid, tile_px: int) -> list[Tile]:
    """The tiles of ``grid`` in row-major order (square ``tile_px``, smaller at the right and bottom)."""
    h, w = shape_yx(grid)
    return [
        Tile(r, c, min(tile_px, h - r), min(tile_px, w - c)) for r in range(0, h, tile_px) for c in range(0, w, tile_px)
    ]


def n_tiles(grid: Grid, tile_px: int) -> int:
    h, w = shape_yx(grid)
    return math.ceil(h / tile_px) * math.ceil(w / tile_px)


def read_window(path: str | Path, tile: Tile, *, halo: int = 0, grid: Grid | None = None) -> tuple[np.ndarray, tuple]:
    """Read all bands of ``tile`` from a raster on the whole grid, with up to ``halo`` pixels
    around it (fewer at the grid's edges), float32 with nodata as NaN.

    Returns ``(data, (top, left))``: ``data`` is ``(band, y, x)`` and ``(top, left)`` the halo
    pixels actually included above and left of the tile (crop with them)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as src:
        r0, c0 = max(0, tile.row - halo), max(0, tile.col - halo)
        r1, c1 = min(src.height, tile.row + tile.height + halo), min(src.width, tile.col + tile.width + halo)
        masked = src.read(window=Window(c0, r0, c1 - c0, r1 - r0), masked=True)
        data = (
            masked.filled(np.nan).astype("float32")
            if masked.dtype.kind == "f"
            else np.where(np.ma.getmaskarray(masked), np.nan, masked.data).astype("float32")
        )
    return data, (tile.row - r0, tile.col - c0)


def read_tile(path: str | Path) -> np.ndarray:
    """All bands of a tile file written by :func:`write_tile`, in its dtype (``(band, y, x)``)."""
    import rasterio

    with rasterio.open(path) as src:
        return src.read()


def write_tile(path: str | Path, data: np.ndarray, grid: Grid, tile: Tile) -> Path:
    """Write ``data`` ((band,) y, x; float32 or float64) of ``tile`` as an uncompressed GeoTIFF, atomically."""
    import rasterio

    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    dtype = "float64" if arr.dtype == np.float64 else "float32"
    prof = rasterio_profile(tile.grid(grid), count=arr.shape[0], dtype=dtype)
    # band-interleaved: a read of one band (a warp of some bands of a mosaic) decodes that band only
    prof.update(driver="GTiff", nodata=np.nan, tiled=True, blockxsize=256, blockysize=256, interleave="band")
    if tile.width < 256 or tile.height < 256:
        prof.update(tiled=False)
        prof.pop("blockxsize")
        prof.pop("blockysize")
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **prof) as dst:
            dst.write(arr.astype(dtype, copy=False))
    return Path(path)


def write_mosaic(path: str | Path, parts: list[tuple[Tile, Path]], grid: Grid, count: int, dtype: str) -> Path:
    """A GDAL VRT showing the tile files ``parts`` as one ``count``-band ``dtype`` raster of ``grid``."""
    from rasterio.crs import CRS

    a, b, c, d, e, f = grid["crs_transform"]
    w, h = grid["shape_2d"]
    gdt = _GDAL_TYPES[dtype]
    lines = [
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">',
        f"<SRS>{escape(CRS.from_user_input(grid['crs']).to_wkt())}</SRS>",
        f"<GeoTransform>{c!r}, {a!r}, {b!r}, {f!r}, {d!r}, {e!r}</GeoTransform>",
    ]
    for k in range(1, count + 1):
        lines.append(f'<VRTRasterBand dataType="{gdt}" band="{k}"><NoDataValue>nan</NoDataValue>')
        for t, p in parts:
            lines.append(
                f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(str(Path(p).resolve()))}</SourceFilename>'
                f"<SourceBand>{k}</SourceBand>"
                f'<SrcRect xOff="0" yOff="0" xSize="{t.width}" ySize="{t.height}"/>'
                f'<DstRect xOff="{t.col}" yOff="{t.row}" xSize="{t.width}" ySize="{t.height}"/></SimpleSource>'
            )
        lines.append("</VRTRasterBand>")
    lines.append("</VRTDataset>")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def warp_mosaic(
    path: str | Path, bands: list[int], coarse_grid: Grid, resampling, *, fill=np.nan, mem_mb: int = WARP_MEM_MB
) -> np.ndarray:
    """GDAL warp of ``bands`` (1-based) of a mosaic onto ``coarse_grid``: the same call (and the
    same bytes) as :func:`gee_alt.science.resample._warp` on the values in memory, within
    ``mem_mb`` MB of GDAL's working memory (a scene larger than that is warped in chunks)."""
    import rasterio
    from rasterio.warp import reproject

    with rasterio.open(path) as src:
        dtype = "float32" if src.dtypes[bands[0] - 1] == "float32" else "float64"
        dst = np.full((len(bands), *shape_yx(coarse_grid)), fill, dtype=dtype)
        reproject(
            source=rasterio.band(src, bands),
            destination=dst,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=affine_of(coarse_grid),
            dst_crs=coarse_grid["crs"],
            src_nodata=np.nan,
            dst_nodata=np.nan,
            resampling=resampling,
            num_threads=1,  # the tasks run side by side already; same bytes, ~40 % less memory
            warp_mem_limit=mem_mb,
        )
    return dst


def read_mosaic_band(path: str | Path, band: int) -> np.ndarray:
    """One band of a mosaic over the whole grid (``(y, x)``, the mosaic's dtype)."""
    import rasterio

    with rasterio.open(path) as src:
        return src.read(band)
