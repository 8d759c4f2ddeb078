"""DEM tiles (Copernicus GLO-30, SRTM, NASADEM GeoTIFFs) -> ``dem.tif`` on the AOI's 30 m grid.

The tiles are mosaicked (``rasterio.merge``, only over the AOI's bounds plus a margin) and
reprojected bilinearly (as the Earth Engine engine resamples its DEM) onto the output grid:
the UTM zone of the AOI, pixel edges at ``grid.origin_offset_m`` + k·30 m (:meth:`StudyConfig.grid`).
Elevation in metres (band ``elevation_m``); the tiles' nodata stays NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, affine_of, bounds, shape_yx


def check_dem_tiles(paths: list[Path]) -> None:
    """Each tile readable, one band, georeferenced, all in one CRS (one line naming a bad file)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    if not paths:
        raise GeeAltError("no DEM tile given (--dem FILE or FOLDER)")
    crs0 = None
    for p in paths:
        try:
            with rasterio.open(p) as src:
                if src.crs is None:
                    raise GeeAltError(f"{p}: DEM tile has no CRS")
                if src.count != 1:
                    raise GeeAltError(f"{p}: DEM tile has {src.count} bands, expected 1 (elevation)")
                crs0 = crs0 or src.crs
                if src.crs != crs0:
                    raise GeeAltError(f"{p}: DEM tile CRS {src.crs} differs from {crs0} of the first tile")
        except (RasterioIOError, OSError) as exc:
            raise GeeAltError(f"{p}: not a readable DEM raster ({str(exc).splitlines()[0][:100]})") from None


def dem_on_grid(paths: list[Path], grid: Grid) -> np.ndarray:
    """Elevation (m, float32, NaN = no data) of the mosaicked tiles on ``grid``; raises when the
    tiles leave part of the grid uncovered."""
    import rasterio
    from rasterio.merge import merge
    from rasterio.warp import Resampling, reproject, transform_bounds

    check_dem_tiles(paths)
    with rasterio.open(paths[0]) as src:
        src_crs = src.crs
    left, bottom, right, top = transform_bounds(grid["crs"], src_crs, *bounds(grid), densify_pts=21)
    mx, my = (right - left) * 0.02, (top - bottom) * 0.02
    datasets = [rasterio.open(p) for p in paths]
    try:
        overlapping = [d for d in datasets if not rasterio.coords.disjoint_bounds(d.bounds, (left, bottom, right, top))]
        if not overlapping:
            raise GeeAltError(f"{paths[0]}: the DEM tiles given do not overlap the AOI")
        mosaic, transform = merge(
            overlapping, bounds=(left - mx, bottom - my, right + mx, top + my), nodata=np.nan, dtype="float32"
        )
    finally:
        for d in datasets:
            d.close()
    out = np.full(shape_yx(grid), np.nan, "float32")
    reproject(
        mosaic[0],
        out,
        src_transform=transform,
        src_crs=src_crs,
        src_nodata=np.nan,
        dst_transform=affine_of(grid),
        dst_crs=grid["crs"],
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    missing = float(np.isnan(out).mean())
    if missing > 0.01:
        raise GeeAltError(
            f"{paths[0]}: the DEM tiles given do not cover the AOI ({missing:.0%} of the 30 m grid has no "
            "elevation); add the missing tiles"
        )
    return out
