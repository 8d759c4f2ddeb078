"""Kill-and-resume: interrupted runs continue where they stopped and end byte-identical.

- local engine: ``python -m gee_alt run --engine local`` is SIGKILLed at seeded random moments
  (>= 20 kills over several chains), then rerun; each rerun resumes. Checked after every kill:
  no product under its final name is half-written (every final ``.tif`` opens), finished years
  (recorded in ``RUN/.resume/progress.json`` with their sha256) keep their file (inode and
  mtime) and their ``attempt`` number, i.e. are never recomputed. At the end: DDT, ALT, ALT sd,
  trend, NDVI mean and calibration are byte-identical to an uninterrupted run, the NetCDF cube
  has identical data, and no temporary, partial or resume file remains.
- a completed run still needs ``--overwrite``; an interrupted run with other settings is refused.
- the demo: an interrupted demo directory is removed and started over (see ``gee-alt demo --help``).
- the Earth Engine pull (stub server): crashes injected at seeded random requests (>= 20), plus
  stray temporaries as a kill would leave them; reruns pull only unfinished years and end
  byte-identical to an uninterrupted pull.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from helpers.cli import assert_user_error, cli
from helpers.robust import YEARS, demo_inputs, finished_run, run_cmd, subprocess_env

N_KILLS = 20
KILL_SEED = 20251124
IDENTICAL = ["ddt/ddt_{y}.tif", "alt/alt_{y}.tif", "alt/alt_sd_{y}.tif", "alt/alt_{y}.stac.json"]
IDENTICAL_ONCE = [
    "ndvi_mean.tif",
    "landcover.tif",
    "calibration.json",
    "insitu_used.csv",
    "trend/alt_trend_cm_per_yr.tif",
    "trend/alt_trend_p.tif",
    "trend/trend.json",
]
STATS: dict = {}


def _final_files(run: Path) -> list[Path]:
    return [p for p in run.rglob("*") if p.is_file()]


def _check_no_partial_products(run: Path) -> None:
    """Every product under its final name is complete (rasters open and read; JSON parses)."""
    import rasterio

    for p in _final_files(run):
        if p.name.startswith(".tmp-"):
            continue
        if p.suffix == ".tif":
            with rasterio.open(p) as src:
                src.read(1)
        elif p.suffix == ".json":
            json.loads(p.read_text())


def _progress(run: Path) -> dict:
    p = run / ".resume" / "progress.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _kill_chain(inputs: Path, run: Path, rng: random.Random, max_kills: int, seen: dict) -> int:
    """Start/kill ``run`` until ``max_kills`` kills landed (or it finished first); returns the kills."""
    kills = 0
    while kills < max_kills:
        delay = rng.uniform(0.4, 4.5)
        proc = subprocess.Popen(
            run_cmd(inputs, run),
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        t_end = time.monotonic() + delay
        while time.monotonic() < t_end and proc.poll() is None:
            time.sleep(0.02)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and any worker it started
            proc.wait()
            if (run / "manifest.json").exists():  # killed while exiting: the run was complete
                proc.stderr.close()
                break
            kills += 1
        else:
            err = proc.stderr.read().decode()
            assert proc.returncode == 0, err
            break  # finished before the kill: chain done
        proc.stderr.close()
        _check_no_partial_products(run)
        for y, rec in _progress(run).get("years", {}).items():
            st = (run / "ddt" / f"ddt_{y}.tif").stat()
            now = (st.st_ino, st.st_mtime_ns, rec["attempt"], rec["files"][f"ddt/ddt_{y}.tif"])
            assert seen.setdefault(y + str(run), now) == now, f"year {y} was recomputed"
    return kills


def _check_chain_result(run: Path, ref: Path, seen: dict) -> None:
    import xarray as xr

    for y in YEARS:
        key = str(y) + str(run)
        if key in seen:  # a year finished before a kill is still the same file
            st = (run / "ddt" / f"ddt_{y}.tif").stat()
            assert (st.st_ino, st.st_mtime_ns) == seen[key][:2]
    for rel in [r.format(y=y) for r in IDENTICAL for y in YEARS] + IDENTICAL_ONCE:
        assert (run / rel).read_bytes() == (ref / rel).read_bytes(), rel
    with xr.open_dataset(run / "cube.nc") as a, xr.open_dataset(ref / "cube.nc") as b:
        for v in b.data_vars:
            np.testing.assert_array_equal(a[v].values, b[v].values)
    leftovers = [p for p in run.rglob("*") if p.name.startswith(".tmp-") or ".resume" in p.parts]
    assert leftovers == []
    assert sorted(p.relative_to(run).as_posix() for p in _final_files(run) if "report" not in p.parts) == sorted(
        p.relative_to(ref).as_posix() for p in _final_files(ref) if "report" not in p.parts
    )


def test_local_run_survives_random_kills(tmp_path_factory, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    inputs = demo_inputs(tmp_path_factory)
    ref = finished_run(tmp_path_factory)
    seen: dict = {}

    def chain(i: int) -> int:
        """One run directory killed 5 times at seeded random moments, then run to completion."""
        rng = random.Random(KILL_SEED + i)
        run = tmp_path / f"chain{i}"
        kills = 0
        while kills < 5:  # a chain that finished early starts again in a fresh directory
            kills += _kill_chain(inputs, run, rng, 5 - kills, seen)
            if not (run / "manifest.json").exists():  # rerun to completion
                res = subprocess.run(run_cmd(inputs, run), env=subprocess_env(), capture_output=True, text=True)
                assert res.returncode == 0, res.stderr
            _check_chain_result(run, ref, seen)
            run = run.with_name(run.name + "x")
        return kills

    with ThreadPoolExecutor(2) as pool:  # two chains at a time (each run is single-process)
        total = sum(pool.map(chain, range(N_KILLS // 5)))
    assert total >= N_KILLS
    STATS["local_kills"] = total
    print(f"\nlocal engine: {total} kills survived; {len(seen)} finished years kept across kills")


def test_completed_run_needs_overwrite_and_other_settings_are_refused(tmp_path_factory, tmp_path):
    inputs = demo_inputs(tmp_path_factory)
    ref = finished_run(tmp_path_factory)
    run = tmp_path / "done"
    shutil.copytree(ref, run)
    before = {p: p.read_bytes() for p in _final_files(run)}
    assert_user_error(
        cli("run", "--engine", "local", "--inputs", inputs, "--out", run, "--quiet"), "completed run", "--overwrite"
    )
    assert {p: p.read_bytes() for p in _final_files(run)} == before
    # an interrupted run (no manifest) with other settings: refused, nothing touched
    part = tmp_path / "part"
    part.mkdir()
    (part / "ddt").mkdir()
    shutil.copy(ref / "ddt" / "ddt_2010.tif", part / "ddt" / "ddt_2010.tif")
    (part / ".resume").mkdir()
    (part / ".resume" / "progress.json").write_text(json.dumps({"settings": {"seed": 7}, "years": {}}))
    assert_user_error(
        cli("run", "--engine", "local", "--inputs", inputs, "--out", part, "--quiet", "--workers", "1"),
        "interrupted run with other settings",
        "--overwrite",
    )
    assert (part / "ddt" / "ddt_2010.tif").exists()


def test_interrupted_demo_starts_over_cleanly(tmp_path):
    code, out, _ = cli("demo", "--help")
    assert code == 0 and "started over" in " ".join(out.split())
    run = tmp_path / "demo"
    (run / "ddt").mkdir(parents=True)
    (run / "ddt" / "ddt_1999.tif").write_bytes(b"half a run from before")  # a stale product
    (run / "alt").mkdir()
    (run / "alt" / ".tmp-alt_2010.tif.abc").write_bytes(b"partial")  # what a kill leaves
    code, _, err = cli(
        "demo", "--out", run, "--size", "128", "--years", "2010-2012", "--trees", "5", "--workers", "1", "--quiet"
    )
    assert code == 0, err
    assert not (run / "ddt" / "ddt_1999.tif").exists()
    assert [p for p in run.rglob(".tmp-*")] == [] and not (run / ".resume").exists()
    assert (run / "manifest.json").exists()
    # a completed demo needs --overwrite
    assert_user_error(cli("demo", "--out", run, "--size", "128", "--years", "2010-2012", "--quiet"), "--overwrite")


# ------------------------------------------------------------------ Earth Engine pull (stub)
class Crash(BaseException):
    """Stands for the process dying (not an Exception: no retry or handler catches it)."""


def test_ee_pull_survives_random_crashes(tmp_path, monkeypatch):
    from ee import apitestcase

    from gee_alt.config import load_config
    from gee_alt.engines.ee import pull, thaw
    from gee_alt.grid import grid_from_bbox
    from gee_alt.io import sha256_file
    from helpers.ee import StubServer

    case = apitestcase.ApiTestCase("setUp")
    case.setUp()
    try:
        grid = grid_from_bbox((99.0, 38.0, 99.06, 38.04), 30.0, "EPSG:32647")
        years, limit = [2001, 2002, 2003], 100_000  # 4 requests per year
        cfg = load_config()

        images = {y: thaw.ddt_image(cfg, y, grid) for y in years}

        def pull_all(out, stub, **kw):
            stub.install(monkeypatch)
            return pull.run_years(
                out, years, grid, images.__getitem__, max_workers=1, initial_delay_s=0.0, request_byte_limit=limit, **kw
            )

        clean = pull_all(tmp_path / "clean", StubServer(grid))
        rng = random.Random(KILL_SEED)
        crashes, chains = 0, 0
        while crashes < N_KILLS:
            out = tmp_path / f"ee{chains}"
            chains += 1
            kept: dict[int, tuple] = {}
            while True:
                done_before = {int(y) for y in _progress(out).get("years", {})}
                stub = StubServer(grid)
                crash_at = rng.randint(1, 12)
                real = stub.compute_pixels

                def crashing(params, real=real, stub=stub, crash_at=crash_at):
                    if sum(stub.pixel_calls.values()) + 1 >= crash_at:
                        raise Crash()
                    return real(params)

                stub.compute_pixels = crashing
                try:
                    pull_all(out, stub)
                except Crash:
                    crashes += 1
                    # what a SIGKILL in the middle of a write leaves behind
                    (out / "ddt").mkdir(parents=True, exist_ok=True)
                    (out / "ddt" / f".tmp-ddt_{years[-1]}.tif.{crashes}").write_bytes(b"partial")
                    done = _progress(out).get("years", {})
                    for y in done:
                        st = (out / "ddt" / f"ddt_{y}.tif").stat()
                        assert kept.setdefault(int(y), (st.st_ino, st.st_mtime_ns)) == (st.st_ino, st.st_mtime_ns)
                    assert not done_before & set(stub.pixel_calls), "a finished year was pulled again"
                    if crashes >= N_KILLS:
                        break
                    continue
                break
            final = StubServer(grid)
            cube = pull_all(out, final)
            assert not set(final.pixel_calls) & set(kept), "a finished year was pulled again"
            np.testing.assert_array_equal(cube["ddt_degc_days"].values, clean["ddt_degc_days"].values)
            for y in years:
                assert sha256_file(out / "ddt" / f"ddt_{y}.tif") == sha256_file(
                    tmp_path / "clean" / "ddt" / f"ddt_{y}.tif"
                )
            assert list((out / "ddt").glob(".tmp-*")) == []
        STATS["ee_crashes"] = crashes
        print(f"\nEE pull: {crashes} crashes in {chains} chains survived")
    finally:
        case.tearDown()
