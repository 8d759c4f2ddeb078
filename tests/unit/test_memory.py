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
