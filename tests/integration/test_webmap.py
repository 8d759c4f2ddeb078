"""The offline HTML map: self-contained page, CLI, and a headless-Chromium screenshot check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gee_alt.errors import GeeAltError
from gee_alt.viz.webmap import BASEMAP_URL, write_html_map
from helpers.viz import layer_drawn, make_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# CI sets GEE_ALT_REQUIRE_BROWSER=1 so a missing browser fails there instead of skipping.
REQUIRE_BROWSER = os.environ.get("GEE_ALT_REQUIRE_BROWSER", "") not in ("", "0")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("w") / "run")


def _config(page: str) -> dict:
    return json.loads(re.search(r"const CFG = (.*);\n", page).group(1))


def test_page_is_self_contained_without_basemap(run, tmp_path):
    page = write_html_map(run, tmp_path / "m.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert re.findall(r'src="(?!data:image/png;base64,)', page) == [] and "url(" not in page
    cfg = _config(page)
    assert cfg["basemap"] is None
    assert [(L["id"], L["visible"], L["units"]) for L in cfg["layers"]] == [
        ("alt", True, "m"),
        ("alt_sd", False, "m"),
        ("trend", False, "cm/yr"),
    ]
    assert cfg["layers"][0]["name"] == "ALT 2023"
    assert page.count('src="data:image/png;base64,') == 3
    assert "SYNTHETIC demo scene" in page
    lo, hi = cfg["layers"][0]["vmin"], cfg["layers"][0]["vmax"]
    assert 0.9 <= lo < hi <= 3.2
    t = cfg["layers"][2]
    assert t["vmin"] == -t["vmax"]  # diverging trend range is symmetric


def test_basemap_only_when_asked(run, tmp_path):
    page = write_html_map(run, tmp_path / "m.html", year=2020, basemap=True).read_text(encoding="utf-8")
    assert _config(page)["basemap"]["url"] == BASEMAP_URL
    assert _config(page)["layers"][0]["name"] == "ALT 2020"


def test_bad_year_and_layer_are_user_errors(run, tmp_path):
    with pytest.raises(GeeAltError, match="year 1999 not in"):
        write_html_map(run, tmp_path / "m.html", year=1999)
    with pytest.raises(GeeAltError, match="unknown map layer"):
        write_html_map(run, tmp_path / "m.html", layers=("alt", "lst"))


def test_cli_map(run, tmp_path):
    from gee_alt.cli import app

    out = tmp_path / "cli.html"
    res = CliRunner().invoke(app, ["map", str(run), "--out", str(out), "--year", "2021"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and _config(out.read_text(encoding="utf-8"))["layers"][0]["name"] == "ALT 2021"
    res = CliRunner().invoke(app, ["map", str(run), "--out", str(out), "--year", "1990"])
    assert isinstance(res.exception, GeeAltError)


# ---------------------------------------------------------------- headless Chromium


def _browser() -> str | None:
    return next((p for b in BROWSERS if (p := shutil.which(b))), None)


@pytest.fixture(scope="module")
def browser():
    exe = _browser()
    if exe is None:
        if REQUIRE_BROWSER:
            pytest.fail("GEE_ALT_REQUIRE_BROWSER is set but no chromium/chrome binary is on PATH")
        pytest.skip("no chromium/chrome binary on PATH (install the Debian package 'chromium' to run this check)")
    return exe


def screenshot(exe: str, html: Path, png: Path, size=(1000, 700)) -> bytes:
    """Render ``html`` in headless Chromium with no network and return the PNG screenshot."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--force-color-profile=srgb",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=3000",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={png}",
            html.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, timeout=60)
    assert png.is_file(), f"chromium wrote no screenshot (rc {proc.returncode}): {proc.stderr.decode()[-500:]}"
    return png.read_bytes()


def test_alt_layer_renders_in_chromium(browser, run, tmp_path):
    shot = screenshot(browser, write_html_map(run, tmp_path / "on.html"), tmp_path / "on.png")
    assert layer_drawn(shot, "viridis"), "the ALT layer (viridis) is not visible in the screenshot"


def test_screenshot_check_fails_without_the_alt_layer(browser, run, tmp_path):
    off = screenshot(browser, write_html_map(run, tmp_path / "off.html", visible=()), tmp_path / "off.png")
    assert not layer_drawn(off, "viridis")
    other = screenshot(browser, write_html_map(run, tmp_path / "sd.html", visible=("alt_sd",)), tmp_path / "sd.png")
    assert not layer_drawn(other, "viridis")  # another layer drawn: still not the ALT layer
    assert layer_drawn(other, "plasma")  # ... while the check does see the layer that is drawn
