"""A user-supplied permafrost map as the run's permafrost criterion (issue 13 item 6).

Instead of a frost-number threshold, a map the user trusts (e.g. a regional permafrost map from
borehole-calibrated ground-temperature modelling) decides where permafrost is: a single-band
raster with **1 = permafrost, 0 = no permafrost** (its nodata, or NaN: unknown), in any CRS and
resolution. It is put on the run's 30 m grid by nearest neighbour (classes are not averaged) with
rasterio, written as ``RUN/permafrost_map.tif`` so that ``gee-alt alt`` reuses it, and it is
static: the same permafrost in every year (the frost number is still written beside it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.errors import GeeAltError

#: in the run directory: the user's map on the run's grid
PERMAFROST_MAP_TIF = runs.PERMAFROST_MAP_TIF


def check_permafrost_map(path: str | os.PathLike) -> Path:
    """Check the map before a run starts: readable, with a CRS, values 0/1 besides nodata.
    One-line :class:`GeeAltError` otherwise."""
    import rasterio
    from rasterio.errors import RasterioIOError

    p = Path(path)
    if not p.is_file():
        raise GeeAltError(f"permafrost map not found: {p}")
    try:
        with rasterio.open(p) as src:
            if src.crs is None:
                raise GeeAltError(f"{p.name} has no coordinate reference system")
            vals = np.unique(src.read(1, masked=True).astype("float64").compressed())
    except RasterioIOError:
        raise GeeAltError(f"{p.name} is not a readable raster") from None
    vals = vals[np.isfinite(vals)]
    bad = vals[~np.isin(vals, (0.0, 1.0))]
    if bad.size:
        raise GeeAltError(
            f"{p.name}: values must be 1 (permafrost) or 0 (none), found {', '.join(f'{v:g}' for v in bad[:3])}"
        )
    if not vals.size:
        raise GeeAltError(f"{p.name} has no valid pixel (all nodata)")
    return p


def read_permafrost_map(path: str | os.PathLike, grid) -> np.ndarray:
    """The map at ``path`` on ``grid``: ``(y, x)`` float32, 1 permafrost, 0 none, NaN unknown.

    One-line :class:`GeeAltError` when the map fails :func:`check_permafrost_map` or covers no
    pixel of the grid."""
    import rasterio
    from rasterio.warp import Resampling, reproject

    from gee_alt.grid import affine_of, shape_yx

    p = check_permafrost_map(path)
    with rasterio.open(p) as src:
        band = src.read(1, masked=True).astype("float64")
        out = np.full(shape_yx(grid), np.nan, "float32")
        reproject(
            band.filled(np.nan),
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=affine_of(grid),
            dst_crs=grid["crs"],
            dst_nodata=np.nan,
            resampling=Resampling.nearest,
        )
    if not np.isfinite(out).any():
        raise GeeAltError(f"{p.name} does not cover any pixel of the run's grid")
    return out


def criterion_of_map(path: str | os.PathLike, pmap: np.ndarray) -> dict:
    """The ``permafrost_criterion`` entry of ``calibration.json`` for a user map."""
    fin = np.isfinite(pmap)
    return {
        "rule": f"user permafrost map {Path(path).name} (1 = permafrost), static over the years",
        "source": "map",
        "map_file": PERMAFROST_MAP_TIF,
        "map_permafrost_fraction": float(np.mean(pmap[fin] == 1)) if fin.any() else float("nan"),
        "map_unknown_fraction": float(1 - fin.mean()),
        "frost_number_min": None,
    }
