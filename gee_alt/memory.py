"""Keep a long run's memory bounded: freed memory back to the OS, GDAL's block cache in MB.

**Freed memory.**
NumPy arrays below glibc's (dynamic, up to 32 MB) mmap threshold live on the malloc heap; when a
stage frees many of them (the world generator's statics: ~0.5 GB at the full study grid) glibc
keeps the pages, so the process's RSS stays at the stage's high-water mark through every later
stage. ``malloc_trim(0)`` returns every free page of the heap. Elsewhere (macOS, musl, Windows)
this is a no-op.

**GDAL's block cache** is one per process and defaults to 5 % of the RAM (1.2 GB on 24 GB), so
reading a large raster grows the process by that much whatever the tile. Its size is set with
``GDALSetCacheMax64``, which takes **bytes**: ``rasterio.Env(GDAL_CACHEMAX=64)`` is a 64-byte cache
(no caching at all), and on leaving the ``Env`` rasterio puts the process's value back, even
while another thread is still reading. :func:`set_gdal_cache_mb` sets it for the process (what the
engine's tasks do, for their process) and :func:`gdal_cache_mb` around a stage that gives the
previous size back at its end.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import os
from collections.abc import Iterator

#: GDAL block cache (MB) of a gee-alt command's process and the processes it starts (the CLI
#: sets it unless ``GDAL_CACHEMAX`` is set), and of the downstream stages
GDAL_CACHE_MB = 256


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def release_freed_memory(gdal_blocks: bool = False, collect: bool = True) -> bool:
    """Collect garbage, then return the heap's free pages to the OS (glibc ``malloc_trim``).
    ``gdal_blocks``: first empty GDAL's block cache (its size is kept; the blocks are read again
    when needed). At the full grid, the blocks of 25 years of DDT COGs are the cache's 256 MB.
    Only between stages, with no raster open for writing in another thread. ``collect=False``:
    no garbage collection (a task's arrays are freed when it returns; a collection holds the GIL
    for ~0.1-0.3 s, which the engine's other threads would wait for). True when the platform
    has ``malloc_trim``."""
    if collect:
        gc.collect()
    if gdal_blocks:
        size_mb = gdal_cache_bytes() / 2**20
        set_gdal_cache_mb(0)  # GDAL drops every cached block above the new size
        set_gdal_cache_mb(size_mb)
    lib = _libc()
    if lib is None:
        return False
    lib.malloc_trim(0)
    return True


def gdal_cache_bytes() -> int:
    """GDAL's block cache size of this process (bytes)."""
    import rasterio
    from rasterio.env import get_gdal_config

    with rasterio.Env():
        return int(get_gdal_config("GDAL_CACHEMAX", normalize=False))


def set_gdal_cache_mb(mb: float) -> int:
    """Set GDAL's block cache of this process to ``mb`` MB (every thread; kept after return).
    Returns the previous size in bytes."""
    import rasterio
    from rasterio.env import set_gdal_config

    with rasterio.Env():
        before = gdal_cache_bytes()
        set_gdal_config("GDAL_CACHEMAX", int(mb * 2**20), normalize=False)
    return before


@contextlib.contextmanager
def gdal_cache_mb(mb: float) -> Iterator[None]:
    """GDAL's block cache at ``mb`` MB for the process while the block runs, then as it was."""
    before = set_gdal_cache_mb(mb)
    try:
        yield
    finally:
        from rasterio.env import set_gdal_config

        set_gdal_config("GDAL_CACHEMAX", before, normalize=False)


def bound_gdal_cache_of_processes(mb: float = GDAL_CACHE_MB) -> None:
    """GDAL's block cache at ``mb`` MB for this process and every process it starts (Dask
    workers, the demo generator's pool), through ``GDAL_CACHEMAX``; a value the user set wins.
    Takes effect where GDAL has not read a block yet (call it first thing)."""
    os.environ.setdefault("GDAL_CACHEMAX", str(int(mb)))
