"""Peak memory of the demo chain, stage by stage and process by process (issue 12).

Runs ``gee-alt demo`` (realistic world) in a fresh process that logs, for every stage (generator,
engine, each downstream step, each scoring step, report), the peak RSS reached during the stage
(``VmHWM``, reset between stages through ``/proc/self/clear_refs``; nested stages fold into their
parents), and polls the peak RSS of every process of the tree (driver, Dask workers, generator
workers; :func:`bench_scale.measure`). Linux only.

    python scripts/bench_demo_memory.py --size 1024 --years 2015-2016 [--out bench/bench_demo_memory.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

_STACK: list[list] = []  # open stages: [name, peak kB]
_LOG: list[dict] = []


def _status() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in f if ln.startswith(("VmHWM", "VmRSS")))}


def _fold() -> dict[str, int]:
    """Fold the peak since the last reset into every open stage, then reset the peak."""
    s = _status()
    for frame in _STACK:
        frame[1] = max(frame[1], s["VmHWM"])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return s


def _staged(fn, label: str, method: bool = False):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        s = _fold()
        frame = [label, s["VmRSS"]]
        _STACK.append(frame)
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _fold()
            _STACK.pop()
            row = {"stage": label, "depth": len(_STACK), "rss_in_mb": round(s["VmRSS"] / 1024)}
            row.update({"peak_mb": round(frame[1] / 1024), "wall_s": round(time.perf_counter() - t, 1)})
            _LOG.append(row)
            print("STAGE", json.dumps(row), file=sys.stderr, flush=True)

    return wrapper


def _child(out: str, size: str, years: str, seed: int, log: str) -> None:
    """In the measured process: wrap the stages, run the demo, write the stage log."""
    import gee_alt.applicability_run as ar
    import gee_alt.demo.scoring as sc
    import gee_alt.demo.worlds as worlds
    import gee_alt.engines.local.runner as rn
    import gee_alt.viz.report as rep
    from gee_alt import downstream, pipeline
    from gee_alt.cli._common import parse_years
    from gee_alt.memory import bound_gdal_cache_of_processes

    bound_gdal_cache_of_processes()  # as ``gee-alt demo`` does (gee_alt.cli.main)

    for mod, names in (
        (worlds, ("make_world", "write_world")),
        (downstream, ("calibrate", "permafrost_criterion", "mapped_years", "stream_alt")),
        (downstream, ("write_trend", "write_netcdf")),
        (ar, ("prepare",)),
        (rep, ("write_report",)),
        (rn, ("_products", "_ndvi_mean")),
    ):
        for n in names:
            setattr(mod, n, _staged(getattr(mod, n), f"{mod.__name__.rsplit('.', 1)[-1]}.{n}"))
    for cls, names, prefix in (
        (rn.LocalEngine, ("produce",), "engine."),
        (ar.Applicability, ("finish",), "applicability."),
        (
            sc.DemoScorer,
            ("score_year", "finish", "_truth_scores", "_trend_vs_truth", "_mine_effect", "_applicability"),
            "scorer.",
        ),
    ):
        for n in names:
            setattr(cls, n, _staged(getattr(cls, n), prefix + n))
    _fold()
    frame = ["total", 0]
    _STACK.append(frame)
    pipeline.run_demo(
        out, years=parse_years(years), seed=seed, size_px=size if size == "full" else int(size), overwrite=True
    )
    _fold()
    _LOG.append({"stage": "total", "depth": 0, "peak_mb": round(frame[1] / 1024)})
    Path(log).write_text(json.dumps(_LOG, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1024", help="window side in px, or 'full'")
    ap.add_argument("--years", default="2015-2016")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", default=None, help="folder for the run (default: a temporary one)")
    ap.add_argument("--out", default="bench/bench_demo_memory.json")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        out, log, size, years = a.child
        _child(out, size, years, a.seed, log)
        return
    from bench_scale import measure

    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench_demo_memory_"))
    log = work / "stages.json"
    cmd = [sys.executable, __file__, "--seed", str(a.seed), "--child", str(work / "run"), str(log), a.size, a.years]
    res = measure(cmd)
    res.update({"size": a.size, "years": a.years, "seed": a.seed, "stages": json.loads(log.read_text())})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    for row in res["stages"]:
        print(f"{'  ' * row['depth']}{row['stage']:<32} peak {row['peak_mb']:>6} MB")
    print(f"peak RSS: driver {res['peak_rss_mb_driver']} MB, any process {res['peak_rss_mb_any_process']} MB")


if __name__ == "__main__":
    main()
