"""Benchmark the end-to-end demo (synthetic scene, local engine, calibration, ALT, report).

Runs ``gee-alt demo`` in a fresh process (what a user runs after install), measures wall time and
peak RSS of the whole process tree, repeats, and writes JSON. Target (issue: foundation):
<= 60 s wall on 2 cores for 2000-2024 at the default 512 x 512 window.

    python scripts/bench_demo.py [--repeats 3] [--years 2000-2024] [--out bench/bench_demo.json]
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
import time
from pathlib import Path


def one_run(years: str, workdir: Path) -> dict:
    out = workdir / "run"
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gee_alt", "demo", "--out", str(out), "--years", years, "--quiet"], check=True
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    val = json.loads((out / "validation.json").read_text())["truth"]
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mb_any_process": after.ru_maxrss / 1024,
        "load_before": load,
        "lst_rmse_ratio": val["lst_degc"]["rmse_ratio"],
        "alt_rmse_m": val["alt_m"]["rmse"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--years", default="2000-2024")
    ap.add_argument("--out", default="bench/bench_demo.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        runs = [one_run(a.years, Path(d)) for _ in range(a.repeats)]
    walls = sorted(r["wall_s"] for r in runs)
    res = {
        "years": a.years,
        "cores": os.cpu_count(),
        "runs": runs,
        "median_wall_s": walls[len(walls) // 2],
        "target_wall_s": 60.0,
    }
    res["ratio_to_target"] = res["median_wall_s"] / res["target_wall_s"]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(
        f"demo {a.years}: median wall {res['median_wall_s']:.1f} s over {a.repeats} runs "
        f"(target 60 s, ratio {res['ratio_to_target']:.2f}); cpu {runs[0]['cpu_s']:.0f} s; "
        f"peak RSS {max(r['peak_rss_mb_any_process'] for r in runs):.0f} MB; load before {runs[0]['load_before']:.1f}"
    )


if __name__ == "__main__":
    main()
