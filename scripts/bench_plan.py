"""Benchmark ``gee-alt plan --json`` (2000-2024, default study, offline, no credentials) in a fresh
process: wall time against the 20 s budget (issue: Earth Engine engine plan).

    python scripts/bench_plan.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    walls = []
    for _ in range(a.repeats):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "HOME": home}
            for k in ("GEE_ALT_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "EE_PROJECT"):
                env.pop(k, None)
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "gee_alt", "plan", "--json"], env=env, check=True, capture_output=True
            )
            walls.append(time.perf_counter() - t)
    med = sorted(walls)[len(walls) // 2]
    print(
        f"plan --json: median wall {med:.1f} s over {a.repeats} runs (budget 20 s, ratio {med / 20.0:.2f}); "
        f"load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
