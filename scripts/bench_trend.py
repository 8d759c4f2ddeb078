#!/usr/bin/env python
"""Benchmark the per-pixel trend step (Theil-Sen + Mann-Kendall) on the full study grid.

Writes a synthetic ALT cube (default 25 years x 2050 x 3200 float32, ~656 MB) to a raw file on
disk chunk by chunk, then runs :func:`gee_alt.science.trend.trend_cube` on it through a reader callback
that reads only the rows of one chunk, and prints wall time and peak RSS
(``resource.getrusage``; Linux reports KiB). Writes the numbers to ``--out`` JSON.

The synthetic cube: ALT = 1.5 m + 0.01 m/yr * (year - first) + N(0, 0.05) noise, with 5 % of
values missing (NaN) and a no-data stripe of 10 rows. The benchmark also checks the recovered
median slope against the injected 0.01 m/yr.

    PYTHONPATH=. python scripts/bench_trend.py --out bench_trend.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gee_alt.science.trend import rows_per_chunk_for, trend_cube  # noqa: E402

SLOPE_M_PER_YR = 0.01


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_synthetic(path: Path, n_years: int, h: int, w: int, seed: int, rows: int = 64) -> None:
    """Write a (year, y, x) float32 cube to ``path`` in C order, one row chunk at a time."""
    with open(path, "wb") as f:
        f.truncate(n_years * h * w * 4)
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            rng = np.random.default_rng([seed, r0])
            t = np.arange(n_years, dtype=np.float32)[:, None, None]
            block = (1.5 + SLOPE_M_PER_YR * t + rng.normal(0, 0.05, (n_years, r1 - r0, w))).astype(np.float32)
            block[rng.random(block.shape) < 0.05] = np.nan
            if r0 <= h // 2 < r1:
                block[:, max(h // 2 - r0, 0) : min(h // 2 + 10 - r0, r1 - r0)] = np.nan
            for k in range(n_years):
                f.seek(((k * h) + r0) * w * 4)
                block[k].tofile(f)


def make_reader(path: Path, n_years: int, h: int, w: int):
    def read_rows(r0: int, r1: int) -> np.ndarray:
        out = np.empty((n_years, r1 - r0, w), np.float32)
        with open(path, "rb") as f:
            for k in range(n_years):
                f.seek(((k * h) + r0) * w * 4)
                out[k] = np.fromfile(f, np.float32, count=(r1 - r0) * w).reshape(r1 - r0, w)
        return out

    return read_rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=2050)
    ap.add_argument("--width", type=int, default=3200)
    ap.add_argument("--years", type=int, default=25)
    ap.add_argument("--mem-budget-mb", type=float, default=256.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="where to put the raw cube (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=Path("bench_trend.json"))
    a = ap.parse_args(argv)

    years = np.arange(2000, 2000 + a.years)
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        cube_path = Path(tmp) / "alt_cube.f32"
        t0 = time.perf_counter()
        write_synthetic(cube_path, a.years, a.height, a.width, a.seed)
        t_gen = time.perf_counter() - t0
        rss_after_gen = peak_rss_mb()
        rows = rows_per_chunk_for(a.years, a.width, a.mem_budget_mb)
        t0 = time.perf_counter()
        res = trend_cube(
            make_reader(cube_path, a.years, a.height, a.width),
            years,
            shape_yx=(a.height, a.width),
            mem_budget_mb=a.mem_budget_mb,
        )
        t_trend = time.perf_counter() - t0
        cube_bytes = os.path.getsize(cube_path)
    slope = res["slope"]
    med = float(np.nanmedian(slope))
    report = {
        "grid_height": a.height,
        "grid_width": a.width,
        "n_years": a.years,
        "cube_mb": cube_bytes / 1e6,
        "rows_per_chunk": rows,
        "mem_budget_mb": a.mem_budget_mb,
        "generate_wall_s": round(t_gen, 2),
        "trend_wall_s": round(t_trend, 2),
        "pixels_per_s": round(a.height * a.width / t_trend),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_after_generation_mb": round(rss_after_gen, 1),
        "median_slope_m_per_yr": med,
        "injected_slope_m_per_yr": SLOPE_M_PER_YR,
        "nan_pixels": int(np.isnan(slope).sum()),
        "frac_p_lt_0.05": float(np.nanmean(res["p_value"] < 0.05)),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"trend {a.years} x {a.height} x {a.width}: wall {t_trend:.1f} s "
        f"(generation {t_gen:.1f} s), peak RSS {report['peak_rss_mb']:.0f} MB, "
        f"median slope {med:.5f} m/yr (injected {SLOPE_M_PER_YR})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
