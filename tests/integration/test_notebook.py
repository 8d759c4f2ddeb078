"""notebooks/explore_run.ipynb: committed without outputs; executes offline against a run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.viz import make_run

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "explore_run.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _outputs(nb, kind: str | None = None):
    for cell in nb.cells:
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                if kind is None or out.get("output_type") == kind:
                    yield out


def test_committed_notebook_has_no_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "notebook has no code cells"
    assert all(c.outputs == [] and c.execution_count is None for c in code), "strip the outputs before committing"
    assert "widgets" not in nb.metadata


def _ee_credentials_present() -> bool:
    return (
        bool(os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))
        or (Path.home() / ".config" / "earthengine" / "credentials").exists()
    )


def test_notebook_executes_offline(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("geemap")
    run = make_run(tmp_path / "run")
    # the kernel inherits os.environ: point it at this worktree's package and the fixture run
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("GEE_ALT_RUN_DIR", str(run))
    monkeypatch.delenv("GEE_ALT_YEAR", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    display = [o for o in _outputs(nb) if o.get("output_type") in ("display_data", "execute_result")]
    widgets = [o for o in display if WIDGET_MIME in o.get("data", {})]
    images = [o for o in display if "image/png" in o.get("data", {})]
    assert widgets, "no map widget output"
    assert len(images) >= 2, f"expected the series and scatter figures, got {len(images)} image(s)"
    errors = list(_outputs(nb, "error"))
    assert not errors, errors
    text = "".join(o.get("text", "") for o in _outputs(nb, "stream"))
    assert f"run {run}, map year 2023" in text
    if not _ee_credentials_present():
        assert "no Earth Engine credentials: showing the local demo run" in text
    # the map widget's state was saved: the ALT overlay is part of it
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    names = [m.get("state", {}).get("name") for m in state.values()]
    assert "ALT 2023 (m)" in names
