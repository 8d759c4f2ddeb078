"""gee_alt.memory: freed heap pages go back to the OS (glibc Linux)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gee_alt.memory import _libc

# In a fresh interpreter: glibc told to serve every allocation from the heap and never to trim it
# on its own (what it ends up doing for the ~30 MB arrays of the full-grid world generator, whose
# frees raise its dynamic mmap threshold), 400 MB of arrays freed, then released.
CHILD = """
import ctypes, ctypes.util
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: no mmap below 1 GB
libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: free() never trims the heap's top by itself
import numpy as np
from gee_alt.memory import release_freed_memory

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

arrays = [np.ones(2 * 2**20) for _ in range(25)]  # 16 MB each
del arrays
before = rss()
ok = release_freed_memory()
print(ok, before, rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or _libc() is None, reason="glibc malloc_trim only")
def test_freed_heap_is_returned():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    ok, before, after = out[0] == "True", float(out[1]), float(out[2])
    assert ok
    assert before > 400, "the freed arrays' pages are still resident before the release"
    assert before - after > 350, (before, after)


# ------------------------------------------------------------------------------ GDAL's block cache
def test_gdal_cache_is_set_in_megabytes_and_given_back():
    from gee_alt.memory import gdal_cache_bytes, gdal_cache_mb, set_gdal_cache_mb

    before = gdal_cache_bytes()
    with gdal_cache_mb(64):
        assert gdal_cache_bytes() == 64 * 2**20  # not 64 bytes (rasterio.Env(GDAL_CACHEMAX=64))
        prev = set_gdal_cache_mb(32)
        assert prev == 64 * 2**20
        assert gdal_cache_bytes() == 32 * 2**20
    assert gdal_cache_bytes() == before


def test_engine_task_keeps_a_64_mb_cache_for_its_whole_process():
    """A tiled-engine task sets the process's cache to GDAL_CACHE_MB, and a task that ends does not
    put the default (5 % of the RAM) back under one still running in another thread."""
    import threading

    from gee_alt.engines.local.tiled import _task
    from gee_alt.engines.local.tiles import GDAL_CACHE_MB
    from gee_alt.memory import gdal_cache_bytes, gdal_cache_mb

    seen = []
    started, first_done = threading.Event(), threading.Event()

    def long_task():
        with _task():
            started.set()
            first_done.wait(10)
            seen.append(gdal_cache_bytes())

    with gdal_cache_mb(1000):
        th = threading.Thread(target=long_task)
        th.start()
        started.wait(10)
        with _task():
            seen.append(gdal_cache_bytes())
        first_done.set()
        th.join()
    assert seen == [GDAL_CACHE_MB * 2**20] * 2


CLI_CHILD = """
import os, sys
from gee_alt.cli import main
from gee_alt.memory import gdal_cache_bytes
try:
    main(["info"])
except SystemExit:
    pass
print(os.environ.get("GDAL_CACHEMAX"), gdal_cache_bytes())
"""


@pytest.mark.parametrize("user", [None, "100"])
def test_cli_bounds_gdal_cache_unless_the_user_set_it(user):
    import os

    env = {k: v for k, v in os.environ.items() if k != "GDAL_CACHEMAX"}
    if user:
        env["GDAL_CACHEMAX"] = user
    out = subprocess.run([sys.executable, "-c", CLI_CHILD], capture_output=True, text=True, check=True, env=env)
    value, cache = out.stdout.split()[-2:]
    expect = user or "256"
    assert value == expect
    assert int(cache) == int(expect) * 2**20


BLOCKS_CHILD = """
import sys
import numpy as np, rasterio
from rasterio.transform import from_origin
from gee_alt.memory import gdal_cache_bytes, release_freed_memory, set_gdal_cache_mb

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

set_gdal_cache_mb(512)
path = sys.argv[1]
prof = dict(driver="GTiff", width=4096, height=4096, count=4, dtype="float32", tiled=True, crs="EPSG:32647",
            transform=from_origin(0, 0, 30, 30), interleave="band")
with rasterio.open(path, "w", **prof) as dst:
    dst.write(np.ones((4, 4096, 4096), "float32"))
release_freed_memory(gdal_blocks=True)
src = rasterio.open(path)  # kept open (as the lazy cube keeps its COGs): its blocks stay cached
for b in range(1, 5):
    for r in range(0, 4096, 512):
        src.read(b, window=((r, r + 512), (0, 4096)))
before = rss()
release_freed_memory(gdal_blocks=True)
print(before, rss(), gdal_cache_bytes())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or _libc() is None, reason="glibc malloc_trim only")
def test_gdal_blocks_are_released_and_the_cache_size_kept(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", BLOCKS_CHILD, str(tmp_path / "big.tif")], capture_output=True, text=True, check=True
    ).stdout.split()
    before, after, size = float(out[0]), float(out[1]), int(out[2])
    assert size == 512 * 2**20
    assert before - after > 150, (before, after)  # the ~256 MB of cached blocks went back
