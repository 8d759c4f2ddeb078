"""MODIS granules as distributed: HDF4-EOS tiles (read with pyhdf) or GeoTIFF exports.

A :class:`ModisGranule` names the product (``MOD11A1``, ``MYD11A1``, ``MOD13Q1``),
collection (``"6"`` or ``"6.1"``), date (first day), its pixel grid (MODIS sinusoidal) and reads
any of its layers over a pixel window, so only the AOI's part of a tile is ever in memory.

- HDF4-EOS: product, collection and date from the ECS ``CoreMetadata.0`` (``SHORTNAME``,
  ``VERSIONID``, ``RANGEBEGINNINGDATE``), the grid from ``StructMetadata.0``
  (``UpperLeftPointMtrs``, ``XDim``/``YDim``). GDAL is not needed (rasterio's wheels carry no
  HDF4 driver): pyhdf is the ``gee-alt[hdf]`` extra.
- GeoTIFF exports (e.g. ``gdal_translate`` of the SDS, Earth Engine exports of the collection
  image): one file per granule with band descriptions naming the layers (``LST_Day_1km``, ...;
  MOD13Q1 as Earth Engine names them: ``NDVI``, ``SummaryQA``), raw DNs; product, date
  (``A2019305`` or ``2019_11_01``/``2019-11-01``) and collection (``.061.``/``_061_``/``.006.``)
  from the file name, or the tags ``product``, ``date``, ``collection``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gee_alt.errors import GeeAltError
from gee_alt.grid import MODIS_SINUSOIDAL, Grid, make_grid

PRODUCTS = {  # short name -> (platform, kind)
    "MOD11A1": ("terra", "lst"),
    "MYD11A1": ("aqua", "lst"),
    "MOD13Q1": ("terra", "ndvi"),
}
#: Layer names per kind: the name used here (= Earth Engine band) -> HDF SDS name.
HDF_LAYERS = {
    "lst": {n: n for n in ("LST_Day_1km", "QC_Day", "Day_view_time", "LST_Night_1km", "QC_Night", "Night_view_time")},
    "ndvi": {"NDVI": "250m 16 days NDVI", "SummaryQA": "250m 16 days pixel reliability"},
}
_COLLECTIONS = {"6": "6", "006": "6", "61": "6.1", "061": "6.1"}
_NAME_PRODUCT = re.compile(r"(MOD11A1|MYD11A1|MOD13Q1|MYD13Q1|MOD11A2|MYD11A2|MOD13A1|MOD09GQ|MOD11_L2)", re.I)
_NAME_DOY = re.compile(r"A(\d{4})(\d{3})")
_NAME_YMD = re.compile(r"(\d{4})[_-](\d{2})[_-](\d{2})")
_NAME_COLLECTION = re.compile(r"[._/](006|061)[._/]")


def _hdf_suffix(path: Path) -> bool:
    return path.suffix.lower() in (".hdf", ".hdf4", ".h4")


@dataclass
class ModisGranule:
    """One MODIS granule (a tile-day for MOD11A1, a tile's 16-day composite for MOD13Q1)."""

    path: Path
    product: str
    collection: str
    date: dt.date
    grid: Grid

    @property
    def platform(self) -> str:
        return PRODUCTS[self.product][0]

    @property
    def kind(self) -> str:
        return PRODUCTS[self.product][1]

    def read(self, layer: str, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        """Raw DNs of ``layer`` (name as in :data:`HDF_LAYERS`) over a pixel window of the tile."""
        r1, c1 = row_off + height, col_off + width
        try:
            if _hdf_suffix(self.path):
                from pyhdf.SD import SD, SDC

                sd = SD(str(self.path), SDC.READ)
                try:
                    sds = sd.select(HDF_LAYERS[self.kind][layer])
                    return np.asarray(sds[row_off:r1, col_off:c1])
                finally:
                    sd.end()
            import rasterio
            from rasterio.windows import Window

            with rasterio.open(self.path) as src:
                band = list(src.descriptions).index(layer) + 1
                return src.read(band, window=Window(col_off, row_off, width, height))
        except Exception as exc:  # a corrupt or truncated file mid-read
            raise GeeAltError(f"{self.path}: cannot read {layer} ({str(exc).splitlines()[0][:100]})") from None


def _ecs_value(text: str, name: str) -> str | None:
    m = re.search(rf"OBJECT\s*=\s*{name}\b.*?VALUE\s*=\s*\"?([^\"\n]*)\"?", text, re.S)
    return m.group(1).strip() if m else None


def _struct_grid(struct: str, path: Path) -> Grid:
    try:
        nx = int(re.search(r"XDim=(\d+)", struct).group(1))
        ny = int(re.search(r"YDim=(\d+)", struct).group(1))
        ulx, uly = (float(v) for v in re.search(r"UpperLeftPointMtrs=\(([^)]*)\)", struct).group(1).split(","))
        lrx, lry = (float(v) for v in re.search(r"LowerRightMtrs=\(([^)]*)\)", struct).group(1).split(","))
    except (AttributeError, ValueError):
        raise GeeAltError(f"{path}: no MODIS grid in its StructMetadata (not an HDF-EOS grid file)") from None
    if "SNSOID" not in struct:
        raise GeeAltError(f"{path}: grid is not MODIS sinusoidal")
    return make_grid(MODIS_SINUSOIDAL, ((lrx - ulx) / nx, 0.0, ulx, 0.0, (lry - uly) / ny, uly), (nx, ny))


def _open_hdf(path: Path) -> ModisGranule:
    try:
        from pyhdf.SD import SD, SDC
    except ImportError:
        raise GeeAltError(f"{path}: reading HDF4 needs pyhdf: pip install 'gee-alt[hdf]'") from None
    try:
        sd = SD(str(path), SDC.READ)
    except Exception:
        raise GeeAltError(f"{path}: not a readable HDF4 file (corrupt or truncated?)") from None
    try:
        attrs = sd.attributes()
        names = set(sd.datasets())
    finally:
        sd.end()
    core = attrs.get("CoreMetadata.0", "")
    product = (_ecs_value(core, "SHORTNAME") or "").upper()
    if not product:
        m = _NAME_PRODUCT.search(path.name)
        product = m.group(1).upper() if m else ""
    if product not in PRODUCTS:
        raise GeeAltError(
            f"{path}: product {product or 'unknown'} is not one gee-alt prepares "
            "(MOD11A1/MYD11A1 daily LST, MOD13Q1 NDVI)"
        )
    version = _ecs_value(core, "VERSIONID")
    m = _NAME_COLLECTION.search("." + path.name)
    collection = _COLLECTIONS.get(version or "", None) or (_COLLECTIONS[m.group(1)] if m else None)
    if collection is None:
        raise GeeAltError(f"{path}: cannot tell the collection (6 or 6.1) from its metadata or name")
    begin = _ecs_value(core, "RANGEBEGINNINGDATE")
    try:
        date = dt.date.fromisoformat(begin) if begin else _name_date(path)
    except ValueError:
        date = _name_date(path)
    kind = PRODUCTS[product][1]
    missing = [sds for sds in HDF_LAYERS[kind].values() if sds not in names]
    if missing:
        raise GeeAltError(f"{path}: {product} layer(s) missing: {', '.join(missing)}")
    return ModisGranule(path, product, collection, date, _struct_grid(attrs.get("StructMetadata.0", ""), path))


def _name_date(path: Path) -> dt.date:
    if m := _NAME_DOY.search(path.name):
        return dt.date(int(m.group(1)), 1, 1) + dt.timedelta(days=int(m.group(2)) - 1)
    if m := _NAME_YMD.search(path.name):
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    raise GeeAltError(f"{path}: no date in the file name (A2019305 or 2019_11_01) or its tags")


def _open_tiff(path: Path) -> ModisGranule:
    import rasterio
    from rasterio.errors import RasterioIOError

    from gee_alt.grid import grid_from_rasterio

    try:
        with rasterio.open(path) as src:
            tags, desc = src.tags(), [d or "" for d in src.descriptions]
            grid = grid_from_rasterio(src.crs, src.transform, src.width, src.height)
    except (RasterioIOError, OSError) as exc:
        raise GeeAltError(f"{path}: not a readable raster ({str(exc).splitlines()[0][:100]})") from None
    m = _NAME_PRODUCT.search(tags.get("product", "") or path.name)
    product = m.group(1).upper() if m else ""
    if product not in PRODUCTS:
        raise GeeAltError(
            f"{path}: product {product or 'unknown'} is not one gee-alt prepares "
            "(MOD11A1/MYD11A1 daily LST, MOD13Q1 NDVI)"
        )
    c = tags.get("collection", "").replace("0", "", 1) if tags.get("collection") else None
    mc = _NAME_COLLECTION.search("." + path.name)
    collection = {"6": "6", "6.1": "6.1", "61": "6.1"}.get(c or "", None) or (_COLLECTIONS[mc.group(1)] if mc else None)
    if collection is None:
        raise GeeAltError(f"{path}: cannot tell the collection (6 or 6.1): put .061. in the name or a collection tag")
    date = dt.date.fromisoformat(tags["date"][:10]) if tags.get("date") else _name_date(path)
    kind = PRODUCTS[product][1]
    missing = [n for n in HDF_LAYERS[kind] if n not in desc]
    if missing:
        raise GeeAltError(f"{path}: {product} layer(s) missing (band descriptions): {', '.join(missing)}")
    return ModisGranule(path, product, collection, date, grid)


def open_granule(path: str | Path) -> ModisGranule:
    """Identify a MODIS granule (HDF4 or GeoTIFF); one-line :class:`GeeAltError` naming the file
    when it is unreadable, of another product, of unknown collection or lacks a layer."""
    p = Path(path)
    if not p.is_file():
        raise GeeAltError(f"{p}: file not found")
    return _open_hdf(p) if _hdf_suffix(p) else _open_tiff(p)


def expand_paths(items) -> list[Path]:
    """Files given on the command line: files as they are, folders by their .hdf/.tif files (sorted)."""
    out: list[Path] = []
    for it in items or []:
        p = Path(it)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in (".hdf", ".tif", ".tiff"))
        else:
            out.append(p)
    return out


def same_collection(granules: list[ModisGranule]) -> None:
    """Raise when granules mix collections 6 and 6.1 (names the first file of the minority)."""
    found: dict[str, ModisGranule] = {}
    for g in granules:
        found.setdefault(g.collection, g)
    if len(found) > 1:
        first = granules[0]
        other = next(g for g in granules if g.collection != first.collection)
        raise GeeAltError(
            f"{other.path}: collection {other.collection} mixed with collection {first.collection} "
            f"({first.path.name}); use one collection (6.1) throughout"
        )


def window_in(tile: Grid, target: Grid) -> tuple[int, int, int, int, int, int] | None:
    """Where ``tile`` and ``target`` (same MODIS lattice and pixel size) overlap:
    ``(tile_row, tile_col, target_row, target_col, height, width)``, or ``None``."""
    a = tile["crs_transform"][0]
    if abs(a - target["crs_transform"][0]) > 1e-6 * a:
        raise GeeAltError("MODIS tile and target grid differ in pixel size")
    dc = round((tile["crs_transform"][2] - target["crs_transform"][2]) / a)  # tile col 0 in target cols
    dr = round((target["crs_transform"][5] - tile["crs_transform"][5]) / a)  # tile row 0 in target rows
    tw, th = tile["shape_2d"]
    gw, gh = target["shape_2d"]
    c0, c1 = max(0, dc), min(gw, dc + tw)
    r0, r1 = max(0, dr), min(gh, dr + th)
    if c0 >= c1 or r0 >= r1:
        return None
    return r0 - dr, c0 - dc, r0, c0, r1 - r0, c1 - c0
