"""Smoke tests of the benchmark scripts at tiny sizes: they run and write sane JSON (no timing asserts)."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_downscale_smoke(tmp_path):
    mod = _load("bench_downscale")
    out = tmp_path / "d.json"
    assert (
        mod.main(
            [
                "--sizes",
                "256",
                "--seeds",
                "0",
                "--repeats",
                "1",
                "--methods",
                "bilinear",
                "sharpener",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rep = json.loads(out.read_text())
    assert rep["synthetic"] is True and rep["machine"]["cpu_count"] >= 1
    by = {c["method"]: c for c in rep["cases"]}
    assert set(by) == {"bilinear", "sharpener"}
    for c in by.values():
        for k in ("rmse", "bias", "r2", "wall_s", "peak_rss_mb", "rss_delta_mb", "load1", "size", "seed"):
            assert k in c
        assert 0 < c["rmse"] < 5 and c["wall_s"] > 0 and c["peak_rss_mb"] > 0
    assert by["sharpener"]["rmse"] < by["bilinear"]["rmse"]
    assert "rmse_le_0.6_bilinear_every_scene" in rep["targets"]
    # the default family is the hard scenes: seed 0 is a tuning seed on the sinusoidal grid, with a floor
    sh = by["sharpener"]
    assert rep["family"] == "hard" and sh["set"] == "tuning" and sh["kind"] == "sinusoidal"
    assert sh["rmse_ratio_floor"] == pytest.approx(sh["rmse"] / sh["floor_rmse"]) and sh["rmse_ratio_floor"] > 1
    assert "tuning_abs_bias_le_0.05" in rep["targets"]


def test_bench_downscale_terrain_extra():
    """--terrain-extra names and values: the module's TPI / HVF; a malformed spec is a one-line error."""
    import numpy as np

    from gee_alt.science.terrain import height_above_valley_floor_m, topographic_position_m

    mod = _load("bench_downscale")
    dem = np.add.outer(np.arange(20.0), 3.0 * np.arange(25.0))
    ex = mod.extra_terrain(dem, 30.0, ["tpi:90", "hvf:300"])
    assert list(ex) == ["tpi_90m", "hvf_300m"]
    assert ex["tpi_90m"].tobytes() == topographic_position_m(dem, 30.0, 90.0).tobytes()
    assert ex["hvf_300m"].tobytes() == height_above_valley_floor_m(dem, 30.0, 300.0).tobytes()
    with pytest.raises(SystemExit, match="tpi:METRES"):
        mod.extra_terrain(dem, 30.0, ["slope:90"])


def test_bench_downstream_smoke(tmp_path):
    mod = _load("bench_downstream")
    out = tmp_path / "s.json"
    assert (
        mod.main(["--height", "160", "--width", "240", "--years", "12", "--workdir", str(tmp_path), "--out", str(out)])
        == 0
    )
    rep = json.loads(out.read_text())
    med = rep["median_run"]
    assert rep["grid_height"] == 160 and rep["grid_width"] == 240 and not rep["full_study_grid"]
    assert med["n_outputs"] == 2 * 12 + 2
    assert med["downstream_wall_s"] > 0 and med["floor_s"] > 0 and med["peak_rss_mb"] > 0
    assert math.isfinite(med["ratio_to_floor"])
    assert med["stages_s"]["calibration"]["E"] == pytest.approx(0.045, rel=0.1)
    assert set(rep["targets"]) == {"wall_le_60s", "ratio_le_2x_floor", "peak_rss_le_1.5GB"}


def test_bench_pull_smoke(tmp_path):
    pytest.importorskip("ee")
    mod = _load("bench_pull")
    out = tmp_path / "p.json"
    assert mod.main(["--bbox", "99.0", "38.0", "99.03", "38.02", "--years", "1", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["stub"] is True and len(rep["years"]) == 1
    y = rep["years"][0]
    assert y["bytes"] >= y["min_bytes"] > 0 and y["pixel_requests"] >= 1
    assert set(rep["targets"]) == {"bytes_le_1.05_min", "pixel_requests_le_1.1_ceil"}


def test_bench_downscale_pydms_skipped_without_path(tmp_path, capsys):
    mod = _load("bench_downscale")
    out = tmp_path / "d.json"
    args = ["--sizes", "256", "--seeds", "0", "--repeats", "1", "--methods", "bilinear", "pydms", "--out", str(out)]
    assert mod.main(args) == 0
    assert "pydms: skipped (no --pydms-path" in capsys.readouterr().out
    rep = json.loads(out.read_text())
    assert {c["method"] for c in rep["cases"]} == {"bilinear"} and rep["pydms"] == "not run"


FAKE_PYDMS = '''
"""A stand-in with pyDMS's interface (not pyDMS): applySharpener = bilinear warp of the coarse band
onto the fine grid through osgeo.gdal (the shim); residual correction adds 1 K."""
from osgeo import gdal


class DecisionTreeSharpener:
    def __init__(self, highResFiles, lowResFiles, disaggregatingTemperature=False, **kw):
        assert disaggregatingTemperature and kw["baggingRegressorOpt"]["random_state"] == 0
        self.kw = kw

    def trainSharpener(self):
        pass

    def applySharpener(self, hr, lr):
        h = gdal.Open(hr)
        gt = h.GetGeoTransform()
        bounds = [gt[0], gt[3] + gt[5] * h.RasterYSize, gt[0] + gt[1] * h.RasterXSize, gt[3]]
        return gdal.Warp("", gdal.Open(lr), format="MEM", dstSRS=h.GetProjection(), xRes=gt[1], yRes=gt[5],
                         outputBounds=bounds, resampleAlg="bilinear")

    def residualAnalysis(self, down, lr, q=None, doCorrection=True):
        a = down.GetRasterBand(1).ReadAsArray() + 1.0
        ds = gdal.GetDriverByName("MEM").Create("MEM", a.shape[1], a.shape[0], 1, gdal.GDT_Float32)
        ds.SetGeoTransform(down.GetGeoTransform())
        ds.SetProjection(down.GetProjection())
        ds.GetRasterBand(1).WriteArray(a)
        return None, ds
'''


def test_bench_downscale_pydms_runner_with_a_stand_in(tmp_path):
    # the runner's plumbing (GeoTIFFs, kelvin, the shim on sys.path, variants, common-pixel ratios)
    # with a fake pyDMS package whose answer is known: the bilinear warp of the coarse LST (+1 K)
    pkg = tmp_path / "fake" / "pyDMS"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "pyDMS.py").write_text(FAKE_PYDMS)
    mod = _load("bench_downscale")
    out = tmp_path / "d.json"
    args = ["--sizes", "256", "--seeds", "1000", "--repeats", "1", "--methods", "bilinear", "sharpener", "pydms"]
    args += ["--pydms-path", str(tmp_path / "fake"), "--pydms-configs", "global", "--out", str(out)]
    assert mod.main(args) == 0
    rep = json.loads(out.read_text())
    by = {c["method"]: c for c in rep["cases"]}
    assert set(by) == {"bilinear", "sharpener", "pydms_global", "pydms_global_rc"}
    # GDAL's bilinear warp through the shim is close to gee_alt's bilinear interpolation (which fills
    # gaps before interpolating, so pixels next to clouds differ); kelvin in, °C out
    assert by["pydms_global"]["rmse"] == pytest.approx(by["bilinear"]["rmse"], rel=0.1)
    assert by["pydms_global"]["bias"] == pytest.approx(by["bilinear"]["bias"], abs=0.1)
    assert by["pydms_global_rc"]["bias"] == pytest.approx(by["pydms_global"]["bias"] + 1.0, abs=1e-3)
    sh = by["sharpener"]
    assert sh["pydms_best"] == "pydms_global"
    assert sh["rmse_ratio_best_pydms"] == pytest.approx(sh["common"]["rmse"] / by["pydms_global"]["common"]["rmse"])
    assert sh["wall_ratio_best_pydms"] == pytest.approx(sh["wall_s"] / by["pydms_global"]["wall_s"])
    assert "untuned_rmse_le_0.8_best_pydms_every_scene" in rep["targets"]
