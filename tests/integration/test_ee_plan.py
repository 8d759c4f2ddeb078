"""`plan` for the full default study: offline, fast, deterministic; emitted graphs checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gee_alt import runs
from gee_alt.cli import app
from gee_alt.config import load_config
from gee_alt.engines.ee import pull
from gee_alt.engines.ee.plan import build_plan

ROOT = Path(__file__).resolve().parents[2]
PLAN_SCRIPT = (
    "import sys\n"
    "from gee_alt.cli import app\n"
    "app(args=sys.argv[1:], standalone_mode=False)\n"
    "assert 'pytest' not in sys.modules and 'ee.apitestcase' not in sys.modules\n"
)


@pytest.fixture(scope="module")
def cli_plan(tmp_path_factory):
    """`plan --json --emit-graphs` in a fresh process with no credentials (HOME empty)."""
    tmp = tmp_path_factory.mktemp("plan")
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("GEE_ALT_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "EE_PROJECT", "GOOGLE_CLOUD_PROJECT")
    }
    env.update(
        HOME=str(tmp),
        PYTHONPATH=str(ROOT),
        NO_PROXY="*",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
    )
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", PLAN_SCRIPT, "plan", "--json", "--emit-graphs", str(tmp / "g")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=600,  # a safety net only: 25 graphs take ~32 s of CPU since issue 13 (shared machines)
    )
    seconds = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout), seconds, tmp / "g"


def test_plan_json_runs_offline(cli_plan):
    """The plan's content; its 20 s budget is measured by scripts/bench_plan.py (no timed tests:
    the machines are shared)."""
    plan, _, _ = cli_plan
    assert plan["years"] == list(range(2000, 2025)) and plan["years_to_pull"] == plan["years"]
    assert plan["grid"]["crs"] == "EPSG:32647" and plan["grid"]["shape_2d"] == list(load_config().grid()["shape_2d"])
    assert plan["requests"]["per_year"] == 3 and plan["requests"]["total"] == 75  # 4 layers a year
    assert plan["bytes"]["per_year"] == pull.bytes_per_year(load_config().grid())
    assert plan["rf"]["output_mode"] == "REGRESSION" and plan["rf"]["random_state"] == 42
    assert plan["rf"]["n_estimators"] == 40 and plan["ee_sampling"]["num_samples"] == 5000
    assert plan["rf"]["smile_random_forest"] == {
        "ndvi": {
            "numberOfTrees": 40,
            "variablesPerSplit": 3,
            "minLeafPopulation": 10,
            "bagFraction": 1.0,
            "maxNodes": None,
            "seed": 42,
        },
        "lst": {
            "numberOfTrees": 40,
            "variablesPerSplit": 4,
            "minLeafPopulation": 10,
            "bagFraction": 1.0,
            "maxNodes": None,
            "seed": 43,
        },
    }
    assert plan["per_year"]["2001"]["lst"]["collections"] == ["MODIS/061/MOD11A1"]
    assert plan["per_year"]["2002"]["lst"]["collections"] == ["MODIS/061/MOD11A1", "MODIS/061/MYD11A1"]
    assert plan["per_year"]["2003"]["lst"]["collections"] == ["MODIS/061/MOD11A1", "MODIS/061/MYD11A1"]
    assert [m["thermal"] for m in plan["per_year"]["2024"]["landsat"]] == ["ST_B10", "ST_B10"]
    assert plan["outputs"]["files"] == [f"ddt/ddt_{y}.tif" for y in range(2000, 2025)]
    # path, forests and bytes per year: the full Datong extent runs as batch tasks
    w, h = plan["grid"]["shape_2d"]
    assert plan["paths"] == {"interactive": [], "batch": plan["years"]}
    for v in plan["per_year"].values():
        assert v["path"] == "batch" and "Export.image.toAsset" in v["why"]
        assert v["forests"] == {"ndvi": 1, "lst_months": 9, "at_30m": 10, "holdout": 10}
        assert v["pixels_30m"] == w * h and v["forest_px"] == 10 * w * h
        assert v["bytes"] == plan["bytes"]["per_year"]
    assert plan["ee_sampling"]["max_pixels_1km"] > 2180


def test_graph_hashes_identical_across_runs(cli_plan):
    plan, _, _ = cli_plan
    again = build_plan(load_config())
    assert {y: v["graph_sha256"] for y, v in plan["per_year"].items()} == {
        y: v["graph_sha256"] for y, v in again["per_year"].items()
    }
    assert len({v["graph_sha256"] for v in plan["per_year"].values()}) == 25


def test_emitted_graphs_content(cli_plan):
    plan, _, gdir = cli_plan
    for year in plan["years"]:
        js = (gdir / f"graph_{year}.json").read_text()
        import hashlib

        assert hashlib.sha256(js.encode()).hexdigest() == plan["per_year"][str(year)]["graph_sha256"]
        assert "Classifier.smileRandomForest" in js and '"REGRESSION"' in js and "Reducer.ridgeRegression" in js
        assert "MODIS/061/MOD11A1" in js
        assert ("MODIS/061/MYD11A1" in js) == (year >= 2002)  # Aqua from 2002-07-04, through its offset
        thermal = {m["thermal"] for m in plan["per_year"][str(year)]["landsat"]}
        for band in ("ST_B6", "ST_B10"):
            assert (f'"{band}"' in js) == (band in thermal), (year, band)
        assert (year <= 2011) == ("LANDSAT/LT05/C02/T1_L2" in js)
        assert (year >= 2013) == ("LANDSAT/LC08/C02/T1_L2" in js)
        assert "sum_d2" in (gdir / f"validation_{year}.json").read_text()


def test_plan_reports_years_already_done(tmp_path, monkeypatch):
    (tmp_path / "s.toml").write_text("[study]\nyears = [2005, 2006]\n[aoi]\nbbox = [99.0, 38.0, 99.06, 38.04]\n")
    cfg = load_config(tmp_path / "s.toml")
    first = build_plan(cfg)
    run = tmp_path / "run"
    grid = cfg.grid()
    import numpy as np

    runs.write_ddt_year(
        run,
        2005,
        np.zeros((grid["shape_2d"][1], grid["shape_2d"][0]), "float32"),
        grid,
        engine="ee",
        method="test",
        season="",
        extra_tags={"graph_sha256": first["per_year"]["2005"]["graph_sha256"]},
    )
    res = CliRunner().invoke(app, ["plan", "--config", str(tmp_path / "s.toml"), "--out", str(run), "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["skipped_years"] == [2005] and plan["years_to_pull"] == [2006]
    assert plan["requests"]["total"] == plan["requests"]["per_year"] == 1
    human = CliRunner().invoke(app, ["plan", "--config", str(tmp_path / "s.toml"), "--out", str(run)])
    assert "1 to pull, 1 already done" in human.stdout and "(done)" in human.stdout
