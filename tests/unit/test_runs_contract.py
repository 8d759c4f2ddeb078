"""The run-directory contract: every product file name is written down once, in ``gee_alt/runs.py``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import gee_alt
from gee_alt import runs
from gee_alt.errors import GeeAltError

PACKAGE = Path(gee_alt.__file__).parent
NAMES = [
    runs.MANIFEST,
    runs.CALIBRATION,
    runs.VALIDATION,
    runs.INSITU_USED,
    runs.CUBE_NC,
    runs.DEM,
    runs.NDVI_MEAN,
    runs.LANDCOVER,
    runs.DISTURBANCE_START,
    runs.PERMAFROST_MAP_TIF,
    runs.INSITU_CSV,
    runs.TREND_SLOPE,
    runs.TREND_P,
    runs.TREND_JSON,
    runs.REPORT_MD,
    runs.REPORT_HTML,
    runs.PROGRESS,
    runs.AOA_TIF,
    runs.APPLICABILITY_JSON,
    runs.DISTURBANCE_JSON,
    "manifest_ee.json",
]


def code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings (f-string parts included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docs.add(id(body[0].value))
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_each_run_file_name_is_a_literal_in_runs_py_only():
    found: dict[str, set[str]] = {name: set() for name in NAMES}
    for path in PACKAGE.rglob("*.py"):
        for _, text in code_strings(path):
            for name in NAMES:
                if re.search(rf"(?<![\w.]){re.escape(name)}\b", text):
                    found[name].add(path.relative_to(PACKAGE).as_posix())
    assert found.pop("manifest_ee.json") == set()  # the EE engine has no resume format of its own
    assert {name: mods for name, mods in found.items() if mods != {"runs.py"}} == {}


def test_every_top_level_file_a_run_writes_is_its_own_on_overwrite(tmp_path):
    """A finished run holding the optional inputs' copies (disturbance start, user permafrost map)
    is a gee-alt run: ``--overwrite`` removes it; a stranger's file still stops it."""
    out = tmp_path / "run"
    out.mkdir()
    for name in (runs.MANIFEST, runs.DISTURBANCE_START, runs.PERMAFROST_MAP_TIF, runs.CALIBRATION):
        (out / name).write_text("x")
    got, resume = runs.prepare_run_dir(out, overwrite=True)
    assert got == out and not resume and not any(out.iterdir())
    (out / runs.MANIFEST).write_text("x")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(GeeAltError, match="notes.txt"):
        runs.prepare_run_dir(out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_paths_are_built_from_the_names(tmp_path):
    assert runs.ddt_path(tmp_path, 2003) == tmp_path / "ddt" / "ddt_2003.tif"
    assert runs.alt_sd_path(tmp_path, 2003) == tmp_path / "alt" / "alt_sd_2003.tif"
    assert runs.alt_stac_path(tmp_path, 2003) == tmp_path / "alt" / "alt_2003.stac.json"
    assert runs.trend_slope_path(tmp_path) == tmp_path / "trend" / "alt_trend_cm_per_yr.tif"
    assert runs.truth_path(tmp_path, "e") == tmp_path / "truth" / "e.tif"
    assert runs.truth_path(tmp_path, "alt", 2010) == tmp_path / "truth" / "alt_2010.tif"
    assert runs.year_of("ndvi_2010.npy") == 2010 and runs.year_of("site_fields.npy") is None


def test_progress_record_resumes_finished_steps_and_refuses_other_settings(tmp_path):
    import pytest

    from gee_alt.errors import GeeAltError

    rec = runs.Progress(tmp_path, {"engine": "local", "seed": 1})
    assert rec.start(resume=False) == {}
    f = tmp_path / "ddt" / "ddt_2001.tif"
    f.parent.mkdir()
    f.write_bytes(b"year 2001")
    g = rec.extra_file("site_fields.npy")
    g.write_bytes(b"fields")
    rec.mark_done(2001, [f])
    rec.mark_done("site_fields", [g], key="abc")
    again = runs.Progress(tmp_path, {"engine": "local", "seed": 1})
    done = again.start(resume=True)
    assert set(done) == {2001, "site_fields"} and again.record["attempts"] == 2
    assert again.is_done("site_fields", key="abc") and not again.is_done("site_fields", key="other")
    f.write_bytes(b"changed")  # a changed file: that year is redone
    assert set(runs.Progress(tmp_path, {"engine": "local", "seed": 1}).start(resume=True)) == {"site_fields"}
    with pytest.raises(GeeAltError, match="seed 1 vs 2 now"):
        runs.Progress(tmp_path, {"engine": "local", "seed": 2}).start(resume=True)
