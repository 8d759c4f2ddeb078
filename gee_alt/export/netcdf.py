"""A CF-1.8 NetCDF of all years: ALT (m), its 1-sigma spread, and DDT (°C·day) on the output grid.

Layout: dims ``(time, y, x)``; ``time`` in days since 1970-01-01 at 1 July of each year with
``time_bnds`` spanning the calendar year, an auxiliary ``year`` (int) coordinate; ``x``/``y``
pixel centres. The georeferencing is rioxarray's (:func:`gee_alt.cube.write_georeferencing`):
a ``spatial_ref`` grid-mapping variable with the CF attributes from pyproj, ``crs_wkt`` and the
GDAL ``GeoTransform``, every map variable's ``grid_mapping`` pointing at it, and CF axis
attributes on ``x``/``y``; so GDAL, QGIS and rioxarray (``xr.open_dataset(path,
decode_coords="all").rio.crs`` / ``.rio.transform()``) georeference it. ``alt_m`` has the CF
standard name ``permafrost_active_layer_thickness``; ``alt_sd_m`` is linked as its ``standard_error``.

Engine: ``h5netcdf`` or ``netCDF4`` when installed (NetCDF-4, zlib level 4, one chunk per
year-tile), else xarray's ``scipy`` engine (NetCDF-3 64-bit offset, uncompressed). scipy's writer
holds every variable in memory until it closes; here lazily backed (dask) variables are instead
computed and written block by block at close (:func:`_to_netcdf3_streamed`, same bytes). The
write is atomic (temporary name, then rename).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.io import netcdf_file

from gee_alt import __version__
from gee_alt.cube import DDT_SD_VAR, DDT_VAR, grid_of, write_georeferencing
from gee_alt.errors import GeeAltError
from gee_alt.io import atomic_path

EPOCH = _dt.date(1970, 1, 1)


def available_engine() -> str:
    """``"h5netcdf"``, ``"netcdf4"`` or ``"scipy"`` — the best NetCDF writer installed."""
    for mod, eng in (("h5netcdf", "h5netcdf"), ("netCDF4", "netcdf4")):
        try:
            __import__(mod)
            return eng
        except ImportError:
            continue
    return "scipy"


def _days(d: _dt.date) -> float:
    return float((d - EPOCH).days)


#: rows per block when NetCDF variables are streamed (a multiple of the COG block: tiles decoded once)
STREAM_ROWS = 512


def _lazy_float32(a):
    """float32 ``(year, y, x)`` data, kept lazy: dask stays dask, a :class:`~gee_alt.io.RasterStack`
    becomes a dask array over its COGs (blocks of one year x :data:`STREAM_ROWS` rows), else NumPy."""
    from gee_alt.io import RasterStack

    if hasattr(a, "dask"):
        return a.astype("float32")
    if isinstance(a, RasterStack):
        import dask.array as dsa

        return dsa.from_array(
            a, chunks=(1, min(STREAM_ROWS, a.shape[1]), a.shape[2]), asarray=True, meta=np.empty((0, 0, 0), "float32")
        )
    return np.asarray(a, np.float32)


def build_alt_dataset(
    ddt_cube: xr.Dataset,
    alt_m,
    alt_sd_m=None,
    *,
    calibration: dict | None = None,
    title: str = "Permafrost active-layer thickness (Stefan, downscaled MODIS LST)",
) -> xr.Dataset:
    """The CF dataset (not yet written) from a DDT cube and ALT arrays ``(year, y, x)`` in m."""
    grid = grid_of(ddt_cube)
    years = [int(y) for y in ddt_cube["year"].values]
    shape = (len(years), ddt_cube.sizes["y"], ddt_cube.sizes["x"])
    alt = _lazy_float32(alt_m)
    if alt.shape != shape:
        raise GeeAltError(f"ALT array shape {alt.shape} != DDT cube shape {shape}")
    dims = ("time", "y", "x")
    time = np.array([_days(_dt.date(y, 7, 1)) for y in years])
    bnds = np.array([[_days(_dt.date(y, 1, 1)), _days(_dt.date(y + 1, 1, 1))] for y in years])
    data_vars = {
        "alt_m": (
            dims,
            alt,
            {
                "standard_name": "permafrost_active_layer_thickness",
                "long_name": "active-layer thickness (end-of-season thaw depth), Stefan ALT = E*sqrt(DDT)",
                "units": "m",
            },
        ),
        "ddt_degc_days": (
            dims,
            _lazy_float32(ddt_cube[DDT_VAR].data),
            {
                "long_name": "thawing degree-days of surface temperature (sum of max(T, 0 degC) per day)",
                "units": "degC day",
            },
        ),
        "time_bnds": (("time", "nv"), bnds, {}),
    }
    if alt_sd_m is not None:
        sd = _lazy_float32(alt_sd_m)
        if sd.shape != shape:
            raise GeeAltError(f"ALT sd array shape {sd.shape} != DDT cube shape {shape}")
        data_vars["alt_sd_m"] = (
            dims,
            sd,
            {
                "standard_name": "permafrost_active_layer_thickness standard_error",
                "long_name": "1-sigma predictive uncertainty of active-layer thickness (parameter part: "
                "uncertainty of E; residual part: place-to-place spread of E; DDT part)",
                "units": "m",
                "comment": str((calibration or {}).get("alt_sd_definition") or ""),
            },
        )
        data_vars["alt_m"][2]["ancillary_variables"] = "alt_sd_m"
    if DDT_SD_VAR in ddt_cube:
        data_vars["ddt_sd_degc_days"] = (
            dims,
            _lazy_float32(ddt_cube[DDT_SD_VAR].data),
            {"long_name": "1-sigma spread of thawing degree-days", "units": "degC day"},
        )
    coords = {
        "time": (
            "time",
            time,
            {
                "standard_name": "time",
                "long_name": "middle of the year",
                "units": "days since 1970-01-01",
                "calendar": "standard",
                "axis": "T",
                "bounds": "time_bnds",
            },
        ),
        "year": ("time", np.asarray(years, np.int32), {"long_name": "calendar year"}),
        "x": ("x", np.asarray(ddt_cube["x"].values, float)),
        "y": ("y", np.asarray(ddt_cube["y"].values, float)),
    }
    attrs = {
        "Conventions": "CF-1.8",
        "title": title,
        "source": f"gee-alt {__version__}",
        "history": f"{_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')} written by gee-alt {__version__}",
        "references": "Zhang et al. (2025) Remote Sensing 17(20):3482, doi:10.3390/rs17203482",
        "engine": str(ddt_cube.attrs.get("engine", "")),
        "synthetic": int(ddt_cube.attrs.get("synthetic", 0)),
        "thaw_season": str(ddt_cube.attrs.get("thaw_season", "")),
    }
    if calibration:
        for k in ("E", "E_sd", "n_used", "n_sites"):
            if k in calibration and calibration[k] is not None:
                attrs[f"stefan_{k}"] = calibration[k]
        if "E_ci95" in calibration:
            attrs["stefan_E_ci95"] = np.asarray(calibration["E_ci95"], float)
        attrs["stefan_E_units"] = "m (degC day)^-0.5"
    for k in ("synthetic",):
        attrs[k] = np.int32(attrs[k])
    return write_georeferencing(xr.Dataset(data_vars, coords=coords, attrs=attrs), grid)


def write_alt_netcdf(
    path: str | os.PathLike,
    ddt_cube: xr.Dataset,
    alt_m,
    alt_sd_m=None,
    *,
    calibration: dict | None = None,
    engine: str | None = None,
) -> Path:
    """Write the CF NetCDF of all years atomically (see module docstring); returns the path."""
    ds = build_alt_dataset(ddt_cube, alt_m, alt_sd_m, calibration=calibration)
    engine = engine or available_engine()
    encoding = {}
    for v in ("alt_m", "alt_sd_m", "ddt_degc_days", "ddt_sd_degc_days"):
        if v in ds:
            # keep rioxarray's ``grid_mapping`` (it lives in the encoding)
            enc = {**ds[v].encoding, "dtype": "float32", "_FillValue": np.float32(np.nan)}
            if engine != "scipy":
                ny, nx = ds.sizes["y"], ds.sizes["x"]
                enc.update(zlib=True, complevel=4, chunksizes=(1, min(ny, 512), min(nx, 512)))
            encoding[v] = enc
    encoding["time"] = {"dtype": "float64"}
    encoding["time_bnds"] = {"dtype": "float64"}
    fmt = "NETCDF3_64BIT" if engine == "scipy" else "NETCDF4"
    with atomic_path(path) as tmp:
        if engine == "scipy":
            _to_netcdf3_streamed(ds, tmp, encoding)
        else:
            ds.to_netcdf(tmp, engine=engine, format=fmt, encoding=encoding)
    return Path(path)


def _to_netcdf3_streamed(ds: xr.Dataset, path, encoding: dict) -> None:
    """``ds.to_netcdf(path, engine="scipy", format="NETCDF3_64BIT")`` with the same bytes, but the
    lazily backed (dask) variables are written block by block when the file is closed instead of
    being held in memory (scipy's writer keeps every variable in RAM until it closes: the whole
    cube x 4 at the full study grid). xarray encodes and lays out the file (header, small
    variables); only the data of the lazy variables is streamed, in the file's C order (year,
    then row blocks), cast to the variable's big-endian type as scipy would."""
    from xarray.backends.writers import to_netcdf

    writer, store = to_netcdf(ds, path, engine="scipy", format="NETCDF3_64BIT", encoding=encoding, multifile=True)
    try:
        f = store.ds
        # netcdf_file.__setattr__ would store these as global NetCDF attributes: bypass it
        object.__setattr__(f, "__class__", _StreamedNetCDF3)
        f.__dict__["_streamed"] = {t.variable_name: s for s, t in zip(writer.sources, writer.targets, strict=True)}
        for name in f._streamed:
            if f.variables[name].isrec:
                raise GeeAltError(f"NetCDF variable {name} has a record dimension: cannot be streamed")
    finally:
        store.close()


class _StreamedNetCDF3(netcdf_file):
    """scipy's NetCDF-3 writer whose lazily backed variables (``_streamed``: name -> dask array)
    are computed and written block by block (see :func:`_to_netcdf3_streamed`)."""

    _streamed: dict

    def _write_var_data(self, name):
        src = self.__dict__.get("_streamed", {}).get(name)
        if src is None:
            return super()._write_var_data(name)
        var = self.variables[name]
        begin = self.fp.tell()  # as scipy: point the header at where the data starts
        self.fp.seek(var._begin)
        self._pack_begin(begin)
        self.fp.seek(begin)
        dtype = var.data.dtype  # big-endian; var.data itself is never touched (not in memory)
        n_t, h = src.shape[0], src.shape[1]
        for t in range(n_t):
            for r0 in range(0, h, STREAM_ROWS):
                block = np.asarray(src[t, r0 : r0 + STREAM_ROWS].compute(), dtype=dtype)
                self.fp.write(block.tobytes())
        self._write_var_padding(var, var._vsize - var.data.size * var.data.itemsize)


def read_alt_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Open a file from :func:`write_alt_netcdf` with ``year`` as the leading dimension (loaded).

    The grid mapping and time bounds are decoded as coordinates, so ``.rio.crs`` and
    ``.rio.transform()`` of the dataset and of each variable give the grid back.
    """
    p = Path(path)
    if not p.is_file():
        raise GeeAltError(f"NetCDF not found: {p}")
    with xr.open_dataset(p, decode_times=False, decode_coords="all") as ds:
        out = ds.load()
    return out.swap_dims({"time": "year"})
