"""STAC 1.0 Items for the yearly ALT Cloud-Optimized GeoTIFFs (hand-built, no pystac).

An Item (https://github.com/radiantearth/stac-spec/blob/v1.0.0/item-spec/item-spec.md) has
``type``, ``stac_version``, ``stac_extensions``, ``id``, ``geometry`` (WGS84 footprint),
``bbox``, ``properties`` (``datetime`` — here ``null`` with ``start_datetime``/``end_datetime``
for the calendar year, as the spec allows), ``links`` and ``assets``. The projection extension
v1.1.0 adds ``proj:epsg`` (or ``proj:wkt2``), ``proj:shape`` ``[height, width]`` and
``proj:transform`` (the 6 affine coefficients + ``0, 0, 1``); the raster extension v1.1.0 adds
``raster:bands`` (data type, nodata, unit).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gee_alt import __version__
from gee_alt.grid import Grid, bounds, shape_yx
from gee_alt.io import write_json_atomic

STAC_VERSION = "1.0.0"
PROJ_EXT = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
RASTER_EXT = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def footprint_lonlat(grid: Grid, densify: int = 21) -> tuple[dict, list[float]]:
    """``(geometry, bbox)``: the grid outline as a GeoJSON Polygon in lon/lat and its bbox.

    Each edge is densified with ``densify`` points so curved edges of a projected grid are followed.
    """
    from pyproj import Transformer

    left, bottom, right, top = bounds(grid)
    t = np.linspace(0.0, 1.0, densify)[:-1]
    xs = np.concatenate([left + (right - left) * t, np.full(t.size, right), right - (right - left) * t, np.full(t.size, left)])
    ys = np.concatenate([np.full(t.size, top), top - (top - bottom) * t, np.full(t.size, bottom), bottom + (top - bottom) * t])
    tr = Transformer.from_crs(grid["crs"], "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat)]
    ring.append(ring[0])
    bbox = [float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def _proj_fields(grid: Grid) -> dict:
    from pyproj import CRS

    crs = CRS.from_user_input(grid["crs"])
    h, w = shape_yx(grid)
    out = {"proj:shape": [h, w], "proj:transform": [float(v) for v in grid["crs_transform"]] + [0.0, 0.0, 1.0],
           "proj:bbox": [float(v) for v in bounds(grid)]}
    epsg = crs.to_epsg()
    if epsg:
        out["proj:epsg"] = int(epsg)
    else:
        out["proj:epsg"] = None
        out["proj:wkt2"] = crs.to_wkt()
    return out


def make_stac_item(cog_href: str, grid: Grid, year: int, *, item_id: str | None = None,
                   variable: str = "alt_m", unit: str = "m", title: str | None = None,
                   properties: dict | None = None, collection: str | None = None,
                   extra_assets: dict | None = None) -> dict:
    """A STAC 1.0 Item dict for one yearly COG on ``grid`` (``cog_href`` relative or absolute).

    ``properties`` are merged into the Item properties (e.g. Stefan ``E``, synthetic flag);
    ``extra_assets`` maps asset keys to ``(href, title, unit)`` for e.g. the ALT sd COG.
    """
    geometry, bbox = footprint_lonlat(grid)
    proj = _proj_fields(grid)
    props = {
        "datetime": None,
        "start_datetime": f"{int(year):04d}-01-01T00:00:00Z",
        "end_datetime": f"{int(year):04d}-12-31T23:59:59Z",
        "title": title or f"Active-layer thickness {int(year)}",
        "gee_alt:version": __version__,
        "gee_alt:variable": variable,
        **proj,
    }
    props.update(properties or {})

    def asset(href, atitle, aunit):
        return {"href": str(href), "type": COG_TYPE, "title": atitle, "roles": ["data"],
                "raster:bands": [{"data_type": "float32", "nodata": "nan", "unit": aunit, "spatial_resolution":
                                  float(grid["crs_transform"][0])}]}

    assets = {variable: asset(cog_href, props["title"], unit)}
    for key, (href, atitle, aunit) in (extra_assets or {}).items():
        assets[key] = asset(href, atitle, aunit)
    item = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [PROJ_EXT, RASTER_EXT],
        "id": item_id or f"gee-alt-{variable}-{int(year)}",
        "geometry": geometry,
        "bbox": bbox,
        "properties": props,
        "links": [],
        "assets": assets,
    }
    if collection:
        item["collection"] = collection
        item["links"].append({"rel": "collection", "href": f"./{collection}.json", "type": "application/json"})
    return item


def write_stac_item(path: str | os.PathLike, item: dict) -> Path:
    """Write an Item atomically; adds a ``self`` link with the file name."""
    item = dict(item)
    item["links"] = [ln for ln in item.get("links", []) if ln.get("rel") != "self"] + [
        {"rel": "self", "href": f"./{Path(path).name}", "type": "application/geo+json"}]
    return write_json_atomic(path, item)


def stac_item_for_cog(cog_path: str | os.PathLike, year: int, *, href: str | None = None, **kwargs) -> dict:
    """An Item for a COG on disk: grid read from the file, ``href`` defaults to its file name."""
    from gee_alt.io import read_raster

    r = read_raster(cog_path)
    return make_stac_item(href or Path(cog_path).name, r.grid, year, **kwargs)
