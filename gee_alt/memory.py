"""Give freed memory back to the operating system between the stages of a long run.

NumPy arrays below glibc's (dynamic, up to 32 MB) mmap threshold live on the malloc heap; when a
stage frees many of them (the world generator's statics: ~0.5 GB at the full study grid) glibc
keeps the pages, so the process's RSS stays at the stage's high-water mark through every later
stage. ``malloc_trim(0)`` returns every free page of the heap. Elsewhere (macOS, musl, Windows)
this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def release_freed_memory() -> bool:
    """Collect garbage, then return the heap's free pages to the OS (glibc ``malloc_trim``).
    True when the platform has it."""
    gc.collect()
    lib = _libc()
    if lib is None:
        return False
    lib.malloc_trim(0)
    return True
