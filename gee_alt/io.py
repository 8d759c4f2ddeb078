"""File I/O at the edges: atomic writes, JSON, SHA-256, raster reading.

Every writer here writes to a hidden temporary name in the destination folder and renames it
into place, so a crash or a kill never leaves a half-written output under the final name
(Cloud-Optimized GeoTIFFs are written by :func:`gee_alt.export.cog.write_cog` the same way).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, grid_from_rasterio

TMP_PREFIX = ".tmp-"
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, else delete it.

    Raises :class:`GeeAltError` (one line) when the destination folder cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise GeeAltError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (NaN becomes ``null``) atomically."""
    return write_text_atomic(path, json.dumps(jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def jsonable(obj):
    """Convert numpy scalars/arrays and non-finite floats to JSON-safe values."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


@dataclass
class Raster:
    """A raster read into memory: ``data`` is float32 ``(band, y, x)`` with nodata as NaN."""

    data: np.ndarray
    grid: Grid
    descriptions: list[str] = field(default_factory=list)
    tags: dict = field(default_factory=dict)
    path: str = ""


def read_raster(path: str | os.PathLike, *, bands: int | None = None) -> Raster:
    """Read a GeoTIFF (any GDAL raster) as float32 with nodata and masked pixels as NaN.

    Raises :class:`GeeAltError` naming the file when it is missing, not a raster, has no CRS,
    or has a band count other than ``bands`` (when given).
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    p = Path(path)
    if not p.exists():
        raise GeeAltError(f"raster not found: {p}")
    if p.is_dir():
        raise GeeAltError(f"expected a raster file, got a directory: {p}")
    try:
        # GeoTIFF tiles are decoded on 2 threads (about 2x faster reads of full-grid COGs)
        opts = {"num_threads": 2} if p.suffix.lower() in (".tif", ".tiff") else {}
        with warnings.catch_warnings():  # no georeferencing is reported below, as one line
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(p, **opts)
        with src:
            grid = grid_from_rasterio(src.crs, src.transform, src.width, src.height)
            if bands is not None and src.count != bands:
                raise GeeAltError(f"{p.name}: expected {bands} band(s), found {src.count}; give a {bands}-band raster")
            masked = src.read(masked=True)
            data = (
                masked.filled(np.nan).astype("float32")
                if masked.dtype.kind == "f"
                else np.where(np.ma.getmaskarray(masked), np.nan, masked.data).astype("float32")
            )
            desc = [d or "" for d in src.descriptions]
            tags = src.tags()
    except GeeAltError as exc:
        raise GeeAltError(f"{p.name}: {exc}" if not str(exc).startswith(p.name) else str(exc)) from None
    except (RasterioIOError, OSError) as exc:
        raise GeeAltError(f"not a readable raster: {p} ({str(exc).splitlines()[0][:120]})") from None
    return Raster(data=data, grid=grid, descriptions=desc, tags=tags, path=str(p))


def list_stray_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporary files left by interrupted atomic writes below ``folder``."""
    return sorted(Path(folder).rglob(TMP_PREFIX + "*"))


def remove_stray_temporaries(folder: str | os.PathLike) -> int:
    """Delete temporaries of interrupted writes below ``folder``; returns how many."""
    n = 0
    for p in list_stray_temporaries(folder):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


class RasterStack:
    """``(n, y, x)`` float32 view of one band of ``n`` rasters on one grid (e.g. the yearly ALT
    COGs), decoded on demand: ``stack[i]`` one raster (2-D), ``stack[:, r0:r1, :]`` a row window of
    all of them (what the chunked trend and area means read), ``np.asarray(stack)`` everything.
    Nodata is NaN, as :func:`read_raster`."""

    ndim = 3
    dtype = np.dtype("float32")

    def __init__(self, paths, shape_yx: tuple[int, int], band: int = 1):
        self.paths = [Path(p) for p in paths]
        self.band = int(band)
        self.shape = (len(self.paths), int(shape_yx[0]), int(shape_yx[1]))
        self._open: dict = {}

    def close(self) -> None:
        """Close the files kept open for reading."""
        for src in self._open.values():
            src.close()
        self._open.clear()

    def __del__(self):
        self.close()

    def __getstate__(self):  # pickled (e.g. to dask workers) without open handles
        return {**self.__dict__, "_open": {}}

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, i: int, r0: int, r1: int, c0: int = 0, c1: int | None = None, keep: bool = True) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        c1 = self.shape[2] if c1 is None else c1
        src = self._open.get(i)
        if src is None or src.closed:
            src = rasterio.open(self.paths[i])
            if keep:  # kept open: GDAL's block cache then decodes each COG block once
                self._open[i] = src
        try:
            m = src.read(self.band, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True)
        finally:
            if not keep and i not in self._open:
                src.close()
        return m.filled(np.nan).astype("float32")

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of every raster, ``(n, r1 - r0, x)`` float32."""
        r0, r1 = max(0, int(r0)), min(self.shape[1], int(r1))
        out = np.empty((self.shape[0], max(r1 - r0, 0), self.shape[2]), "float32")
        for i in range(self.shape[0]):
            out[i] = self._read(i, r0, r1)
        return out

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):  # a whole raster: its file is not kept open (each open
            # dataset holds its own block buffers, ~2 MB for a 512 px COG block, x years x layers)
            return self._read(int(key) % self.shape[0], 0, self.shape[1], keep=False)
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (3 - len(key))
        # integers and unit-step slices (what dask's chunk reads pass, e.g. ``(3, slice(0, 512), slice(0, W))``)
        # read only their window; anything else (fancy indexing) reads the whole stack first
        squeeze = tuple(a for a, k in enumerate(key) if isinstance(k, (int, np.integer)))
        for a in squeeze:
            if not -self.shape[a] <= key[a] < self.shape[a]:
                raise IndexError(f"index {key[a]} is out of bounds for axis {a} with size {self.shape[a]}")
        windows = tuple(
            slice(int(k) % n, int(k) % n + 1) if isinstance(k, (int, np.integer)) else k
            for k, n in zip(key, self.shape, strict=False)
        )
        if len(key) == 3 and all(isinstance(k, slice) and k.step in (None, 1) for k in windows):
            (i0, i1, _), (r0, r1, _), (c0, c1, _) = (k.indices(n) for k, n in zip(windows, self.shape, strict=True))
            out = np.empty((max(i1 - i0, 0), max(r1 - r0, 0), max(c1 - c0, 0)), "float32")
            if out.size:
                for j, i in enumerate(range(i0, i1)):
                    out[j] = self._read(i, r0, r1, c0, c1)
            return out.squeeze(axis=squeeze) if squeeze else out
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        a = self.rows(0, self.shape[1])
        return a if dtype is None else a.astype(dtype)

    def reshape(self, *shape):
        """The whole stack in memory, reshaped (as ``ndarray.reshape``)."""
        return np.asarray(self).reshape(*shape)


class YearMaps:
    """``(n, y, x)`` maps computed one at a time: ``maps[i]`` is ``fn(i)`` (2-D), so a consumer that
    reads a year at a time (e.g. :func:`gee_alt.science.disturbance.baci_quantity`) never holds
    the whole stack; ``np.asarray(maps)`` builds it."""

    ndim = 3

    def __init__(self, fn, n: int, shape_yx: tuple[int, int]):
        self.fn = fn
        self.shape = (int(n), int(shape_yx[0]), int(shape_yx[1]))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i):
        if not isinstance(i, (int, np.integer)):
            return np.asarray(self)[i]
        return np.asarray(self.fn(int(i) % self.shape[0]))

    def __array__(self, dtype=None, copy=None):
        a = np.stack([self[i] for i in range(self.shape[0])])
        return a if dtype is None else a.astype(dtype)


class LastYear:
    """``maps[i]`` of a year-at-a-time stack (an array, :class:`RasterStack`, :class:`YearMaps`),
    keeping the last year read: two consumers of the same year in turn (e.g. the thaw index and
    the thaw depth computed from it) read it once. Holds one 2-D map."""

    def __init__(self, maps):
        self.maps, self.i, self.year = maps, None, None

    def __len__(self) -> int:
        return len(self.maps)

    def __getitem__(self, i):
        if not isinstance(i, (int, np.integer)):
            return self.maps[i]
        if self.i != int(i):
            self.year = self.i = None  # the previous year is released before the next is read
            self.year, self.i = self.maps[i], int(i)
        return self.year


def rows_of(arr, r0: int, r1: int) -> np.ndarray:
    """Rows ``r0:r1`` of a ``(n, y, x)`` array, :class:`RasterStack` or xarray/dask-backed
    DataArray, as a NumPy array (only that window is read or computed)."""
    if isinstance(arr, RasterStack):
        return arr.rows(r0, r1)
    if hasattr(arr, "isel") and "y" in getattr(arr, "dims", ()):
        return np.asarray(arr.isel(y=slice(r0, r1)).values)
    return np.asarray(arr[:, r0:r1])
