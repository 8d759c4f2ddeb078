"""The DDT cube: the one xarray schema both engines hand to the shared downstream.

Schema (checked by :func:`validate_ddt_cube`):

- dims ``(year, y, x)``; coords ``year`` (int), ``y``/``x`` (pixel centres, CRS units);
- ``ddt_degc_days`` float32: thawing degree-days, sum of max(T_surface, 0 °C) x days over the
  thaw season (°C·day), NaN where unknown;
- optional ``ddt_sd_degc_days`` float32: 1-sigma spread of DDT (°C·day), e.g. from tree spread;
- optional ``n_obs`` int16: valid composites that went into DDT;
- optional ``ddf_degc_days`` float32: freezing degree-days of the winter before the thaw season
  (°C·day, positive), and with it ``frost_number`` float32 = √DDF/(√DDF+√DDT) (derived here, so
  both engines define it the same way): of the indices smoothed over the years around each year
  as the attrs ``frost_number_method`` / ``frost_number_years`` say (config ``season``; see
  :mod:`gee_alt.science.frost_climate`), of the year's own indices when the cube does not say;
- optional ``clear_sky_fraction`` float32: share of the year's composites with a valid (clear) LST;
- optional ``ddt_fraction_by_doy`` float32, dims ``(year, doy)`` (doy 1..366): share of the
  season's DDT reached by the end of each day (area median), for in-situ depths read mid-season;
- georeferencing as rioxarray writes it: a scalar ``spatial_ref`` coordinate holding the CRS
  (``crs_wkt`` and CF grid-mapping attributes) and the GDAL ``GeoTransform``, named by each
  variable's ``grid_mapping`` encoding, so ``.rio.crs`` and ``.rio.transform()`` work on the cube
  and on every variable taken from it (:func:`grid_of` turns them back into a :class:`Grid`);
- attrs: ``engine`` (``"local"`` or ``"ee"``), ``synthetic`` (0/1), ``thaw_season`` (text),
  ``gee_alt_version``.

Nothing downstream knows which engine made the cube.
"""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401  (registers the ``.rio`` accessor)
import xarray as xr
from affine import Affine

from gee_alt import __version__
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, affine_of, coords, grid_from_rasterio, shape_yx

DDT_VAR = "ddt_degc_days"
DDT_SD_VAR = "ddt_sd_degc_days"
NOBS_VAR = "n_obs"
DDF_VAR = "ddf_degc_days"
FROST_VAR = "frost_number"
CLEAR_VAR = "clear_sky_fraction"
THAW_FRACTION_VAR = "ddt_fraction_by_doy"
DDT_UNITS = "degC day"
# Transforms that agree to this fraction of a pixel are the same lattice (they differ by float rounding only).
SAME_ORIGIN_PX = 1e-6


def make_ddt_cube(
    ddt_degc_days,
    years,
    grid: Grid,
    *,
    ddt_sd_degc_days=None,
    n_obs=None,
    ddf_degc_days=None,
    clear_sky_fraction=None,
    ddt_fraction_by_doy=None,
    engine: str = "local",
    synthetic: bool = False,
    thaw_season: str = "",
    extra_attrs: dict | None = None,
) -> xr.Dataset:
    """Build a DDT cube from ``(year, y, x)`` arrays on ``grid`` (DDT and its spread in °C·day)."""
    ddt = _float32(ddt_degc_days)
    years = [int(y) for y in years]
    h, w = shape_yx(grid)
    if ddt.shape != (len(years), h, w):
        raise ValueError(f"DDT array shape {ddt.shape} != (years={len(years)}, {h}, {w})")
    x, y = coords(grid)
    dims = ("year", "y", "x")
    data_vars = {
        DDT_VAR: (
            dims,
            ddt,
            {
                "units": DDT_UNITS,
                "long_name": "thawing degree-days of surface temperature",
                "standard_name": "integral_wrt_time_of_surface_temperature_excess",
            },
        )
    }
    if ddt_sd_degc_days is not None:
        data_vars[DDT_SD_VAR] = (
            dims,
            _float32(ddt_sd_degc_days),
            {"units": DDT_UNITS, "long_name": "1-sigma spread of thawing degree-days"},
        )
    if n_obs is not None:
        data_vars[NOBS_VAR] = (
            dims,
            n_obs.astype("int16") if _lazy(n_obs) else np.asarray(n_obs, "int16"),
            {"units": "1", "long_name": "valid composites in DDT"},
        )
    attrs = {
        "engine": engine,
        "synthetic": int(bool(synthetic)),
        "thaw_season": thaw_season,
        "gee_alt_version": __version__,
    }
    attrs.update(extra_attrs or {})
    if ddf_degc_days is not None:
        from gee_alt.science.frost_climate import describe, settings_of

        method, n_years = settings_of(attrs)
        attrs.update({"frost_number_method": method, "frost_number_years": n_years})
        ddf = _float32(ddf_degc_days)
        data_vars[DDF_VAR] = (
            dims,
            ddf,
            {"units": DDT_UNITS, "long_name": "freezing degree-days of surface temperature, winter before the thaw"},
        )
        data_vars[FROST_VAR] = (
            dims,
            _frost_number(ddf, ddt, years, method, n_years),
            {"units": "1", "long_name": f"surface {describe(method, n_years)}"},
        )
    if clear_sky_fraction is not None:
        data_vars[CLEAR_VAR] = (
            dims,
            _float32(clear_sky_fraction),
            {"units": "1", "long_name": "fraction of the year's LST composites with a clear-sky value"},
        )
    extra_coords = {}
    if ddt_fraction_by_doy is not None:
        frac = np.asarray(ddt_fraction_by_doy, "float32")
        if frac.shape != (len(years), 366):
            raise ValueError(f"ddt_fraction_by_doy shape {frac.shape} != (years={len(years)}, 366)")
        data_vars[THAW_FRACTION_VAR] = (
            ("year", "doy"),
            frac,
            {"units": "1", "long_name": "share of the season's DDT reached by the end of the day (area median)"},
        )
        extra_coords["doy"] = ("doy", np.arange(1, 367, dtype="int16"))
    ds = xr.Dataset(
        data_vars,
        coords={"year": ("year", np.asarray(years, "int32")), "y": ("y", y), "x": ("x", x), **extra_coords},
        attrs=attrs,
    )
    return write_georeferencing(ds, grid)


def _lazy(a) -> bool:
    """True for a dask array (kept lazy: a cube opened from the DDT COGs is read chunk by chunk)."""
    return hasattr(a, "dask")


def _float32(a):
    return a.astype("float32") if _lazy(a) else np.asarray(a, dtype="float32")


def _frost_number(ddf, ddt, years, method: str, n_years: int):
    """The frost number of every year (lazy when DDF or DDT is): :mod:`gee_alt.science.frost_climate`."""
    from gee_alt.science.frost_climate import multiyear_frost_number

    return multiyear_frost_number(ddf, ddt, years, method, n_years)


def write_georeferencing(obj: xr.Dataset | xr.DataArray, grid: Grid) -> xr.Dataset | xr.DataArray:
    """Write ``grid``'s CRS and transform onto ``obj`` with rioxarray (in place; returns ``obj``).

    Adds the ``spatial_ref`` grid-mapping coordinate (CRS WKT, CF attributes, GDAL
    ``GeoTransform``), points the ``grid_mapping`` encoding of the spatial variables at it and
    gives ``x``/``y`` their CF axis attributes. In place because rioxarray's default copies the data.
    """
    return (
        obj.rio.write_crs(grid["crs"], inplace=True)
        .rio.write_transform(affine_of(grid), inplace=True)
        .rio.write_coordinate_system(inplace=True)
    )


def grid_of(ds: xr.Dataset | xr.DataArray) -> Grid:
    """The :class:`Grid` a cube (or one of its variables) lives on, from its rioxarray georeferencing.

    The CRS is ``"EPSG:nnnn"`` when it has an EPSG code, else WKT. The transform is
    ``.rio.transform()`` (origin from the ``x``/``y`` pixel centres, so a window of the array gets
    its own origin); when that is the written ``GeoTransform`` up to float rounding
    (:data:`SAME_ORIGIN_PX`), the written values are returned exactly.
    """
    crs = ds.rio.crs
    if crs is None:
        raise GeeAltError(
            "array has no CRS (no rioxarray 'spatial_ref'); build it with make_ddt_cube or "
            "geo_dataarray, or call .rio.write_crs()"
        )
    transform = ds.rio.transform()
    written = _written_transform(ds)
    if written is not None and transform.almost_equals(written, precision=SAME_ORIGIN_PX * abs(written.a)):
        transform = written
    return grid_from_rasterio(crs, transform, ds.rio.width, ds.rio.height)


def _written_transform(obj: xr.Dataset | xr.DataArray) -> Affine | None:
    """The GDAL ``GeoTransform`` stored on the grid-mapping coordinate, or None."""
    gm = obj.coords.get(obj.rio.grid_mapping)
    text = None if gm is None else gm.attrs.get("GeoTransform")
    return None if text is None else Affine.from_gdal(*(float(v) for v in text.split()))


def validate_ddt_cube(ds: xr.Dataset) -> xr.Dataset:
    """Check a dataset follows the DDT schema; returns it, or raises :class:`GeeAltError`."""
    if DDT_VAR not in ds:
        raise GeeAltError(f"DDT cube has no '{DDT_VAR}' variable (has: {', '.join(map(str, ds.data_vars))})")
    if ds[DDT_VAR].dims != ("year", "y", "x"):
        raise GeeAltError(f"'{DDT_VAR}' must have dims (year, y, x), has {ds[DDT_VAR].dims}")
    grid = grid_of(ds)
    x, y = coords(grid)
    if not (np.allclose(ds["x"].values, x) and np.allclose(ds["y"].values, y)):
        raise GeeAltError("DDT cube x/y coordinates are not the regular pixel centres of its .rio.transform()")
    if ds.sizes["year"] == 0:
        raise GeeAltError("DDT cube holds no year")
    if bool((ds[DDT_VAR] < 0).any()):  # NaN compares False; a lazily backed cube is reduced chunk by chunk
        raise GeeAltError("DDT cube has negative thawing degree-days")
    return ds


def geo_dataarray(data, grid: Grid, names=None, dim: str = "band", attrs: dict | None = None) -> xr.DataArray:
    """A ``(dim, y, x)`` DataArray on ``grid`` with rioxarray's georeferencing (it travels with the array).

    ``attrs`` are set on the array; ``grid_of`` gives ``grid`` back.
    """
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    h, w = shape_yx(grid)
    if arr.shape[1:] != (h, w):
        raise ValueError(f"array shape {arr.shape[1:]} does not match grid (height, width) {(h, w)}")
    x, y = coords(grid)
    names = list(names) if names is not None else [f"b{i + 1}" for i in range(arr.shape[0])]
    da = xr.DataArray(arr, dims=(dim, "y", "x"), coords={dim: names, "y": y, "x": x}, attrs=dict(attrs or {}))
    return write_georeferencing(da, grid)
