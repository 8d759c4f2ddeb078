"""The output pixel grid: one object, made once, passed everywhere.

A :class:`Grid` has exactly the keys xee's ``PixelGridParams`` has, so it can be passed to
``xarray.open_dataset(..., engine="ee", **grid)`` unchanged, and small pure functions convert
it to what rasterio and xarray need. Coordinates are in the grid CRS units (metres for UTM).
"""

from __future__ import annotations

import math
from typing import TypedDict

import numpy as np
from affine import Affine

from gee_alt.errors import GeeAltError

TransformType = tuple[float, float, float, float, float, float]
#: Landsat Collection 2 UTM pixel edges sit at 15 (mod 30) m (grid.origin_offset_m of the default config).
LANDSAT_ORIGIN_OFFSET_M = 15.0


class Grid(TypedDict):
    """A north-up pixel grid (same keys as ``xee.helpers.PixelGridParams``).

    - ``crs``: ``"EPSG:nnnn"`` or WKT of the grid CRS.
    - ``crs_transform``: affine ``(a, b, c, d, e, f)``: a = pixel width (CRS units),
      c = upper-left x, e = pixel height (negative, CRS units), f = upper-left y.
    - ``shape_2d``: ``(width, height)`` in pixels.
    """

    crs: str
    crs_transform: TransformType
    shape_2d: tuple[int, int]


def make_grid(crs: str, crs_transform, shape_2d) -> Grid:
    """Build a validated :class:`Grid` (transform as a 6-tuple of floats, shape as ints)."""
    t = tuple(float(v) for v in tuple(crs_transform)[:6])
    w, h = (int(v) for v in shape_2d)
    if w <= 0 or h <= 0:
        raise GeeAltError(f"grid shape must be positive, got width={w}, height={h}")
    if t[0] <= 0 or t[4] >= 0 or t[1] != 0 or t[3] != 0:
        raise GeeAltError(f"grid must be north-up with positive pixel width, got transform {t}")
    return Grid(crs=str(crs), crs_transform=t, shape_2d=(w, h))


def utm_epsg(lon: float, lat: float) -> str:
    """The WGS84 UTM zone CRS (``"EPSG:326zz"`` north, ``"EPSG:327zz"`` south) holding a point (degrees)."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise GeeAltError(f"point ({lon}, {lat}) is outside the world (lon -180..180, lat -90..90)")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def grid_from_bbox(bbox_lonlat, scale_m: float = 30.0, crs: str | None = None, origin_offset_m: float = 0.0) -> Grid:
    """The grid of ``scale_m`` pixels covering a lon/lat bbox ``(west, south, east, north)`` in degrees.

    Uses ``xee.helpers.fit_geometry`` (pure, offline); the CRS defaults to the UTM zone of the
    bbox centre. Pixel edges are snapped to ``origin_offset_m`` plus multiples of ``scale_m``
    (CRS units), so grids of the same scale and offset nest. Landsat Collection 2 scenes put
    their UTM pixel edges at 15 (mod 30) m: :data:`LANDSAT_ORIGIN_OFFSET_M` aligns a 30 m grid
    with them (no half-pixel shift under nearest-neighbour sampling).
    """
    from shapely.geometry import box
    from xee import helpers as xee_helpers

    w, s, e, n = (float(v) for v in bbox_lonlat)
    if not (w < e and s < n):
        raise GeeAltError(f"bbox must be (west, south, east, north) with west<east and south<north, got {bbox_lonlat}")
    if scale_m <= 0:
        raise GeeAltError(f"scale must be positive, got {scale_m}")
    crs = crs or utm_epsg((w + e) / 2, (s + n) / 2)
    params = xee_helpers.fit_geometry(
        box(w, s, e, n), geometry_crs="EPSG:4326", grid_crs=crs, grid_scale=(scale_m, -scale_m)
    )
    o = float(origin_offset_m) % scale_m
    if o == 0:
        return make_grid(params["crs"], params["crs_transform"], params["shape_2d"])
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    xs, ys = tr.transform([w, e, e, w], [s, s, n, n])  # the box corners, as fit_geometry transforms them
    x_min, y_min, x_max, y_max = min(xs), min(ys), max(xs), max(ys)
    x0 = math.floor((x_min - o) / scale_m) * scale_m + o
    x1 = math.ceil((x_max - o) / scale_m) * scale_m + o
    y0 = math.floor((y_min - o) / scale_m) * scale_m + o
    y1 = math.ceil((y_max - o) / scale_m) * scale_m + o
    shape = (round((x1 - x0) / scale_m), round((y1 - y0) / scale_m))
    return make_grid(crs, (scale_m, 0.0, x0, 0.0, -scale_m, y1), shape)


def affine_of(grid: Grid) -> Affine:
    """The rasterio/affine ``Affine`` of a grid."""
    return Affine(*grid["crs_transform"])


def shape_yx(grid: Grid) -> tuple[int, int]:
    """``(height, width)`` — the numpy array shape of one band on the grid."""
    w, h = grid["shape_2d"]
    return h, w


def pixel_size(grid: Grid) -> float:
    """Pixel width in CRS units (metres for projected grids)."""
    return float(grid["crs_transform"][0])


def bounds(grid: Grid) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` in CRS units."""
    a, _, c, _, e, f = grid["crs_transform"]
    w, h = grid["shape_2d"]
    return c, f + e * h, c + a * w, f


def coords(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(x, y)`` in CRS units (1-D, float64)."""
    a, _, c, _, e, f = grid["crs_transform"]
    w, h = grid["shape_2d"]
    return c + a * (np.arange(w) + 0.5), f + e * (np.arange(h) + 0.5)


def subgrid(grid: Grid, col_off: int, row_off: int, width: int, height: int) -> Grid:
    """A window of ``grid`` (pixel offsets and size), on the same pixel lattice."""
    a, b, c, d, e, f = grid["crs_transform"]
    return make_grid(grid["crs"], (a, b, c + a * col_off, d, e, f + e * row_off), (width, height))


def coarsen(grid: Grid, factor: int) -> Grid:
    """The grid of ``factor`` x ``factor`` blocks of ``grid`` (same origin; partial blocks included)."""
    a, b, c, d, e, f = grid["crs_transform"]
    w, h = grid["shape_2d"]
    return make_grid(grid["crs"], (a * factor, b, c, d, e * factor, f), (math.ceil(w / factor), math.ceil(h / factor)))


def rasterio_profile(grid: Grid, count: int = 1, dtype: str = "float32") -> dict:
    """A rasterio GTiff profile for the grid (float32, nodata NaN unless another dtype)."""
    from rasterio.crs import CRS

    h, w = shape_yx(grid)
    prof = dict(
        driver="GTiff",
        width=w,
        height=h,
        count=count,
        dtype=dtype,
        crs=CRS.from_user_input(grid["crs"]),
        transform=affine_of(grid),
    )
    if np.dtype(dtype).kind == "f":
        prof["nodata"] = float("nan")
    return prof


def require_projected(crs: str, what: str) -> None:
    """Raise :class:`GeeAltError` unless ``crs`` (``"EPSG:nnnn"``, WKT or PROJ string) is projected.

    Slope, aspect and ``scale_m`` pixel sizes are metres: a geographic CRS (degrees) is an error.
    """
    from pyproj import CRS

    parsed = CRS.from_user_input(crs)
    if not parsed.is_projected:
        epsg = parsed.to_epsg()
        label = f"EPSG:{epsg}" if epsg else parsed.name
        raise GeeAltError(f"{what} must be in a projected CRS (metres, e.g. UTM); it is in {label} (degrees)")


def grid_from_rasterio(crs, transform, width: int, height: int) -> Grid:
    """A :class:`Grid` from a rasterio dataset's ``crs``, ``transform``, ``width``, ``height``."""
    if crs is None:
        raise GeeAltError("raster has no CRS; assign one (e.g. gdal_edit.py -a_srs EPSG:32647 FILE)")
    epsg = crs.to_epsg()
    crs_s = f"EPSG:{epsg}" if epsg else crs.to_wkt()
    return make_grid(crs_s, tuple(transform)[:6], (width, height))


def same_grid(g1: Grid, g2: Grid, rtol: float = 1e-9) -> bool:
    """True when two grids share CRS, shape and transform (to ``rtol`` of the pixel size)."""
    from rasterio.crs import CRS

    if tuple(g1["shape_2d"]) != tuple(g2["shape_2d"]):
        return False
    if CRS.from_user_input(g1["crs"]) != CRS.from_user_input(g2["crs"]):
        return False
    tol = rtol * abs(g1["crs_transform"][0]) + 1e-9
    return all(
        abs(x - y) <= max(tol, 1e-6 * abs(g1["crs_transform"][0]))
        for x, y in zip(g1["crs_transform"], g2["crs_transform"], strict=True)
    )


def lonlat_to_rowcol(grid: Grid, lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Fractional ``(row, col)`` pixel positions (pixel centres at .5) of lon/lat points (degrees)."""
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", grid["crs"], always_xy=True)
    x, y = tr.transform(np.asarray(lon, float), np.asarray(lat, float))
    with np.errstate(invalid="ignore"):  # points far outside the CRS's area project to inf
        col, row = ~affine_of(grid) @ (np.asarray(x), np.asarray(y))
    return np.asarray(row), np.asarray(col)


def rowcol_to_lonlat(grid: Grid, row, col) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat (degrees) of pixel positions ``(row, col)`` (centres at integer + .5)."""
    from pyproj import Transformer

    x, y = affine_of(grid) @ (np.asarray(col, float), np.asarray(row, float))
    tr = Transformer.from_crs(grid["crs"], "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(np.asarray(x), np.asarray(y))
    return np.asarray(lon), np.asarray(lat)


# The MODIS sinusoidal projection and its global pixel lattice (MODIS land grid, metres).
MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_SINUSOIDAL_EE = "SR-ORG:6974"  # the same projection as Earth Engine names it (pixel-grid requests)
MODIS_ORIGIN_X = -20015109.355798
MODIS_ORIGIN_Y = 10007554.677899
MODIS_250M = 231.656358263958  # MOD13Q1 / MOD09GQ pixel (m)
MODIS_1KM = 926.625433055833  # MOD11A1 pixel (m)


def modis_grid(fine_grid: Grid, pixel_m: float, margin_px: int = 1) -> Grid:
    """The MODIS sinusoidal grid (global MODIS lattice, ``pixel_m``) covering ``fine_grid``
    with ``margin_px`` extra pixels on each side (CRS: :data:`MODIS_SINUSOIDAL`)."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(fine_grid["crs"], MODIS_SINUSOIDAL, *bounds(fine_grid), densify_pts=51)
    c0 = math.floor((left - MODIS_ORIGIN_X) / pixel_m) - margin_px
    c1 = math.ceil((right - MODIS_ORIGIN_X) / pixel_m) + margin_px
    r0 = math.floor((MODIS_ORIGIN_Y - top) / pixel_m) - margin_px
    r1 = math.ceil((MODIS_ORIGIN_Y - bottom) / pixel_m) + margin_px
    return make_grid(
        MODIS_SINUSOIDAL,
        (pixel_m, 0.0, MODIS_ORIGIN_X + c0 * pixel_m, 0.0, -pixel_m, MODIS_ORIGIN_Y - r0 * pixel_m),
        (c1 - c0, r1 - r0),
    )


# The Datong River source region (Zhang et al. 2025), degrees: (west, south, east, north).
DATONG_BBOX = (98.8667, 37.7772, 99.9617, 38.3314)
