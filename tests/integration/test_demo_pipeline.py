"""The demo end to end (small window, few years) through the CLI: products, tags, scores, determinism."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.io

from gee_alt.cli import main
from gee_alt.demo.ideal import IdealScene, IdealSpec, year_truth

YEARS = "2010-2013"


def _run(out: Path, *extra):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--out", str(out), "--years", YEARS, "--size", "320", "--world", "ideal", "--quiet", *extra])
    assert e.value.code == 0


DECODES: dict[str, int] = {}
WHOLE: dict[str, int] = {}  # reads without a window


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """The demo run, with every pixel read (``DatasetReader.read``) of it counted per file name."""
    out = tmp_path_factory.mktemp("demo") / "run"
    real = rasterio.io.DatasetReader.read

    def counted(self, *args, **kwargs):
        name = Path(self.name)
        key = name.relative_to(out).as_posix() if name.is_relative_to(out) else str(name)
        DECODES[key] = DECODES.get(key, 0) + 1
        if kwargs.get("window") is None:
            WHOLE[key] = WHOLE.get(key, 0) + 1
        return real(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rasterio.io.DatasetReader, "read", counted)
        _run(out, "--workers", "1")
    return out


def test_products_are_read_back_only_by_windows(run_dir):
    """Issue 12: the streamed downstream reads the DDT COGs by site windows and row chunks and the
    trend reads row windows of the ALT COGs; no product is ever decoded whole in one read."""
    products = {k for k in DECODES if k.split("/")[0] in ("ddt", "alt", "trend")}
    assert any(k.startswith("ddt/") for k in products) and any(k.startswith("alt/alt_") for k in products)
    assert not {k: v for k, v in WHOLE.items() if k in products}
    assert any(k.startswith("inputs/") for k in DECODES)  # the counter did see the run's reads


def test_products_exist_and_are_tagged_cogs(run_dir):
    for y in range(2010, 2014):
        for rel in (f"ddt/ddt_{y}.tif", f"alt/alt_{y}.tif", f"alt/alt_sd_{y}.tif", f"alt/alt_{y}.stac.json"):
            assert (run_dir / rel).exists(), rel
        with rasterio.open(run_dir / f"alt/alt_{y}.tif") as src:
            t = src.tags()
            assert src.dtypes == ("float32",) and np.isnan(src.nodata) and src.crs.to_epsg() == 32647
            assert t["units"] == "m" and t["year"] == str(y) and t["synthetic"] == "1" and "gee_alt_version" in t
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            alt = src.read(1)
            assert 0.8 < np.nanmin(alt) and np.nanmax(alt) < 4.5
    for rel in ("calibration.json", "manifest.json", "validation.json", "cube.nc", "trend/alt_trend_cm_per_yr.tif"):
        assert (run_dir / rel).exists(), rel
    man = json.loads((run_dir / "manifest.json").read_text())
    paths = {f["path"] for f in man["files"]}
    assert "alt/alt_2012.tif" in paths and all(len(f["sha256"]) == 64 for f in man["files"])
    assert not list(run_dir.rglob(".tmp-*"))


def test_calibration_json_has_the_promised_keys(run_dir):
    cal = json.loads((run_dir / "calibration.json").read_text())
    for k in ("E", "E_ci95", "n_used", "n_dropped", "loo", "block_cv", "dropped", "pairs"):
        assert k in cal, k
    assert cal["E_ci95"][0] < cal["E"] < cal["E_ci95"][1]
    assert set(cal["loo"]) >= {"rmse_m", "bias_m", "mae_m", "r2"}
    assert cal["n_dropped"] == len(cal["dropped"]) and all(d["reason"] for d in cal["dropped"])


def test_every_stage_beats_its_baseline_against_truth(run_dir):
    t = json.loads((run_dir / "validation.json").read_text())["truth"]
    assert t["ndvi"]["rmse_ratio"] < 0.5
    assert t["lst_degc"]["rmse_ratio"] < 0.7  # the 512 px demo reaches <= 0.6; this window is smaller
    assert abs(t["E"]["rel_error_vs_sites"]) < 0.05
    assert t["alt_m"]["rmse"] < 0.25


def test_ddt_in_the_run_matches_the_independent_truth(run_dir):
    """Recompute the truth from the scene definition (not from files the run wrote)."""
    scene = IdealScene(IdealSpec(seed=42, years=(2011,), size_px=320))
    truth = year_truth(scene, 2011).ddt_degc_days
    with rasterio.open(run_dir / "ddt/ddt_2011.tif") as src:
        ddt = src.read(1)
    rel = np.sqrt(np.nanmean((ddt - truth) ** 2)) / np.nanmean(truth)
    assert rel < 0.12
    assert abs(np.nanmean(ddt - truth)) < 0.02 * np.nanmean(truth)


def test_same_seed_gives_byte_identical_alt(run_dir, tmp_path):
    out2 = tmp_path / "again"
    _run(out2)
    for y in range(2010, 2014):
        assert (run_dir / f"alt/alt_{y}.tif").read_bytes() == (out2 / f"alt/alt_{y}.tif").read_bytes()
        assert (run_dir / f"ddt/ddt_{y}.tif").read_bytes() == (out2 / f"ddt/ddt_{y}.tif").read_bytes()


def test_stac_items_describe_the_alt_cogs(run_dir):
    """Each year's Item (built from the grid in memory) matches the COGs it points at; the COGs are valid."""
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from rio_cogeo.cogeo import cog_validate

    for y in range(2010, 2014):
        item = pystac.Item.from_dict(json.loads((run_dir / f"alt/alt_{y}.stac.json").read_text()))
        assert {k: a.href for k, a in item.assets.items()} == {"alt_m": f"alt_{y}.tif", "alt_sd_m": f"alt_sd_{y}.tif"}
        proj = ProjectionExtension.ext(item)
        for key in ("alt_m", "alt_sd_m"):
            cog = run_dir / "alt" / item.assets[key].href
            is_valid, errors, _ = cog_validate(cog)
            assert is_valid and errors == [], (cog, errors)
            with rasterio.open(cog) as src:
                assert proj.epsg == src.crs.to_epsg() and proj.shape == [src.height, src.width]
                assert proj.transform[:6] == list(src.transform)[:6]
