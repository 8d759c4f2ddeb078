"""STAC Items for the yearly ALT Cloud-Optimized GeoTIFFs, built with pystac from the grid in hand.

One Item per year (:func:`alt_item`): id ``gee-alt-alt_m-YYYY``; ``datetime`` null with
``start_datetime``/``end_datetime`` spanning the calendar year (UTC); geometry and bbox the grid
outline in lon/lat (:func:`footprint_lonlat`); the projection extension on the Item (EPSG code,
or WKT2 when the CRS has none; ``proj:shape`` ``[height, width]``; ``proj:transform`` the 6
affine coefficients + ``0, 0, 1``; ``proj:bbox`` in CRS units); one COG asset for ALT and, when
given, one for its 1-sigma spread, each with the raster extension's ``raster:bands`` (float32,
nodata NaN, unit m, spatial resolution in CRS units). :func:`write_item` writes it atomically.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np
import pystac
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, NoDataStrings, RasterBand, RasterExtension

from gee_alt import __version__
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, bounds, pixel_size, shape_yx
from gee_alt.io import write_json_atomic

ALT_ASSET = "alt_m"
ALT_SD_ASSET = "alt_sd_m"


def footprint_lonlat(grid: Grid, densify: int = 21) -> tuple[dict, list[float]]:
    """``(geometry, bbox)``: the grid outline as a GeoJSON Polygon in lon/lat (degrees) and its bbox.

    Each edge is densified with ``densify`` points so curved edges of a projected grid are followed.
    """
    from pyproj import Transformer

    left, bottom, right, top = bounds(grid)
    t = np.linspace(0.0, 1.0, densify)[:-1]
    xs = np.concatenate(
        [left + (right - left) * t, np.full(t.size, right), right - (right - left) * t, np.full(t.size, left)]
    )
    ys = np.concatenate(
        [np.full(t.size, top), top - (top - bottom) * t, np.full(t.size, bottom), bottom + (top - bottom) * t]
    )
    tr = Transformer.from_crs(grid["crs"], "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    bbox = [float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def calendar_year_utc(year: int) -> tuple[_dt.datetime, _dt.datetime]:
    """First and last second of calendar ``year`` (UTC)."""
    utc = _dt.UTC
    return _dt.datetime(year, 1, 1, tzinfo=utc), _dt.datetime(year, 12, 31, 23, 59, 59, tzinfo=utc)


def alt_item(
    grid: Grid, year: int, alt_href: str, alt_sd_href: str | None = None, *, properties: dict | None = None
) -> pystac.Item:
    """The STAC Item of one year's ALT COG (``alt_href``, m) on ``grid``, and of its 1-sigma COG.

    Hrefs are used as given (relative to the Item file, e.g. ``"alt_2020.tif"``, or absolute).
    ``properties`` (e.g. Stefan ``gee_alt:E``) are merged into the Item properties.
    """
    year = int(year)
    geometry, bbox = footprint_lonlat(grid)
    start, end = calendar_year_utc(year)
    title = f"Active-layer thickness {year}"
    props = {"title": title, "gee_alt:version": __version__, "gee_alt:variable": ALT_ASSET, **(properties or {})}
    item = pystac.Item(
        id=f"gee-alt-{ALT_ASSET}-{year}",
        geometry=geometry,
        bbox=bbox,
        datetime=None,
        properties=props,
        start_datetime=start,
        end_datetime=end,
    )
    ProjectionExtension.ext(item, add_if_missing=True).apply(**projection_fields(grid))
    _add_cog_asset(item, ALT_ASSET, alt_href, title, "m", grid)
    if alt_sd_href is not None:
        _add_cog_asset(
            item, ALT_SD_ASSET, alt_sd_href, f"1-sigma uncertainty of active-layer thickness {year}", "m", grid
        )
    return item


def projection_fields(grid: Grid) -> dict:
    """Keyword arguments of ``ProjectionExtension.apply`` for ``grid``: ``epsg`` (or ``wkt2`` when the
    CRS has no EPSG code), ``shape`` ``[height, width]`` (px), ``transform`` (9 affine coefficients,
    CRS units) and ``bbox`` ``[left, bottom, right, top]`` (CRS units)."""
    from pyproj import CRS

    crs = CRS.from_user_input(grid["crs"])
    epsg = crs.to_epsg()
    return {
        "epsg": epsg,
        "wkt2": None if epsg else crs.to_wkt(),
        "shape": list(shape_yx(grid)),
        "transform": [float(v) for v in grid["crs_transform"]] + [0.0, 0.0, 1.0],
        "bbox": [float(v) for v in bounds(grid)],
    }


def _add_cog_asset(item: pystac.Item, key: str, href: str, title: str, unit: str, grid: Grid) -> None:
    """Add a float32 COG asset (nodata NaN, ``unit``) with its ``raster:bands`` to ``item``."""
    item.add_asset(key, pystac.Asset(href=str(href), media_type=pystac.MediaType.COG, title=title, roles=["data"]))
    band = RasterBand.create(
        data_type=DataType.FLOAT32, nodata=NoDataStrings.NAN, unit=unit, spatial_resolution=pixel_size(grid)
    )
    RasterExtension.ext(item.assets[key], add_if_missing=True).bands = [band]


def write_item(path: str | os.PathLike, item: pystac.Item) -> Path:
    """Write ``item`` as JSON atomically, with a ``self`` link to the file name.

    The self link is relative (``./alt_2020.stac.json``), as are the asset hrefs, so a run folder can
    be moved and two runs of the same inputs give the same bytes.
    """
    d = item.to_dict(include_self_link=False, transform_hrefs=False)
    d["links"] = [ln for ln in d["links"] if ln["rel"] != "self"] + [
        {"rel": "self", "href": f"./{Path(path).name}", "type": pystac.MediaType.GEOJSON.value}
    ]
    return write_json_atomic(path, d)


def stac_item_for_cog(cog_path: str | os.PathLike, year: int, *, href: str | None = None, **kwargs) -> pystac.Item:
    """:func:`alt_item` for an ALT COG on disk: only its grid is read; ``href`` defaults to its file name.

    ``kwargs`` go to :func:`alt_item` (``alt_sd_href``, ``properties``).
    """
    import rioxarray

    from gee_alt.cube import grid_of

    p = Path(cog_path)
    if not p.is_file():
        raise GeeAltError(f"COG not found: {p}")
    with rioxarray.open_rasterio(p) as da:  # lazy: georeferencing only, no pixels read
        grid = grid_of(da)
    return alt_item(grid, year, href or p.name, **kwargs)
