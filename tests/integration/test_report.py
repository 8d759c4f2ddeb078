"""The run report: files, content, determinism, synthetic label, README figure, CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gee_alt.errors import GeeAltError
from gee_alt.viz.figures import SYNTHETIC_LABEL
from gee_alt.viz.report import write_readme_figure, write_report, write_report_files
from gee_alt.viz.runview import alt_series
from helpers.viz import YEARS, E, alt_field, layer_drawn, make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("r") / "run")


@pytest.fixture(scope="module")
def written(run):
    return write_report_files(run)


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def test_report_files_exist_with_sane_pngs(run, written):
    assert written["markdown"] == run / "report" / "report.md" and written["markdown"].is_file()
    assert written["html"].is_file()
    names = sorted(p.name for p in written["figures"])
    assert names == sorted(
        [
            "alt_map_2023.png",
            "alt_sd_map_2023.png",
            "alt_series.png",
            "validation_scatter.png",
            "trend_map.png",
            "ddt_map_2023.png",
        ]
    )
    for p in written["figures"]:
        w, h = _png_size(p)
        assert 300 <= w <= 2000 and 300 <= h <= 2000, (p.name, w, h)
        assert 5_000 < p.stat().st_size < 2_000_000


def test_map_figure_shows_the_alt_palette(written):
    png = next(p for p in written["figures"] if p.name == "alt_map_2023.png")
    assert layer_drawn(png.read_bytes(), "viridis", min_fraction=0.2)
    assert not layer_drawn(png.read_bytes(), "YlOrRd", min_fraction=0.2)


def test_markdown_lists_calibration_validation_and_label(written):
    md = written["markdown"].read_text(encoding="utf-8")
    assert f"| E | {E:g} |" in md
    assert "0.041 – 0.049" in md  # E 95 % CI
    assert "| pairs used | 18 |" in md and "| pairs dropped | 2 |" in md
    assert "| heterogeneous site | 1 |" in md  # drop reasons
    assert "| leave-one-site-out | 0.31 | -0.05 | 0.24 | 0.71 | 18 |" in md
    assert "| in-situ sites |" in md and "| 12 |" in md  # metrics of the 12 validation pairs
    assert SYNTHETIC_LABEL in md
    assert md.index(SYNTHETIC_LABEL) < md.index("## Stefan calibration")  # prominent: before the results
    for p in written["figures"]:
        assert f"]({p.name})" in md


def test_html_is_self_contained(written):
    page = written["html"].read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(written["figures"])
    assert "http://" not in page and "https://" not in page
    assert 'class="banner"' in page and SYNTHETIC_LABEL in page
    # the calibration table's E row carries the fixture's E (0.045) and its CI, cell by cell
    assert f"<tr><td>E</td><td>{E:g}</td>" in page
    assert "<td>0.041 – 0.049</td>" in page


def test_report_is_deterministic(run, written):
    before = {p: p.read_bytes() for p in [written["markdown"], written["html"], *written["figures"]]}
    again = write_report_files(run)
    assert set(again["figures"]) == set(written["figures"])
    for p, data in before.items():
        assert p.read_bytes() == data, f"{p.name} differs between two runs"


def test_synthetic_label_follows_tags_and_override(tmp_path):
    real = make_run(tmp_path / "real", synthetic=False)
    md = write_report(real).read_text(encoding="utf-8")
    assert SYNTHETIC_LABEL not in md
    md = write_report(real, synthetic=True).read_text(encoding="utf-8")
    assert SYNTHETIC_LABEL in md


def test_extra_tables_and_missing_products(tmp_path):
    r = make_run(tmp_path / "r", with_trend=False, with_validation=False)
    extra = {
        "truth comparison": {
            "DDT vs truth": {"rmse": 41.5, "bias": -3.25},
            "ALT vs truth": {"rmse_m": 0.125, "r2": 0.9},
        }
    }
    res = write_report_files(r, extra=extra)
    md = res["markdown"].read_text(encoding="utf-8")
    assert "### truth comparison" in md
    assert "| stage | rmse | bias | rmse_m | r2 |" in md
    assert "| DDT vs truth | 41.5 | -3.25 | – | – |" in md
    assert "No validation.json in this run." in md
    names = {p.name for p in res["figures"]}
    assert "trend_map.png" not in names and "validation_scatter.png" not in names
    assert "alt_map_2023.png" in names


def test_alt_series_band_brackets_the_mean(run):
    s = alt_series(run)
    assert s["years"] == YEARS
    for y, m in zip(YEARS, s["mean"], strict=True):
        a = alt_field(y).astype(float)
        a[:3, :3] = np.nan  # the fixture's nodata corner
        assert m == pytest.approx(np.nanmean(a), rel=1e-6)
    assert all(lo < m < hi for lo, m, hi in zip(s["ci_lo"], s["mean"], s["ci_hi"], strict=True))
    assert s["mean"][-1] > s["mean"][0]


def test_readme_figure_size_and_determinism(run, tmp_path):
    a = write_readme_figure(run, tmp_path / "a.png").read_bytes()
    b = write_readme_figure(run, tmp_path / "b.png").read_bytes()
    assert a == b
    assert Image.open(io.BytesIO(a)).size == (1200, 500)
    assert layer_drawn(a, "viridis", min_fraction=0.1)


def test_report_errors_are_one_line(tmp_path):
    with pytest.raises(GeeAltError, match="run directory not found"):
        write_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GeeAltError, match="no alt/alt_YYYY.tif"):
        write_report(tmp_path / "empty")


def test_cli_report_json(run):
    from gee_alt.cli import app

    res = CliRunner().invoke(app, ["report", str(run), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["markdown"].endswith("report.md") and len(out["figures"]) == 6
    assert all(Path(p).is_file() for p in [out["markdown"], out["html"], *out["figures"]])
