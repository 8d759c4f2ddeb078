#!/usr/bin/env python
"""Benchmark the Earth Engine pull path (xee -> ``ee.data.computePixels``) through a **stub** server.

Runs :func:`gee_alt.engines.ee.pull.run_years` on a grid (default: the full study area,
``grid_from_bbox(DATONG_BBOX, 30)``) for a few years with ``ee.data.computePixels`` /
``computeValue`` replaced by the test suite's stub (``tests/helpers/ee.StubServer``, offline
``ee`` from ``ee.apitestcase``), and counts per year:

- pixel requests and metadata (``computeValue``) requests;
- bytes served (the structured float32 arrays the stub returns, i.e. what Earth Engine would
  send uncompressed, excluding xee's mask byte) against the minimum for the final layers
  (width x height x 3 layers x 4 bytes);
- requests against 1.1 x ceil(bytes / 48 MiB).

Numbers from a stub are **not** Earth Engine results: wall times measure the client side only
(xee, decoding, COG writing), never the server.

    PYTHONPATH=. python scripts/bench_pull.py                  # full grid, 3 years
    PYTHONPATH=. python scripts/bench_pull.py --bbox 99.0 38.0 99.06 38.04 --years 2 --out /tmp/p.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


class _MonkeyPatch:
    """Minimal stand-in for pytest's monkeypatch (setattr + undo)."""

    def __init__(self):
        self._undo = []

    def setattr(self, obj, name, value):
        self._undo.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    def undo(self):
        for obj, name, value in reversed(self._undo):
            setattr(obj, name, value)
        self._undo.clear()


class CountingStub:
    """Wraps the test suite's ``StubServer`` and counts bytes served per year."""

    def __init__(self, grid):
        from helpers.ee import StubServer, years_in_expression

        self.stub = StubServer(grid)
        self._years = years_in_expression
        self.bytes: dict[int, int] = {}

    def compute_pixels(self, params):
        out = self.stub.compute_pixels(params)
        year = next(iter(self._years(params["expression"])))
        with self.stub.lock:
            self.bytes[year] = self.bytes.get(year, 0) + int(out.nbytes)
        return out

    def install(self, mp):
        import ee

        mp.setattr(ee.data, "computePixels", self.compute_pixels)
        mp.setattr(ee.data, "computeValue", self.stub.compute_value)
        return self


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bbox", type=float, nargs=4, default=None, help="west south east north (default: study area)")
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--max-workers", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("bench/bench_pull.json"))
    a = ap.parse_args(argv)

    from ee import apitestcase

    from gee_alt.config import load_config
    from gee_alt.engines.ee import pull, thaw
    from gee_alt.grid import DATONG_BBOX, grid_from_bbox

    grid = grid_from_bbox(tuple(a.bbox) if a.bbox else DATONG_BBOX, 30.0)
    w, h = grid["shape_2d"]
    years = list(range(2001, 2001 + a.years))
    cfg = load_config()
    n_layers = len(pull.LAYERS)
    minimum = w * h * n_layers * 4
    case = apitestcase.ApiTestCase("setUp")
    case.setUp()
    mp = _MonkeyPatch()
    load0 = os.getloadavg()
    try:
        stub = CountingStub(grid).install(mp)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            pull.run_years(
                tmp, years, grid, lambda y: thaw.ddt_image(cfg, y, grid), max_workers=a.max_workers, initial_delay_s=0.0
            )
            wall = time.perf_counter() - t0
    finally:
        mp.undo()
        case.tearDown()
    limit = pull.REQUEST_BYTE_LIMIT
    rows = []
    for y in years:
        b = stub.bytes.get(y, 0)
        req = stub.stub.pixel_calls.get(y, 0)
        bound = 1.1 * math.ceil(b / limit)
        rows.append(
            {
                "year": y,
                "bytes": b,
                "min_bytes": minimum,
                "bytes_ratio": b / minimum,
                "pixel_requests": req,
                "request_bound": bound,
                "requests_ratio": req / math.ceil(b / limit),
            }
        )
    value_calls = stub.stub.value_calls
    worst_b = max(r["bytes_ratio"] for r in rows)
    worst_r = max(r["pixel_requests"] / r["request_bound"] for r in rows)
    report = {
        "benchmark": "pull",
        "stub": True,
        "note": "stub server: request/byte counts only, not Earth Engine timings",
        "grid_width": w,
        "grid_height": h,
        "n_layers": n_layers,
        "request_byte_limit": limit,
        "io_chunks": pull.io_chunks_for(grid),
        "years": rows,
        "metadata_requests_per_year": value_calls / len(years),
        "client_wall_s_per_year": wall / len(years),
        "load1": [load0[0], os.getloadavg()[0]],
        "cpu_count": os.cpu_count(),
        "targets": {
            "bytes_le_1.05_min": {"worst": worst_b, "met": worst_b <= 1.05},
            "pixel_requests_le_1.1_ceil": {"worst_fraction_of_bound": worst_r, "met": worst_r <= 1.0},
        },
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"pull (stub server) {w} x {h} px, {n_layers} layers, io_chunks {report['io_chunks']}; load {load0[0]:.2f}")
    print(f"{'year':>5} {'MB':>8} {'min MB':>8} {'ratio':>6} {'requests':>8} {'bound':>6}")
    for r in rows:
        print(
            f"{r['year']:5d} {r['bytes'] / 1e6:8.1f} {r['min_bytes'] / 1e6:8.1f} {r['bytes_ratio']:6.3f} "
            f"{r['pixel_requests']:8d} {r['request_bound']:6.1f}"
        )
    print(
        f"+ {report['metadata_requests_per_year']:.0f} metadata request(s) per year; client-side wall "
        f"{report['client_wall_s_per_year']:.1f} s/year (stub, not EE)"
    )
    for k, v in report["targets"].items():
        print(f"target {k}: {'MET' if v['met'] else 'MISSED'} ({v})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
