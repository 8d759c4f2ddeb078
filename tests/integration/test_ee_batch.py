"""Batch tasks through a stub task queue and pixel server (scripted states and synthetic
arrays, never Earth Engine results): submit, poll RUNNING -> COMPLETED, one FAILED year,
resume skips finished assets."""

from __future__ import annotations

import numpy as np
import pytest

from gee_alt import runs
from gee_alt.config import load_config
from gee_alt.engines.ee import pull, tasks, thaw
from gee_alt.grid import grid_from_bbox
from helpers.ee import BatchStub, StubServer, known_year_arrays

GRID = grid_from_bbox((99.0, 38.0, 99.06, 38.04), 30.0, "EPSG:32647")
YEARS = [2001, 2003, 2005]
ROOT = "projects/p/assets/gee-alt"


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def run(cfg, out_dir, record, statuses, **kw):
    return pull.run_years(
        out_dir,
        YEARS,
        GRID,
        lambda y: thaw.ddt_image(cfg, y, GRID),
        progress_record=record,
        max_workers=2,
        initial_delay_s=0.0,
        request_byte_limit=200_000,
        path_for_year=lambda y: "batch",
        batch=pull.BatchOptions(ROOT, "datong", poll_interval_s=7.0, max_polls=20),
        progress=lambda y, st: statuses.append((y, st)),
        **kw,
    )


def test_batch_lifecycle_failed_year_and_resume(ee_offline, monkeypatch, tmp_path, cfg):
    pixels = StubServer(GRID).install(monkeypatch)
    queue = BatchStub(fail_years={2003}, error="Computation timed out.\nTrace: ...").install(monkeypatch)
    record = runs.Progress(tmp_path, {"engine": "ee"})
    record.start(resume=False)
    statuses, slept = [], []
    cube = run(cfg, tmp_path, record, statuses, sleep=slept.append)
    # every year submitted once, polled RUNNING -> COMPLETED (2003: FAILED), finished ones pulled
    assert queue.exports == {2001: 1, 2003: 1, 2005: 1}
    assert [s for y, s in statuses if y == 2001] == ["submitted", "RUNNING", "COMPLETED", "pulled"]
    assert [s for y, s in statuses if y == 2003] == ["submitted", "RUNNING", "FAILED", "failed"]
    assert slept == [7.0]  # one wait between the two polls
    assert list(cube.year.values) == [2001, 2005]
    for i, y in enumerate([2001, 2005]):
        np.testing.assert_array_equal(cube["ddt_degc_days"].values[i], known_year_arrays(y, GRID)[0])
        assert runs.ddt_path(tmp_path, y).exists()
    assert record.failed() == {2003: "batch task FAILED: Computation timed out."}
    assert set(pixels.pixel_calls) == {2001, 2005}  # the failed year's asset was never read
    # a finished task's bookkeeping is dropped, the asset name carries the graph hash
    assert record.task_of(2001) is None
    ghash = pull.graph_sha256(thaw.ddt_image(cfg, 2001, GRID))
    assert tasks.asset_id(ROOT, "datong", 2001, ghash) in queue.assets

    # rerun: finished years are not recomputed nor pulled; only 2003 is submitted again
    queue.fail_years = set()
    again = runs.Progress(tmp_path, {"engine": "ee"})
    again.start(resume=True)
    calls = dict(pixels.pixel_calls)
    statuses = []
    cube = run(cfg, tmp_path, again, statuses, sleep=lambda s: None)
    assert queue.exports == {2001: 1, 2003: 2, 2005: 1}
    assert {y: pixels.pixel_calls[y] for y in (2001, 2005)} == {y: calls[y] for y in (2001, 2005)}
    assert list(cube.year.values) == YEARS and again.failed() == {}
    assert (2001, "skipped") in statuses and (2005, "skipped") in statuses


def test_existing_asset_is_pulled_not_recomputed(ee_offline, monkeypatch, tmp_path, cfg):
    """A finished asset of the same graph (e.g. from another machine) is only pulled; a task
    recorded in the resume record is polled again, not resubmitted."""
    StubServer(GRID).install(monkeypatch)
    hashes = {y: pull.graph_sha256(thaw.ddt_image(cfg, y, GRID)) for y in YEARS}
    queue = BatchStub(existing_assets={tasks.asset_id(ROOT, "datong", 2001, hashes[2001])}).install(monkeypatch)
    record = runs.Progress(tmp_path, {"engine": "ee"})
    record.start(resume=False)
    # 2003: a task an interrupted run started (recorded, still running on the server)
    queue.ops["projects/p/operations/old"] = {
        "year": 2003,
        "asset": tasks.asset_id(ROOT, "datong", 2003, hashes[2003]),
        "polls": 0,
    }
    record.note_task(
        2003,
        {
            "name": "projects/p/operations/old",
            "id": "old",
            "asset": queue.ops["projects/p/operations/old"]["asset"],
            "key": hashes[2003],
        },
    )
    cube = run(cfg, tmp_path, record, [], sleep=lambda s: None)
    assert queue.exports == {2005: 1}  # 2001 existed, 2003 was re-polled
    assert list(cube.year.values) == YEARS
    assert record.record["years"]["2001"]["asset"].endswith(hashes[2001][:16])
