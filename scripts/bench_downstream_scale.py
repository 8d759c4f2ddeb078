#!/usr/bin/env python
"""Scaling of the streamed shared downstream (issue 12 item 3): wall and peak RSS vs the extent.

For each size (default 512², 2048² and the full study grid 3215 x 2065 px), x 25 years, a
**synthetic** run input is generated once (untimed, own process): ``ddt/ddt_YYYY.tif`` with the
bands DDT, DDT sd, n_obs and DDF (so the frost number and permafrost mask exist), ``dem.tif``,
``ndvi_mean.tif``, ``landcover.tif`` and an in-situ CSV of 60 sites (bench_downstream's generator).
Then, in a fresh process, the real shared downstream runs on it exactly as the pipeline calls it
(:func:`gee_alt.pipeline.finish_downstream` on :func:`gee_alt.runs.open_ddt_cube`'s lazy cube):
calibration (site windows), AOA, ALT / ALT sd / permafrost (row chunks, windowed COG writes),
trend, extent series and the NetCDF. Printed: wall, peak RSS (``VmHWM`` of that process) and the
ratios to 512²; ``--out`` keeps the JSON.

    PYTHONPATH=. python scripts/bench_downstream_scale.py                       # 512, 2048, full
    PYTHONPATH=. python scripts/bench_downstream_scale.py --sizes 256 --years 6  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
FULL = "full"


def status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def grid_for(size: str):
    from bench_downstream import bench_grid

    return bench_grid(None, None) if size == FULL else bench_grid(int(size), int(size))


def generate(folder: Path, size: str, n_years: int, seed: int) -> None:
    """Synthetic inputs (untimed): DDT COGs with DDF, DEM, NDVI, land cover, in-situ CSV."""
    from bench_downstream import base_fields, ddt_year
    from bench_downstream import generate as gen_sites

    from gee_alt import runs
    from gee_alt.export.cog import write_cog
    from gee_alt.insitu.table import make_insitu_table, write_insitu

    grid = grid_for(size)
    years = list(range(2000, 2000 + n_years))
    recs = gen_sites(folder, grid, years, seed)["records"]  # writes 3-band DDT COGs; rewritten below with DDF
    base = base_fields(grid, seed)
    ddf_base = base_fields(grid, seed + 1) * 2.2  # frost number around 0.5-0.65: permafrost and not
    for y in years:
        ddt, sd = ddt_year(base, y, seed, years[0])
        nobs = np.where(np.isfinite(ddt), 27.0, 0.0).astype("float32")
        runs.write_ddt_year(
            folder,
            y,
            ddt,
            grid,
            ddt_sd_degc_days=sd,
            n_obs=nobs,
            ddf_degc_days=np.clip(ddf_base * (1 - 0.004 * (y - years[0])), 0, None).astype("float32"),
            engine="local",
            method="synthetic (bench)",
            season="",
            synthetic=True,
        )
        del ddt, sd, nobs
    dem = (4200.0 + 0.1 * (base_fields(grid, seed + 2) - 900.0)).astype("float32")
    write_cog(runs.dem_path(folder), dem, grid)
    ndvi = np.clip(0.38 + 0.0002 * (base_fields(grid, seed + 3) - 900.0), 0, 0.9).astype("float32")
    write_cog(runs.ndvi_mean_path(folder), ndvi, grid)
    lc = np.where(ndvi > 0.4, 2.0, 1.0).astype("float32")
    write_cog(runs.landcover_path(folder), lc, grid)
    write_insitu(folder / "insitu.csv", make_insitu_table(recs))


def timed(folder: Path, out: Path, n_years: int, netcdf: bool) -> dict:
    """The shared downstream as the pipeline runs it, on the lazy cube of ``folder``."""
    from gee_alt import downstream, pipeline, runs
    from gee_alt.cube import grid_of, validate_ddt_cube
    from gee_alt.engines import EngineOutput
    from gee_alt.insitu.table import read_insitu

    years = list(range(2000, 2000 + n_years))
    stages = {}
    real_nc = downstream.write_netcdf

    def nc(*a, **k):
        t = time.perf_counter()
        r = real_nc(*a, **k) if netcdf else None
        stages["netcdf_s"] = time.perf_counter() - t
        return r

    downstream.write_netcdf = nc
    t0 = time.perf_counter()
    cube = validate_ddt_cube(runs.open_ddt_cube(folder, years, engine="local", synthetic=True))
    grid = grid_of(cube)
    fields = pipeline.run_fields(folder, grid)
    table = read_insitu(folder / "insitu.csv", bbox=downstream.site_bbox_lonlat(grid))
    out.mkdir(parents=True)
    res = pipeline.finish_downstream(out, EngineOutput(cube, fields), table, seed=0)
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        **stages,
        "peak_rss_mb": status_mb("VmHWM"),
        "E": res.calibration.summary["E"],
        "n_products": sum(1 for p in out.rglob("*") if p.is_file()),
        "load_1min": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=f"512,2048,{FULL}")
    ap.add_argument("--years", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/bench_downstream_scale")
    ap.add_argument("--no-netcdf", action="store_true", help="skip cube.nc (it scales with the extent)")
    ap.add_argument("--out", default="bench/bench_downstream_scale.json")
    ap.add_argument("--phase", choices=("generate", "timed"), help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.work)
    if args.phase == "generate":
        generate(work / f"in-{args.size}-{args.years}", args.size, args.years, args.seed)
        return
    if args.phase == "timed":
        out = work / f"out-{args.size}-{args.years}"
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        print(json.dumps(timed(work / f"in-{args.size}-{args.years}", out, args.years, not args.no_netcdf)))
        return
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    rows = []
    for size in args.sizes.split(","):
        folder = work / f"in-{size}-{args.years}"
        if not (folder / "insitu.csv").exists():
            t = time.perf_counter()
            cmd = [sys.executable, __file__, "--phase", "generate", "--size", size, "--years", str(args.years)]
            subprocess.run([*cmd, "--work", str(work), "--seed", str(args.seed)], check=True, env=env)
            print(f"{size}: inputs generated in {time.perf_counter() - t:.1f} s", flush=True)
        cmd = [sys.executable, __file__, "--phase", "timed", "--size", size, "--years", str(args.years)]
        cmd += ["--work", str(work)] + (["--no-netcdf"] if args.no_netcdf else [])
        r = json.loads(subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout.splitlines()[-1])
        g = grid_for(size)
        w, h = g["shape_2d"]
        r.update(size=size, width=w, height=h, mpx_years=w * h * args.years / 1e6)
        r["s_per_mpx_year"] = r["wall_s"] / r["mpx_years"]
        rows.append(r)
        print(
            f"{size:>5} ({w} x {h} x {args.years} y): wall {r['wall_s']:.1f} s (NetCDF {r.get('netcdf_s', 0):.1f} s), "
            f"peak RSS {r['peak_rss_mb']:.0f} MB, {r['s_per_mpx_year']:.3f} s/Mpx-year, load {r['load_1min']:.1f}",
            flush=True,
        )
    base = rows[0]
    for r in rows:
        r["rss_vs_first"] = r["peak_rss_mb"] / base["peak_rss_mb"]
        r["cost_vs_first"] = r["s_per_mpx_year"] / base["s_per_mpx_year"]
        print(
            f"{r['size']:>5}: RSS x{r['rss_vs_first']:.2f}, "
            f"cost per Mpx-year x{r['cost_vs_first']:.2f} vs {base['size']}"
        )
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "netcdf": not args.no_netcdf}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
