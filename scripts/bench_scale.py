"""Benchmark how the local engine scales with the extent (issue 12).

For each size (a square window of the study grid, or ``full``: the whole 3215 x 2065 px study
grid) it writes the **realistic** world's inputs (seed 42, the tiled generator; the same world
for every size) in a fresh process, then runs ``gee-alt run --engine local`` on them in another
fresh process. Both are measured: wall time, CPU time of the whole process tree and the peak RSS
of every process (the driver and each Dask worker, polled from ``/proc``). Cost per
megapixel-year = CPU seconds / (Mpx x years), reported relative to the 512 x 512 window of the
same bench. Targets (2 cores, 24 GB): cost <= 1.2 x the 512 figure; peak RSS at the largest
window <= 1.5 x at 512 with the same tile size. Inputs already in ``--work`` are reused (and
then not measured).

    python scripts/bench_scale.py [--sizes 512,1024,2048,full] [--years 2000-2004] [--tile-size 512]
        [--workers 2] [--schedulers default,cluster] [--work DIR] [--out bench/bench_scale.json]

``--schedulers cluster`` also runs the 512 window on a 2-worker ``dask.distributed``
LocalCluster started by the bench (``--dask-address``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


FULL_SHAPE = (2065, 3215)  # the study grid (rows, cols) at 30 m: ``--size full``

GENERATE = """
import sys
from pathlib import Path
from gee_alt.demo.worlds import make_world, write_world
size, folder, years, tile, workers = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
years = list(range(int(years.split("-")[0]), int(years.split("-")[1]) + 1))
scene = make_world("realistic", seed=42, years=years, size_px=size if size == "full" else int(size), tile_px=tile)
write_world(scene, folder / "inputs", folder / "truth", years, workers=workers)
"""


def n_pixels(size: str) -> int:
    return FULL_SHAPE[0] * FULL_SHAPE[1] if size == "full" else int(size) ** 2


def write_inputs(size: str, years: str, folder: Path, tile: int, workers: int) -> tuple[Path, dict | None]:
    """The realistic world's inputs (seed 42) for a ``size`` window (or ``full``), generated in a
    fresh process (tile by tile, ``workers`` years at a time) whose wall time, CPU and peak RSS
    are measured; kept and reused if already written (then no figures)."""
    gen = folder / f"world_{size}"
    if (gen / "inputs" / "insitu.csv").exists():
        return gen / "inputs", None
    shutil.rmtree(gen, ignore_errors=True)
    cmd = [sys.executable, "-c", GENERATE, size, str(gen), years, str(tile), str(workers)]
    return gen / "inputs", measure(cmd)


def _children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (``_tree`` of each gives its subtree once)."""
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (processes that exit meanwhile are skipped)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += _children(p)
        except OSError:
            pass
    return out


def _hwm_mb(pid: int) -> tuple[str, float] | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        return cmd, hwm / 1024
    except (OSError, StopIteration):
        return None


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_once(
    inputs: Path, out: Path, years: str, tile: int, workers: int, address: str | None, extra_pids: list[int] = ()
) -> dict:
    """One ``gee-alt run --engine local``; ``extra_pids``: processes outside the run's tree that
    work for it (the workers of a cluster the bench started), whose CPU and peak RSS are counted too."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "gee_alt", "run", "--engine", "local", "--inputs", str(inputs), "--out", str(out)]
    cmd += ["--years", years, "--tile-size", str(tile), "--workers", str(workers), "--quiet"]
    if address:
        cmd += ["--dask-address", address]
    return measure(cmd, extra_pids)


def measure(cmd: list[str], extra_pids: list[int] = ()) -> dict:
    """Run ``cmd`` in a fresh process; its wall time, the CPU time of its process tree (and of
    ``extra_pids``) and the peak RSS of every process (``VmHWM`` polled from ``/proc``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    extra = [q for p in extra_pids for q in _tree(p)]
    cpu0 = {p: _cpu_s(p) for p in extra}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    peaks: dict[int, tuple[str, float]] = {}
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            for p in _tree(proc.pid) + extra:
                got = _hwm_mb(p)
                if got:
                    peaks[p] = (got[0], max(got[1], peaks.get(p, ("", 0.0))[1]))
            time.sleep(0.2)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    code = proc.wait()
    stop.set()
    th.join()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra_cpu = sum(_cpu_s(p) - cpu0[p] for p in extra)
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}")
    procs = sorted(
        ({"pid": p, "role": _role(c, p == proc.pid), "peak_rss_mb": round(m, 1)} for p, (c, m) in peaks.items()),
        key=lambda r: -r["peak_rss_mb"],
    )
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) + extra_cpu, 2),
        "peak_rss_mb_driver": round(after.ru_maxrss / 1024, 1) if not procs else procs_driver(procs),
        "peak_rss_mb_any_process": max((r["peak_rss_mb"] for r in procs), default=after.ru_maxrss / 1024),
        "processes": procs,
    }


def procs_driver(procs: list[dict]) -> float:
    return max((r["peak_rss_mb"] for r in procs if r["role"] == "driver"), default=0.0)


def _role(cmd: str, is_root: bool) -> str:
    if is_root:
        return "driver"
    if "multiprocessing" in cmd or "spawn" in cmd or "forkserver" in cmd:
        return "dask worker"
    return "other"


def start_cluster(workers: int):
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")


def save(a, rows: list[dict]) -> None:
    """Write ``--out`` with the rows so far, each relative to the 512² default row."""
    base = next((r for r in rows if r["size_px"] == 512 and r["scheduler"] == "default"), None)
    for r in rows:
        if base:
            r["cost_vs_512"] = round(r["cpu_s_per_mpx_year"] / base["cpu_s_per_mpx_year"], 2)
            r["peak_rss_vs_512"] = round(r["peak_rss_mb_any_process"] / base["peak_rss_mb_any_process"], 2)
    res = {
        "cores": os.cpu_count(),
        "years": a.years,
        "tile_size": a.tile_size,
        "workers": a.workers,
        "world": "realistic (seed 42; inputs written by the tiled generator, the same for every size)",
        "rows": rows,
        "targets": {"cost_vs_512": 1.2, "peak_rss_vs_512": 1.5},
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")


def _shape(size: str) -> list[int]:
    return list(FULL_SHAPE) if size == "full" else [int(size), int(size)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="512,1024,2048", help="window sides, and/or 'full' (the study grid)")
    ap.add_argument("--years", default="2000-2004")
    ap.add_argument("--tile-size", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--schedulers", default="default,cluster")
    ap.add_argument("--work", default=None, help="folder for inputs and runs (default: a temporary one)")
    ap.add_argument("--out", default="bench/bench_scale.json")
    a = ap.parse_args()
    y0, y1 = (int(v) for v in a.years.split("-"))
    years = list(range(y0, y1 + 1))
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench_scale_"))
    rows = []
    for size in a.sizes.split(","):
        inputs, gen = write_inputs(size, a.years, work, a.tile_size, a.workers)
        if gen:
            print(
                json.dumps({"size_px": size, "generator": {k: v for k, v in gen.items() if k != "processes"}}),
                file=sys.stderr,
            )
        scheds = ["default"] + (["cluster"] if "cluster" in a.schedulers and size == "512" else [])
        for sched in scheds:
            if sched == "cluster":
                with start_cluster(a.workers) as cluster:
                    # the cluster's processes (nannies, workers) are children of this bench, not of the run
                    mine = _children(os.getpid())
                    r = run_once(
                        inputs,
                        work / f"run_{size}_{sched}",
                        a.years,
                        a.tile_size,
                        a.workers,
                        cluster.scheduler_address,
                        mine,
                    )
            else:
                r = run_once(inputs, work / f"run_{size}_{sched}", a.years, a.tile_size, a.workers, None)
            mpx_years = n_pixels(size) / 1e6 * len(years)
            row = {"size_px": size if size == "full" else int(size), "shape": _shape(size), "scheduler": sched}
            row.update({"years": len(years), "load_1min": round(os.getloadavg()[0], 2), **r})
            row["cpu_s_per_mpx_year"] = round(r["cpu_s"] / mpx_years, 2)
            row["wall_s_per_mpx_year"] = round(r["wall_s"] / mpx_years, 2)
            if gen and sched == "default":
                row["generator"] = {**gen, "cpu_s_per_mpx_year": round(gen["cpu_s"] / mpx_years, 2)}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("processes", "generator")}), file=sys.stderr)
            save(a, rows)  # after every row: an interrupted bench keeps what it measured
    save(a, rows)
    print("| size | scheduler | wall s | CPU s | peak RSS MB (any process) | CPU s / Mpx-year | vs 512 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        label = "full" if r["size_px"] == "full" else f"{r['size_px']}²"
        print(
            f"| {label} | {r['scheduler']} | {r['wall_s']} | {r['cpu_s']} | {r['peak_rss_mb_any_process']} "
            f"| {r['cpu_s_per_mpx_year']} | {r.get('cost_vs_512', '')} |"
        )


if __name__ == "__main__":
    main()
