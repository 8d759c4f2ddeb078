"""Where the local engine's Dask tasks run: a local cluster sized to the machine, or yours.

- default: a ``dask.distributed`` :class:`~distributed.LocalCluster` in this process with one
  thread per worker slot (one per core, fewer when a tile task would not fit in memory). The
  tasks spend their time in code that releases the GIL (GDAL warps, scikit-learn tree traversal,
  NumPy), so threads run them side by side without the processes' cost: measured at 1024² x 2
  years on 2 cores, 25 % less CPU and 20 % less wall than two worker processes, same bytes
  (BENCHMARKS.md §4e);
- ``GEE_ALT_DASK_PROCESSES=1``: a local cluster of single-threaded worker processes instead (each
  task's memory in its own process; for machines where the GIL-bound parts matter);
- ``--dask-address tcp://HOST:PORT`` (or ``GEE_ALT_DASK_ADDRESS``): an existing scheduler. Its
  workers must see the input and run directories at the same paths (a shared file system).

Dask retries a task whose worker died (``distributed.scheduler.allowed-failures``); a lost
cluster stops the run with one line, and the rerun resumes from the finished tiles.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from gee_alt.errors import GeeAltError

DASK_ADDRESS_ENV = "GEE_ALT_DASK_ADDRESS"
DASK_PROCESSES_ENV = "GEE_ALT_DASK_PROCESSES"
CONNECT_TIMEOUT_S = 10


def dask_address(address: str | None) -> str | None:
    """The scheduler address to use: ``address``, else ``GEE_ALT_DASK_ADDRESS``, else None (local)."""
    return address or os.environ.get(DASK_ADDRESS_ENV) or None


def _connect(address: str):
    from distributed import Client

    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise GeeAltError(f"cannot reach the Dask scheduler at {address}: {msg}") from None


def check_reachable(address: str | None) -> None:
    """Connect to the scheduler at ``address`` (when given) and disconnect; raises :class:`GeeAltError`
    naming the address when it is unreachable or refuses (before anything is written)."""
    if address:
        _connect(address).close()


def local_processes() -> bool:
    """Local worker processes instead of threads (``GEE_ALT_DASK_PROCESSES`` = 1/true/yes)."""
    return os.environ.get(DASK_PROCESSES_ENV, "").strip().lower() in {"1", "true", "yes"}


@contextlib.contextmanager
def dask_client(address: str | None, workers: int) -> Iterator:
    """A ``distributed.Client``: on the scheduler at ``address``, or on a local cluster running
    ``workers`` tasks at once: threads of one worker in this process (default), or single-threaded
    worker processes (:func:`local_processes`). Threads share this process's BLAS, held at one
    thread for the whole run (each task also asks for one: a task ending must not hand the BLAS of
    another still running its pool back; the bytes must not depend on the scheduler)."""
    if address:
        client = _connect(address)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()
        return
    from distributed import Client, LocalCluster
    from threadpoolctl import threadpool_limits

    processes = workers > 1 and local_processes()
    with (
        threadpool_limits(1),
        LocalCluster(
            n_workers=max(1, workers) if processes else 1,
            threads_per_worker=1 if processes else max(1, workers),
            processes=processes,
            dashboard_address=":0",
            memory_limit=0,  # the memory guard sized the workers; Dask must not pause the forests
            # workers log a heartbeat that misses a closing scheduler as an ERROR with a traceback; what
            # matters reaches the driver (a task's error, a lost cluster) and is reported in one line
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def _lost_cluster_types() -> tuple[type[BaseException], ...]:
    """What the driver sees when the scheduler or all workers are gone (not a task's own error)."""
    import asyncio

    from distributed import KilledWorker
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError

    return (CommClosedError, KilledWorker, FutureCancelledError, asyncio.CancelledError, TimeoutError)


LOST_CLUSTER = _lost_cluster_types()


def lost_cluster_error(address: str | None, exc: BaseException) -> GeeAltError:
    where = f"the Dask cluster at {address}" if address else "the local Dask cluster"
    msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return GeeAltError(f"{where} was lost ({msg}); rerun the same command to resume from the finished tiles")
