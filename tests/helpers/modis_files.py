"""Small synthetic MODIS granules written with pyhdf (HDF4-EOS-like) and rasterio (GeoTIFF exports).

Only what the readers look at is written: the SDS layers, ``StructMetadata.0`` (grid corners,
sinusoidal) and ``CoreMetadata.0`` (SHORTNAME, VERSIONID, RANGEBEGINNINGDATE) in ECS ODL form.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from gee_alt.grid import MODIS_1KM, MODIS_250M, MODIS_ORIGIN_X, MODIS_ORIGIN_Y, MODIS_SINUSOIDAL

LST_TYPES = {"LST_Day_1km": "uint16", "LST_Night_1km": "uint16"}  # the others are uint8
NDVI_SDS = {"NDVI": ("250m 16 days NDVI", "int16"), "SummaryQA": ("250m 16 days pixel reliability", "int8")}


def tile_corner(h: int, v: int, pixel_m: float, size: int) -> tuple[float, float]:
    """Upper-left corner (m) of a synthetic tile of ``size`` pixels at MODIS lattice position (h, v)."""
    return MODIS_ORIGIN_X + h * size * pixel_m, MODIS_ORIGIN_Y - v * size * pixel_m


def _core(product: str, version: str, date: dt.date) -> str:
    return (
        "GROUP = INVENTORYMETADATA\n"
        f'  OBJECT = SHORTNAME\n    NUM_VAL = 1\n    VALUE = "{product}"\n  END_OBJECT = SHORTNAME\n'
        f"  OBJECT = VERSIONID\n    NUM_VAL = 1\n    VALUE = {version}\n  END_OBJECT = VERSIONID\n"
        f'  OBJECT = RANGEBEGINNINGDATE\n    NUM_VAL = 1\n    VALUE = "{date.isoformat()}"\n'
        "  END_OBJECT = RANGEBEGINNINGDATE\nEND_GROUP = INVENTORYMETADATA\nEND\n"
    )


def _struct(grid_name: str, ulx: float, uly: float, pixel_m: float, nx: int, ny: int) -> str:
    return (
        f'GROUP=GridStructure\n\tGROUP=GRID_1\n\t\tGridName="{grid_name}"\n\t\tXDim={nx}\n\t\tYDim={ny}\n'
        f"\t\tUpperLeftPointMtrs=({ulx:.6f},{uly:.6f})\n"
        f"\t\tLowerRightMtrs=({ulx + nx * pixel_m:.6f},{uly - ny * pixel_m:.6f})\n"
        "\t\tProjection=GCTP_SNSOID\n\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nEND\n"
    )


def write_hdf(path: Path, product: str, date: dt.date, ul: tuple[float, float], layers: dict, version: str = "61"):
    """Write an HDF4 granule: ``layers`` = {SDS name: 2-D array (dtype kept)}."""
    from pyhdf.SD import SD, SDC

    dtypes = {
        "uint16": SDC.UINT16,
        "uint8": SDC.UINT8,
        "int16": SDC.INT16,
        "int8": SDC.INT8,
    }
    ny, nx = next(iter(layers.values())).shape
    pixel_m = MODIS_1KM if "11A1" in product else MODIS_250M
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    sd.attr("StructMetadata.0").set(SDC.CHAR, _struct("MODIS_Grid", ul[0], ul[1], pixel_m, nx, ny))
    sd.attr("CoreMetadata.0").set(SDC.CHAR, _core(product, version, date))
    for name, arr in layers.items():
        arr = np.ascontiguousarray(arr)
        sds = sd.create(name, dtypes[str(arr.dtype)], arr.shape)
        sds[:] = arr
        sds.endaccess()
    sd.end()
    return path


def lst_layers(day_dn, night_dn, qc_day=None, qc_night=None) -> dict:
    """MOD11A1 layers from LST DNs (uint16; 0 = fill); QC 0 (good) and view times 10.5 h / 22.5 h by default."""
    day_dn, night_dn = np.asarray(day_dn, "uint16"), np.asarray(night_dn, "uint16")
    z = np.zeros(day_dn.shape, "uint8")
    return {
        "LST_Day_1km": day_dn,
        "QC_Day": z if qc_day is None else np.asarray(qc_day, "uint8"),
        "Day_view_time": np.full(day_dn.shape, 105, "uint8"),
        "LST_Night_1km": night_dn,
        "QC_Night": z if qc_night is None else np.asarray(qc_night, "uint8"),
        "Night_view_time": np.full(day_dn.shape, 225, "uint8"),
    }


def degc_to_dn(t_degc) -> np.ndarray:
    """°C -> MOD11A1 DN (0.02 K), rounded."""
    return np.round((np.asarray(t_degc, "float64") + 273.15) / 0.02).astype("uint16")


def write_tiff_granule(path: Path, ul: tuple[float, float], pixel_m: float, layers: dict, tags: dict | None = None):
    """A GeoTIFF export of a granule: one band per layer (description = layer name), raw DNs."""
    import rasterio
    from affine import Affine

    arrs = list(layers.values())
    dtype = np.result_type(*[a.dtype for a in arrs])
    ny, nx = arrs[0].shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=nx,
        height=ny,
        count=len(arrs),
        dtype=str(dtype),
        crs=MODIS_SINUSOIDAL,
        transform=Affine(pixel_m, 0, ul[0], 0, -pixel_m, ul[1]),
    ) as dst:
        for i, (name, a) in enumerate(layers.items(), start=1):
            dst.write(a.astype(dtype), i)
            dst.set_band_description(i, name)
        if tags:
            dst.update_tags(**tags)
    return path
