"""The DDT cube: the one xarray schema both engines hand to the shared downstream.

Schema (checked by :func:`validate_ddt_cube`):

- dims ``(year, y, x)``; coords ``year`` (int), ``y``/``x`` (pixel centres, CRS units);
- ``ddt_degc_days`` float32: thawing degree-days, sum of max(T_surface, 0 °C) x days over the
  thaw season (°C·day), NaN where unknown;
- optional ``ddt_sd_degc_days`` float32: 1-sigma spread of DDT (°C·day), e.g. from tree spread;
- optional ``n_obs`` int16: valid composites that went into DDT;
- attrs: ``crs`` (str), ``crs_transform`` (6 floats), ``engine`` (``"local"`` or ``"ee"``),
  ``synthetic`` (0/1), ``thaw_season`` (text), ``gee_alt_version``.

Nothing downstream knows which engine made the cube.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from gee_alt import __version__
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, coords, make_grid, shape_yx

DDT_VAR = "ddt_degc_days"
DDT_SD_VAR = "ddt_sd_degc_days"
NOBS_VAR = "n_obs"
DDT_UNITS = "degC day"


def make_ddt_cube(ddt_degc_days, years, grid: Grid, *, ddt_sd_degc_days=None, n_obs=None,
                  engine: str = "local", synthetic: bool = False, thaw_season: str = "",
                  extra_attrs: dict | None = None) -> xr.Dataset:
    """Build a DDT cube from ``(year, y, x)`` arrays on ``grid`` (DDT and its spread in °C·day)."""
    ddt = np.asarray(ddt_degc_days, dtype="float32")
    years = [int(y) for y in years]
    h, w = shape_yx(grid)
    if ddt.shape != (len(years), h, w):
        raise ValueError(f"DDT array shape {ddt.shape} != (years={len(years)}, {h}, {w})")
    x, y = coords(grid)
    dims = ("year", "y", "x")
    data_vars = {DDT_VAR: (dims, ddt, {"units": DDT_UNITS, "long_name": "thawing degree-days of surface temperature",
                                       "standard_name": "integral_wrt_time_of_surface_temperature_excess"})}
    if ddt_sd_degc_days is not None:
        data_vars[DDT_SD_VAR] = (dims, np.asarray(ddt_sd_degc_days, "float32"),
                                 {"units": DDT_UNITS, "long_name": "1-sigma spread of thawing degree-days"})
    if n_obs is not None:
        data_vars[NOBS_VAR] = (dims, np.asarray(n_obs, "int16"), {"units": "1", "long_name": "valid composites in DDT"})
    attrs = {"crs": grid["crs"], "crs_transform": list(grid["crs_transform"]), "engine": engine,
             "synthetic": int(bool(synthetic)), "thaw_season": thaw_season, "gee_alt_version": __version__}
    attrs.update(extra_attrs or {})
    return xr.Dataset(data_vars, coords={"year": ("year", np.asarray(years, "int32")), "y": ("y", y), "x": ("x", x)},
                      attrs=attrs)


def grid_of(ds: xr.Dataset | xr.DataArray) -> Grid:
    """The :class:`Grid` a cube (or one of its variables) lives on."""
    try:
        return make_grid(ds.attrs["crs"], ds.attrs["crs_transform"], (ds.sizes["x"], ds.sizes["y"]))
    except KeyError as exc:
        raise GeeAltError(f"cube lacks georeferencing attribute {exc}") from None


def validate_ddt_cube(ds: xr.Dataset) -> xr.Dataset:
    """Check a dataset follows the DDT schema; returns it, or raises :class:`GeeAltError`."""
    if DDT_VAR not in ds:
        raise GeeAltError(f"DDT cube has no '{DDT_VAR}' variable (has: {', '.join(map(str, ds.data_vars))})")
    if ds[DDT_VAR].dims != ("year", "y", "x"):
        raise GeeAltError(f"'{DDT_VAR}' must have dims (year, y, x), has {ds[DDT_VAR].dims}")
    grid = grid_of(ds)
    x, y = coords(grid)
    if not (np.allclose(ds["x"].values, x) and np.allclose(ds["y"].values, y)):
        raise GeeAltError("DDT cube x/y coordinates disagree with its crs_transform")
    if ds.sizes["year"] == 0:
        raise GeeAltError("DDT cube holds no year")
    vals = ds[DDT_VAR].values
    if np.any(vals[np.isfinite(vals)] < 0):
        raise GeeAltError("DDT cube has negative thawing degree-days")
    return ds


def geo_dataarray(data, grid: Grid, names=None, dim: str = "band", attrs: dict | None = None) -> xr.DataArray:
    """A ``(dim, y, x)`` DataArray on ``grid`` with the georeferencing in attrs (it travels with the array)."""
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    h, w = shape_yx(grid)
    if arr.shape[1:] != (h, w):
        raise ValueError(f"array shape {arr.shape[1:]} does not match grid (height, width) {(h, w)}")
    x, y = coords(grid)
    names = list(names) if names is not None else [f"b{i + 1}" for i in range(arr.shape[0])]
    a = {"crs": grid["crs"], "crs_transform": list(grid["crs_transform"])}
    a.update(attrs or {})
    return xr.DataArray(arr, dims=(dim, "y", "x"), coords={dim: names, "y": y, "x": x}, attrs=a)
