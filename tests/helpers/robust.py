"""Shared helpers of the robustness suites: a tiny synthetic input layout and a finished run.

Both are made once per test session (cached here) and copied by tests that change them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
YEARS = (2010, 2011, 2012)
RUN_ARGS = ("--workers", "1", "--trees", "10", "--quiet")
_CACHE: dict[str, Path] = {}


def demo_inputs(tmp_path_factory) -> Path:
    """``INPUTS/`` of a 128 px, 3-year realistic synthetic world (the local layout: whole-year LST
    composites, a misclassified land-cover map, insitu.csv with measurement dates)."""
    if "inputs" not in _CACHE:
        from gee_alt.demo.worlds import make_world, write_world

        d = tmp_path_factory.mktemp("robust_inputs")
        scene = make_world("realistic", seed=42, years=list(YEARS), size_px=128)
        write_world(scene, d / "inputs", d / "truth", list(YEARS))
        _CACHE["inputs"] = d / "inputs"
    return _CACHE["inputs"]


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONWARNINGS"] = "ignore"
    env.pop("GEE_ALT_SERVICE_ACCOUNT_KEY", None)
    return env


def run_cmd(inputs: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gee_alt",
        "run",
        "--engine",
        "local",
        "--inputs",
        str(inputs),
        "--out",
        str(out),
        *RUN_ARGS,
    ]


def finished_run(tmp_path_factory) -> Path:
    """A completed local run on :func:`demo_inputs` (made by an uninterrupted subprocess)."""
    if "run" not in _CACHE:
        out = tmp_path_factory.mktemp("robust_run") / "run"
        subprocess.run(
            run_cmd(demo_inputs(tmp_path_factory), out),
            check=True,
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _CACHE["run"] = out
    return _CACHE["run"]
