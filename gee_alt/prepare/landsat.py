"""Landsat Collection 2 Level-2 scenes (folders or ``.tar``) -> growing-season NDVI on the DEM grid.

As the Earth Engine engine (:func:`gee_alt.engines.ee.composite.landsat_ndvi_composite`): per
scene, NDVI from the mission's red/NIR ``SR_B*`` bands (scale/offset and bands from
:mod:`gee_alt.science.product_rules`), reflectance resampled bilinearly onto the 30 m grid, the
``QA_PIXEL``/``QA_RADSAT`` masks nearest-neighbour; clear when QA_PIXEL bits 0-4 (and bit 5 snow
with ``qa.landsat_mask_snow``) and QA_RADSAT are 0; the per-pixel median over the scenes acquired
in the growing season. Done in row blocks of the grid, so memory is bounded by
(scenes × block), not by the scene or the AOI size.

A scene is recognised by its product id (``LC08_L2SP_133033_20190715_20200827_02_T1``): the
mission (LT04/LT05/LE07/LC08/LC09), the level (``L2SP``/``L2SR``), the acquisition date and the
collection number (``02``); Collection 1 (``01``) and Level-1 products are refused.
"""

from __future__ import annotations

import datetime as dt
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, affine_of, shape_yx, subgrid
from gee_alt.science import product_rules as rules

_ID = re.compile(r"(L[CETMO]0\d)_(L\w{3})_(\d{6})_(\d{8})_(\d{8})_(\d{2})_(T1|T2|RT)")
BLOCK_ROWS = 256


@dataclass
class LandsatScene:
    """One Collection 2 Level-2 scene: where its band files are (GDAL paths; ``/vsitar/`` for tars)."""

    source: Path
    product_id: str
    mission: int
    date: dt.date
    files: dict[str, str]

    def band_path(self, band: str) -> str:
        return self.files[band]


def looks_like_scene(path: Path) -> bool:
    """A scene folder/tar: its name is a product id, or it holds a ``*_QA_PIXEL.TIF``."""
    if _ID.search(path.name):
        return True
    return path.is_dir() and any(q.name.upper().endswith("_QA_PIXEL.TIF") for q in path.iterdir())


def _members(source: Path) -> list[str]:
    if source.is_dir():
        return [str(p) for p in sorted(source.iterdir())]
    try:
        with tarfile.open(source) as tf:
            names = tf.getnames()
    except (tarfile.TarError, OSError):
        raise GeeAltError(f"{source}: not a readable Landsat scene archive (.tar)") from None
    return [f"/vsitar/{source}/{n}" for n in names]


def open_scene(source: str | Path) -> LandsatScene:
    """Identify a scene folder or ``.tar`` (one line naming it when it is not a C2 L2 scene)."""
    source = Path(source)
    if not source.exists():
        raise GeeAltError(f"{source}: Landsat scene not found")
    members = _members(source)
    m = next((m for n in [source.name, *members] if (m := _ID.search(Path(n).name))), None)
    if m is None:
        raise GeeAltError(f"{source}: no Landsat product id in it (e.g. LC08_L2SP_133033_20190715_20200827_02_T1)")
    sensor, level, _, acq, _, coll, _ = m.groups()
    if coll != "02":
        raise GeeAltError(f"{source}: Landsat Collection {int(coll)} scene; gee-alt needs Collection 2 Level-2")
    if not level.startswith("L2"):
        raise GeeAltError(f"{source}: Landsat {level} (Level-1) scene; gee-alt needs Collection 2 Level-2 (L2SP)")
    mission = int(sensor[2:])
    if mission not in rules.LANDSAT_NDVI_BANDS:
        raise GeeAltError(f"{source}: Landsat {mission} is not supported (4, 5, 7, 8, 9)")
    red, nir = rules.LANDSAT_NDVI_BANDS[mission]
    files = {}
    for band in (red, nir, "QA_PIXEL", "QA_RADSAT"):
        hit = [n for n in members if n.upper().endswith(f"_{band}.TIF")]
        if not hit:
            raise GeeAltError(f"{source}: Landsat {sensor} scene has no {band} band file")
        files[band] = hit[0]
    date = dt.date(int(acq[:4]), int(acq[4:6]), int(acq[6:]))
    return LandsatScene(source, m.group(0), mission, date, {"red": files[red], "nir": files[nir], **files})


def _on_grid(path: str, grid: Grid, resampling, dtype) -> np.ndarray:
    import rasterio
    from rasterio.warp import reproject

    out = np.zeros(shape_yx(grid), dtype)
    with rasterio.open(path) as src:
        nodata = src.nodata if src.nodata is not None else 0
        if np.dtype(dtype).kind == "f":
            out[:] = np.nan
            reproject(
                rasterio.band(src, 1),
                out,
                src_nodata=nodata,
                dst_transform=affine_of(grid),
                dst_crs=grid["crs"],
                dst_nodata=np.nan,
                resampling=resampling,
            )
        else:  # QA bands: outside the scene counts as fill (QA_PIXEL bit 0)
            out[:] = 1
            reproject(
                rasterio.band(src, 1),
                out,
                dst_transform=affine_of(grid),
                dst_crs=grid["crs"],
                src_nodata=None,
                dst_nodata=1,
                resampling=resampling,
            )
    return out


def scene_ndvi(scene: LandsatScene, grid: Grid, mask_snow: bool) -> np.ndarray:
    """One scene's clear-sky NDVI (float64, NaN elsewhere) on ``grid``."""
    from rasterio.warp import Resampling

    try:
        red_dn = _on_grid(scene.band_path("red"), grid, Resampling.bilinear, "float64")
        nir_dn = _on_grid(scene.band_path("nir"), grid, Resampling.bilinear, "float64")
        qa = _on_grid(scene.band_path("QA_PIXEL"), grid, Resampling.nearest, "uint16")
        rad = _on_grid(scene.band_path("QA_RADSAT"), grid, Resampling.nearest, "uint16")
    except GeeAltError:
        raise
    except Exception as exc:
        raise GeeAltError(f"{scene.source}: cannot read its bands ({str(exc).splitlines()[0][:100]})") from None
    v = rules.ndvi(rules.landsat_reflectance(nir_dn), rules.landsat_reflectance(red_dn))
    return np.where(rules.landsat_clear(qa, rad, mask_snow), v, np.nan)


def composite_year(
    scenes: list[LandsatScene],
    start: dt.date,
    end: dt.date,
    grid: Grid,
    mask_snow: bool,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Median clear-sky NDVI over the scenes acquired in ``[start, end)`` (float32, NaN = none)."""
    import warnings

    chosen = [s for s in scenes if start <= s.date < end]
    h, w = shape_yx(grid)
    out = np.full((h, w), np.nan, "float32")
    if not chosen:
        return out
    for r0 in range(0, h, BLOCK_ROWS):
        rows = min(BLOCK_ROWS, h - r0)
        block = subgrid(grid, 0, r0, w, rows)
        stack = np.stack([scene_ndvi(s, block, mask_snow) for s in chosen])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[r0 : r0 + rows] = np.nanmedian(stack, axis=0)
        if progress:
            progress(rows)
    return out
