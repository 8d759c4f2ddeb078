"""``osgeo.gdal`` stand-in on rasterio: in-memory datasets, ``Open``, ``Warp``, ``Translate``, ``MEM``.

Only what a raster-sharpening workflow such as pyDMS calls (see ``scripts/osgeo_shim/README.md``).
Datasets live in memory as ``(band, y, x)`` numpy arrays with a GDAL geotransform and a WKT
projection. Warps go through :func:`rasterio.warp.reproject`, i.e. GDAL's own warp kernels (rasterio
bundles libgdal), with gdalwarp's sizing and nodata rules re-stated here.
"""

from __future__ import annotations

import os

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject

# GDAL's resampling constants; rasterio.enums.Resampling uses the same numbers.
GRA_NearestNeighbour = 0
GRA_Bilinear = 1
GRA_Cubic = 2
GRA_CubicSpline = 3
GRA_Lanczos = 4
GRA_Average = 5
GRA_Mode = 6
GRA_Max = 8
GRA_Min = 9
GRA_Med = 10
GRA_Q1 = 11
GRA_Q3 = 12
GRA_Sum = 13
GRA_RMS = 14

GDT_Byte = 1
GDT_UInt16 = 2
GDT_Int16 = 3
GDT_UInt32 = 4
GDT_Int32 = 5
GDT_Float32 = 6
GDT_Float64 = 7
_DTYPES = {
    GDT_Byte: "uint8",
    GDT_UInt16: "uint16",
    GDT_Int16: "int16",
    GDT_UInt32: "uint32",
    GDT_Int32: "int32",
    GDT_Float32: "float32",
    GDT_Float64: "float64",
}

# gdalwarp's -r names
_RESAMPLING_NAMES = {
    "near": Resampling.nearest,
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "cubic": Resampling.cubic,
    "cubicspline": Resampling.cubic_spline,
    "lanczos": Resampling.lanczos,
    "average": Resampling.average,
    "mode": Resampling.mode,
    "max": Resampling.max,
    "min": Resampling.min,
    "med": Resampling.med,
    "q1": Resampling.q1,
    "q3": Resampling.q3,
    "sum": Resampling.sum,
    "rms": Resampling.rms,
}


def UseExceptions() -> None:  # noqa: N802 (GDAL's API names)
    """No-op: this stand-in always raises on errors."""


def DontUseExceptions() -> None:  # noqa: N802
    """No-op (see :func:`UseExceptions`)."""


def _crs_from(srs) -> CRS | None:
    """A rasterio CRS from WKT, PROJ string, ``EPSG:n`` or an ``osr.SpatialReference``."""
    if srs is None or srs == "":
        return None
    if hasattr(srs, "ExportToWkt"):
        srs = srs.ExportToWkt()
    return CRS.from_user_input(srs)


def _resampling(alg) -> Resampling:
    """gdalwarp's ``-r`` name or a ``GRA_*`` number -> rasterio Resampling (same numbers)."""
    if alg is None:
        return Resampling.nearest
    if isinstance(alg, str):
        try:
            return _RESAMPLING_NAMES[alg.lower()]
        except KeyError:
            raise ValueError(f"unsupported resampleAlg {alg!r}") from None
    return Resampling(int(alg))


class Band:
    """One band of a :class:`Dataset` (a view of its array)."""

    def __init__(self, ds: Dataset, index: int):
        self._ds, self._i = ds, index

    def ReadAsArray(self) -> np.ndarray:  # noqa: N802
        return self._ds._data[self._i].copy()

    def WriteArray(self, array, xoff: int = 0, yoff: int = 0) -> int:  # noqa: N802
        a = np.asarray(array)
        self._ds._data[self._i, yoff : yoff + a.shape[0], xoff : xoff + a.shape[1]] = a
        return 0

    def GetNoDataValue(self):  # noqa: N802
        return self._ds._nodata[self._i]

    def SetNoDataValue(self, value) -> int:  # noqa: N802
        self._ds._nodata[self._i] = None if value is None else float(value)
        return 0

    def FlushCache(self) -> None:  # noqa: N802
        return None

    @property
    def DataType(self) -> int:  # noqa: N802
        return {v: k for k, v in _DTYPES.items()}[str(self._ds._data.dtype)]


class Dataset:
    """An in-memory raster: ``(band, y, x)`` array, GDAL geotransform, WKT projection, per-band nodata."""

    def __init__(self, data: np.ndarray, geotransform=None, projection: str = "", nodata=None):
        self._data = data
        self._gt = tuple(geotransform) if geotransform is not None else (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
        self._wkt = projection or ""
        self._nodata = list(nodata) if nodata is not None else [None] * data.shape[0]

    @property
    def RasterXSize(self) -> int:  # noqa: N802
        return int(self._data.shape[2])

    @property
    def RasterYSize(self) -> int:  # noqa: N802
        return int(self._data.shape[1])

    @property
    def RasterCount(self) -> int:  # noqa: N802
        return int(self._data.shape[0])

    def GetGeoTransform(self) -> tuple:  # noqa: N802
        return self._gt

    def SetGeoTransform(self, gt) -> int:  # noqa: N802
        self._gt = tuple(float(v) for v in gt)
        return 0

    def GetProjection(self) -> str:  # noqa: N802
        return self._wkt

    GetProjectionRef = GetProjection

    def SetProjection(self, projection) -> int:  # noqa: N802
        crs = _crs_from(projection)
        self._wkt = crs.to_wkt() if crs is not None else ""
        return 0

    def GetRasterBand(self, i: int) -> Band:  # noqa: N802
        if not 1 <= i <= self.RasterCount:
            raise IndexError(f"band {i} out of 1..{self.RasterCount}")
        return Band(self, i - 1)

    def ReadAsArray(self) -> np.ndarray:  # noqa: N802
        return self._data[0].copy() if self.RasterCount == 1 else self._data.copy()

    def FlushCache(self) -> None:  # noqa: N802
        return None

    # helpers (not GDAL API)
    def _transform(self) -> Affine:
        return Affine.from_gdal(*self._gt)

    def _crs(self) -> CRS | None:
        return _crs_from(self._wkt)


class Driver:
    """The ``MEM`` driver (``Create`` only)."""

    def __init__(self, name: str):
        self.ShortName = name

    def Create(self, name, xsize: int, ysize: int, bands: int = 1, eType: int = GDT_Byte, options=None):  # noqa: N802,N803
        dtype = _DTYPES[eType]
        return Dataset(np.zeros((int(bands), int(ysize), int(xsize)), dtype))


def GetDriverByName(name: str) -> Driver:  # noqa: N802
    if name.upper() != "MEM":
        raise NotImplementedError(f"osgeo shim: only the MEM driver is implemented, not {name!r}")
    return Driver("MEM")


def Open(path, access: int = 0) -> Dataset:  # noqa: N802
    """Read a raster file (any format rasterio reads) fully into memory."""
    with rasterio.open(str(path)) as src:
        data = src.read()
        gt = src.transform.to_gdal()
        wkt = src.crs.to_wkt() if src.crs is not None else ""
        nodata = list(src.nodatavals)
    return Dataset(data, gt, wkt, nodata)


def _write_gtiff(path: str, ds: Dataset, nodata=None, creation_options=None) -> None:
    opts = {"compress": "deflate", "tiled": True}
    for o in creation_options or []:
        k, _, v = str(o).partition("=")
        if k.upper() in ("COMPRESS", "BIGTIFF"):
            opts[k.lower()] = v
    nd = nodata if nodata is not None else ds._nodata[0]
    profile = dict(
        driver="GTiff",
        width=ds.RasterXSize,
        height=ds.RasterYSize,
        count=ds.RasterCount,
        dtype=str(ds._data.dtype),
        crs=ds._crs(),
        transform=ds._transform(),
        nodata=nd,
        **opts,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(ds._data)


def Translate(destName, srcDS, format: str = "GTiff", creationOptions=None, noData=None, **kwargs) -> Dataset:  # noqa: A002,N802,N803
    """Copy a dataset to a GeoTIFF (``GTiff`` or ``COG`` requests) or to memory (``MEM``)."""
    src = srcDS if isinstance(srcDS, Dataset) else Open(srcDS)
    out = Dataset(src._data.copy(), src._gt, src._wkt, list(src._nodata))
    if noData is not None:
        out._nodata = [float(noData)] * out.RasterCount
    fmt = (format or "GTiff").upper()
    if fmt == "MEM":
        return out
    if fmt not in ("GTIFF", "COG"):
        raise NotImplementedError(f"osgeo shim: Translate to {format!r} is not implemented")
    _write_gtiff(str(destName), out, out._nodata[0], creationOptions)
    return out


def warp_grid(output_bounds, x_res=None, y_res=None, width=None, height=None) -> tuple[tuple, int, int]:
    """gdalwarp's output grid from ``-te`` and ``-tr`` (or ``-ts``): (geotransform, width, height).

    Origin at (minX, maxY); with a resolution the size is ``int((max - min) / res + 0.5)`` pixels and
    the resolution is kept; with a size the resolution is ``(max - min) / size``.
    """
    minx, miny, maxx, maxy = (float(v) for v in output_bounds)
    if width and height:
        xr, yr = (maxx - minx) / width, (maxy - miny) / height
        nx, ny = int(width), int(height)
    elif x_res is not None and y_res is not None:
        xr, yr = abs(float(x_res)), abs(float(y_res))
        nx = int((maxx - minx + xr / 2.0) / xr)
        ny = int((abs(maxy - miny) + yr / 2.0) / yr)
    else:
        raise NotImplementedError("osgeo shim: Warp needs xRes/yRes or width/height with outputBounds")
    return (minx, xr, 0.0, maxy, 0.0, -yr), nx, ny


def Warp(  # noqa: N802
    destNameOrDestDS,  # noqa: N803
    srcDSOrSrcDSTab,  # noqa: N803
    format: str = "MEM",  # noqa: A002
    outputBounds=None,  # noqa: N803
    xRes=None,  # noqa: N803
    yRes=None,  # noqa: N803
    width: int = 0,
    height: int = 0,
    dstSRS=None,  # noqa: N803
    srcSRS=None,  # noqa: N803
    resampleAlg=None,  # noqa: N803
    srcNodata=None,  # noqa: N803
    dstNodata=None,  # noqa: N803
    multithread: bool = False,
    warpOptions=None,  # noqa: N803
    errorThreshold: float = 0.125,  # noqa: N803
    creationOptions=None,  # noqa: N803
    **kwargs,
) -> Dataset:
    """Reproject one dataset onto the grid gdalwarp would make from these options.

    Nodata as gdalwarp: the destination takes the source band's nodata (or ``dstNodata``) and starts
    filled with it; with no nodata at all the destination starts at 0.
    """
    unsupported = {k for k, v in kwargs.items() if v not in (None, False, [], {}, "")}
    if unsupported:
        raise NotImplementedError(f"osgeo shim: Warp options not implemented: {sorted(unsupported)}")
    src = srcDSOrSrcDSTab
    if isinstance(src, list | tuple):
        if len(src) != 1:
            raise NotImplementedError("osgeo shim: Warp of several sources is not implemented")
        src = src[0]
    if not isinstance(src, Dataset):
        src = Open(src)
    if outputBounds is None:
        raise NotImplementedError("osgeo shim: Warp needs outputBounds")
    src_crs = _crs_from(srcSRS) or src._crs()
    dst_crs = _crs_from(dstSRS) or src_crs
    gt, nx, ny = warp_grid(outputBounds, xRes, yRes, width, height)
    n = src.RasterCount
    dtype = src._data.dtype
    out = np.zeros((n, ny, nx), dtype)
    nodata_out = []
    rs = _resampling(resampleAlg)
    threads = (os.cpu_count() or 1) if multithread else 1
    for b in range(n):
        s_nd = srcNodata if srcNodata is not None else src._nodata[b]
        d_nd = dstNodata if dstNodata is not None else s_nd
        if d_nd is not None:
            out[b] = d_nd
        reproject(
            source=src._data[b],
            destination=out[b],
            src_transform=src._transform(),
            src_crs=src_crs,
            src_nodata=s_nd,
            dst_transform=Affine.from_gdal(*gt),
            dst_crs=dst_crs,
            dst_nodata=d_nd,
            resampling=rs,
            num_threads=threads,
            tolerance=errorThreshold,
            init_dest_nodata=d_nd is not None,
        )
        nodata_out.append(None if d_nd is None else float(d_nd))
    ds = Dataset(out, gt, dst_crs.to_wkt() if dst_crs is not None else "", nodata_out)
    fmt = (format or "MEM").upper()
    if fmt != "MEM" and str(destNameOrDestDS):
        return Translate(str(destNameOrDestDS), ds, format=fmt, creationOptions=creationOptions)
    return ds
