"""Earth Engine batch tasks for real extents (an I/O edge): export each year to an asset, poll,
resume, then pull the finished asset with xee.

An interactive ``computePixels`` request recomputes the whole year (Landsat median, 30 m
aggregation, every forest) for each tile, within interactive time and memory limits;
"Computation timed out" and "User memory limit exceeded" are not retryable. A batch task runs
the year once with far larger limits and stores it as an asset; reading the stored asset back
is cheap. Flow, per year whose path is ``batch`` (:func:`gee_alt.engines.ee.plan.year_path`):

1. an asset named after the year and the graph hash (:func:`asset_id`) that already exists is
   not recomputed (resume across runs, machines and lost resume records);
2. else a task recorded in the run's resume record (:meth:`gee_alt.runs.Progress.task_of`)
   with the same graph key is polled again, not resubmitted;
3. else ``ee.batch.Export.image.toAsset(image, description, assetId, crs, crsTransform,
   dimensions, maxPixels)`` is started and recorded.

:func:`wait_for_tasks` polls every submitted task (``task.status()['state']``: READY, RUNNING,
COMPLETED, FAILED, CANCELLED) until each is finished, reporting state changes; a FAILED or
CANCELLED task becomes one line with Earth Engine's ``error_message``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gee_alt import runs
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid

DEFAULT_ASSET_FOLDER = "gee-alt"
MAX_EXPORT_PIXELS = int(1e13)
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
ASSET_HASH_CHARS = 16


def asset_root(configured: str, project: str | None) -> str:
    """The folder of the yearly assets: the configured one, else ``projects/<project>/assets/gee-alt``."""
    if configured:
        return configured.rstrip("/")
    if not project:
        raise GeeAltError(
            "batch exports need a Cloud project for their assets: pass --project or set ee_run.asset_root"
        )
    return f"projects/{project}/assets/{DEFAULT_ASSET_FOLDER}"


def asset_id(root: str, study: str, year: int, graph_sha256: str) -> str:
    """``ROOT/<study>_ddt_<year>_<hash>``: the graph hash in the name, so an asset is reused
    only for exactly the graph that made it."""
    return f"{root}/{study}_ddt_{year}_{graph_sha256[:ASSET_HASH_CHARS]}"


def asset_exists(asset: str) -> bool:
    """True when the asset exists (``ee.data.getAsset``); a missing asset raises there."""
    import ee

    try:
        ee.data.getAsset(asset)
    except ee.EEException:
        return False
    return True


def start_export(image, asset: str, grid: Grid, description: str):
    """Start ``Export.image.toAsset`` of ``image`` on ``grid``; returns the started task."""
    import ee

    w, h = grid["shape_2d"]
    task = ee.batch.Export.image.toAsset(
        image=image,
        description=description[:100],
        assetId=asset,
        crs=grid["crs"],
        crsTransform=list(grid["crs_transform"]),
        dimensions=f"{w}x{h}",
        maxPixels=MAX_EXPORT_PIXELS,
    )
    task.start()
    return task


def task_from_record(info: dict):
    """An ``ee.batch.Task`` for a recorded operation (polls it; never starts it again)."""
    import ee

    return ee.batch.Task(
        info.get("id"), ee.batch.Task.Type.EXPORT_IMAGE, ee.batch.Task.State.UNSUBMITTED, name=info["name"]
    )


@dataclass
class YearTask:
    """A year on the batch path: its asset, graph key and (unless the asset existed) its task."""

    year: int
    asset: str
    key: str
    task: object | None = None
    state: str = "COMPLETED"
    error: str = ""


def submit(
    year: int,
    image,
    key: str,
    asset: str,
    grid: Grid,
    record: runs.Progress,
    description: str,
) -> YearTask:
    """The year's batch task: reuse a finished asset, re-poll a recorded task, or start one."""
    if asset_exists(asset):
        return YearTask(year, asset, key)
    info = record.task_of(year)
    if info and info.get("key") == key and info.get("asset") == asset:
        return YearTask(year, asset, key, task_from_record(info), "READY")
    try:
        task = start_export(image, asset, grid, description)
    except Exception as exc:  # ee.EEException, HTTP errors: one line with the reason
        return YearTask(year, asset, key, None, "FAILED", f"export not started: {_first_line(exc)}")
    record.note_task(year, {"name": task.name, "id": task.id, "asset": asset, "key": key})
    return YearTask(year, asset, key, task, "READY")


def _first_line(exc) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def wait_for_tasks(
    tasks: list[YearTask],
    *,
    poll_interval_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    on_state: Callable[[int, str], None] | None = None,
    max_polls: int | None = None,
) -> list[YearTask]:
    """Poll until every task is COMPLETED, FAILED or CANCELLED; ``on_state(year, state)`` hears
    each change. A failed status poll counts as a transient problem and is polled again."""
    pending = [t for t in tasks if t.state not in TERMINAL]
    polls = 0
    while pending:
        for t in pending:
            try:
                status = t.task.status()
            except Exception as exc:  # a poll that fails is not a failed task
                t.error = f"status poll failed: {_first_line(exc)}"
                continue
            state = status.get("state", "UNKNOWN")
            if state == "UNSUBMITTED":  # operation unknown to the server (e.g. expired): treat as failed
                state, status = "FAILED", {"error_message": "the recorded task is unknown to Earth Engine"}
            if state != t.state and on_state:
                on_state(t.year, state)
            t.state = state
            if state in ("FAILED", "CANCELLED"):
                t.error = (str(status.get("error_message") or state.lower()).strip().splitlines() or [""])[0][:200]
        pending = [t for t in pending if t.state not in TERMINAL]
        polls += 1
        if pending:
            if max_polls is not None and polls >= max_polls:
                raise GeeAltError(
                    f"batch tasks still running after {polls} polls (years {[t.year for t in pending]}); "
                    "rerun the same command later to continue (the tasks keep running on Earth Engine)"
                )
            sleep(poll_interval_s)
    return tasks
