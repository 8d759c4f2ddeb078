"""The tiled local engine on Dask: byte-identical to the in-memory engine for any tile size and
scheduler, resumable at tile granularity, and guarded by the tile's memory (issue 12)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from gee_alt import runs
from gee_alt.engines.local.engine import LocalEngineParams, run_local
from gee_alt.engines.local.layout import InputLayout
from gee_alt.engines.local.runner import LocalEngine
from gee_alt.science.forest import RandomForestSettings
from helpers.cli import assert_user_error, cli
from helpers.robust import YEARS, demo_inputs, run_cmd, subprocess_env

RF = RandomForestSettings(n_estimators=8, random_state=3)
VARS = ("ddt_degc_days", "ddt_sd_degc_days", "n_obs")


def _produce(inputs: Path, out: Path, tile_px: int, client=None, workers: int = 1):
    eng = LocalEngine(inputs, list(YEARS), LocalEngineParams(rf=RF, tile_px=tile_px, workers=workers))
    eng.preflight()
    if client is not None:
        eng.address = client.scheduler.address
    rec = runs.Progress(out, eng.settings())
    rec.start(False)
    return eng.produce(out, rec)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The in-memory engine (the whole scene at once) and the inputs."""
    inputs = demo_inputs(tmp_path_factory)
    return inputs, run_local(InputLayout(inputs), list(YEARS), LocalEngineParams(rf=RF))


@pytest.mark.parametrize("tile_px", [128, 64, 72])  # one tile, 2 x 2, 2 x 2 with ragged edge tiles
def test_tiled_engine_is_byte_identical_to_the_in_memory_engine(reference, tmp_path, tile_px):
    inputs, ref = reference
    out = _produce(inputs, tmp_path / "run", tile_px)
    for v in VARS:
        np.testing.assert_array_equal(out.cube[v].values, ref[v].values, strict=True)
    files = {y: runs.ddt_path(tmp_path / "run", y).read_bytes() for y in YEARS}
    assert len(set(files.values())) == len(YEARS)


def test_a_two_worker_dask_cluster_gives_the_bytes_of_the_default_scheduler(reference, tmp_path):
    from distributed import Client, LocalCluster

    inputs, _ = reference
    default = _produce(inputs, tmp_path / "default", 64)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        _produce(inputs, tmp_path / "cluster", 64, client=client)
    for y in YEARS:
        a = runs.ddt_path(tmp_path / "default", y).read_bytes()
        assert runs.ddt_path(tmp_path / "cluster", y).read_bytes() == a
    np.testing.assert_array_equal(default.fields.ndvi_mean, _produce(inputs, tmp_path / "again", 72).fields.ndvi_mean)


def test_local_threads_and_local_processes_give_the_bytes_of_one_worker(reference, tmp_path, monkeypatch):
    """The default local cluster runs 2 tasks at once as threads of this process (BLAS held at one
    thread for the run); ``GEE_ALT_DASK_PROCESSES=1`` runs 2 worker processes: both write the DDT
    bytes of a 1-worker run, tile by tile, and neither leaves this process's BLAS changed."""
    from threadpoolctl import threadpool_info

    from gee_alt.engines.local import cluster

    inputs, _ = reference
    one = _produce(inputs, tmp_path / "one", 64, workers=1)
    blas_before = [d["num_threads"] for d in threadpool_info()]
    monkeypatch.delenv(cluster.DASK_PROCESSES_ENV, raising=False)
    assert not cluster.local_processes()
    _produce(inputs, tmp_path / "threads", 64, workers=2)
    assert [d["num_threads"] for d in threadpool_info()] == blas_before
    monkeypatch.setenv(cluster.DASK_PROCESSES_ENV, "1")
    assert cluster.local_processes()
    _produce(inputs, tmp_path / "procs", 64, workers=2)
    for y in YEARS:
        a = runs.ddt_path(tmp_path / "one", y).read_bytes()
        assert runs.ddt_path(tmp_path / "threads", y).read_bytes() == a
        assert runs.ddt_path(tmp_path / "procs", y).read_bytes() == a
    assert np.isfinite(one.cube["ddt_degc_days"].values).any()


def test_unreachable_dask_address_is_one_line_and_writes_nothing(tmp_path_factory, tmp_path):
    inputs = demo_inputs(tmp_path_factory)
    out = tmp_path / "run"
    res = cli("run", "--engine", "local", "--inputs", inputs, "--out", out, "--dask-address", "tcp://127.0.0.1:9")
    assert_user_error(res, "tcp://127.0.0.1:9")
    assert not out.exists() or not any(out.iterdir())


def test_too_large_tile_fails_at_the_start(tmp_path_factory, tmp_path, monkeypatch):
    from gee_alt.engines.local import engine
    from gee_alt.errors import GeeAltError

    monkeypatch.setattr(engine, "available_memory_bytes", lambda: 2**30)
    eng = LocalEngine(demo_inputs(tmp_path_factory), list(YEARS), LocalEngineParams(rf=RF, tile_px=4096))
    eng.preflight()  # a tile larger than the scene (128 px) is the scene: it fits
    assert eng.workers >= 1
    monkeypatch.setattr(engine, "available_memory_bytes", lambda: 2**20)
    with pytest.raises(GeeAltError, match="smaller --tile-size"):
        LocalEngine(demo_inputs(tmp_path_factory), list(YEARS), LocalEngineParams(rf=RF, tile_px=64)).preflight()


def test_killed_run_resumes_from_finished_tiles(tmp_path_factory, tmp_path):
    """SIGKILL once tiles of the first year are written: they are not rewritten on rerun, and the
    final bytes equal an uninterrupted run with the same tile size."""
    inputs = demo_inputs(tmp_path_factory)
    args = ("--tile-size", "64")
    ref = tmp_path / "ref"
    subprocess.run(run_cmd(inputs, ref) + list(args), check=True, env=subprocess_env(), capture_output=True)
    run = tmp_path / "run"
    proc = subprocess.Popen(
        run_cmd(inputs, run) + list(args),
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    work = runs.work_dir(run, 64)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(work.glob(f"{YEARS[0]}/ndvi_pred/*.tif"))) < 2:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in work.rglob("*.tif")}
    assert kept, "the run was killed before any tile was written"
    assert not (run / "manifest.json").exists()
    # the rerun, killed again as soon as it wrote a new tile: the finished tiles were left alone
    proc = subprocess.Popen(
        run_cmd(inputs, run) + list(args),
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (set(work.rglob("*.tif")) - set(kept)):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    still = [p for p in kept if p.exists()]
    assert still and all((p.stat().st_ino, p.stat().st_mtime_ns) == kept[p] for p in still)
    res = subprocess.run(run_cmd(inputs, run) + list(args), env=subprocess_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for y in YEARS:
        assert runs.ddt_path(run, y).read_bytes() == runs.ddt_path(ref, y).read_bytes()
        assert runs.alt_path(run, y).read_bytes() == runs.alt_path(ref, y).read_bytes()
    assert (run / "calibration.json").read_bytes() == (ref / "calibration.json").read_bytes()
    assert not (run / ".resume").exists()
