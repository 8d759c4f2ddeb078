"""The streamed downstream (issue 12 item 3): the same bytes whatever the row chunk, and the same
values as the whole cube in memory."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from gee_alt import downstream, pipeline, runs
from gee_alt.applicability_run import assess
from gee_alt.cube import grid_of
from gee_alt.engines import EngineOutput
from gee_alt.insitu.table import read_insitu

YEARS = [2010, 2011, 2012, 2013, 2014, 2015]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "run"
    pipeline.run_demo(out, years=YEARS, size_px=128, trees=8, workers=1, seed=7)
    return out


def _downstream(demo: Path, out: Path, rows: int):
    cube = runs.open_ddt_cube(demo, YEARS, engine="local", synthetic=True)
    fields = pipeline.run_fields(demo, grid_of(cube))
    table = read_insitu(runs.insitu_csv_path(runs.inputs_dir(demo)), bbox=downstream.site_bbox_lonlat(grid_of(cube)))
    out.mkdir()
    res = pipeline.finish_downstream(out, EngineOutput(cube, fields), table, seed=7, rows_per_chunk=rows)
    return res, cube, fields


def _digests(run: Path) -> dict[str, str]:
    return {
        p.relative_to(run).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != runs.CUBE_NC
    }


def test_chunked_downstream_is_byte_identical_to_one_chunk_and_to_the_cube_in_memory(demo, tmp_path, monkeypatch):
    import gee_alt.applicability_run as ar
    import gee_alt.science.terrain as terrain

    one, cube, fields = _downstream(demo, tmp_path / "one", 10**6)  # 128 rows: one chunk
    # row blocks inside the chunks too (presence probability, AOA sums and inflation, AOA and
    # presence predictors): small and not dividing the chunk
    for mod, name, rows in ((downstream, "PRESENCE_ROWS", 5), (ar, "BLOCK_ROWS", 3), (ar, "AOA_ROWS", 11)):
        monkeypatch.setattr(mod, name, rows)
    monkeypatch.setattr(terrain, "BLOCK_ROWS", 6)
    small, _, _ = _downstream(demo, tmp_path / "small", 37)  # 4 chunks, the last one short
    a, b = _digests(tmp_path / "one"), _digests(tmp_path / "small")
    assert len(a) >= 6 * 4 + 10 and a == b  # every product file: ALT, sd, permafrost, e_source, aoa, trend, JSON
    for k in ("alt/alt_2015.tif", "alt/alt_sd_2015.tif", "permafrost/", "trend/", "aoa.tif", "alt/e_source"):
        assert any(p.startswith(k) for p in a), k
    na = xr.open_dataset(tmp_path / "one" / runs.CUBE_NC, decode_times=False)
    nb = xr.open_dataset(tmp_path / "small" / runs.CUBE_NC, decode_times=False)
    for v in na.variables:  # the NetCDF differs only by its 'history' time stamp
        assert np.array_equal(na[v].values, nb[v].values, equal_nan=True), v
    assert {k: v for k, v in na.attrs.items() if k != "history"}.keys() == nb.attrs.keys() - {"history"}
    # independent truth: the whole cube in memory through the in-memory functions
    mem = cube.load()
    fmin = one.calibration.summary["permafrost_criterion"]["frost_number_min"]  # fitted on the drill holes
    presence = downstream.presence_of(one.calibration.summary["permafrost_criterion"], fields, grid_of(cube))
    maps = downstream.alt_maps(
        mem, one.calibration.model, fields.landcover, frost_number_min=fmin, presence=presence
    )  # the presence model of the drill holes decides, as in the streamed run
    (tmp_path / "mem").mkdir()
    assess(tmp_path / "mem", mem, fields, one.calibration, maps)
    assert np.array_equal(maps.alt_m, np.asarray(small.alt.alt_m), equal_nan=True)
    assert np.array_equal(maps.alt_sd_m, np.asarray(small.alt.alt_sd_m), equal_nan=True)  # AOA-inflated
    assert np.array_equal(maps.frost_number, np.asarray(small.alt.frost_number), equal_nan=True)
    assert np.isfinite(maps.alt_m).any() and np.isnan(maps.alt_m).any()  # permafrost and not
    app_mem = json.loads((tmp_path / "mem" / runs.APPLICABILITY_JSON).read_text())
    app_small = json.loads((tmp_path / "small" / runs.APPLICABILITY_JSON).read_text())
    assert app_mem == app_small
    tr = downstream.write_trend(tmp_path / "mem", maps, synthetic=True, calibration=one.calibration.summary)
    mem_json = json.loads((tmp_path / "mem" / "trend" / "trend.json").read_text())
    assert mem_json == json.loads((tmp_path / "small" / "trend" / "trend.json").read_text())
    assert any(v is not None for v in mem_json["area_mean_alt_m"]["mean"])
    assert np.array_equal(tr.slope_cm_per_yr, small.trend.slope_cm_per_yr, equal_nan=True)
    assert np.array_equal(tr.p_value, small.trend.p_value, equal_nan=True)


def test_streamed_netcdf_has_the_bytes_of_the_in_memory_write(demo, tmp_path, monkeypatch):
    """cube.nc from the lazy cube and the ALT COGs (scipy writer, variables streamed block by block)
    equals, byte for byte, xarray's plain write of the same arrays in memory."""
    import datetime as dt

    from gee_alt.export import netcdf

    class Fixed(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2026, 1, 1, tzinfo=tz)

    monkeypatch.setattr(netcdf._dt, "datetime", Fixed)
    cube = runs.open_ddt_cube(demo, YEARS, engine="local", synthetic=True)
    maps = pipeline.read_alt_maps(demo)
    cal = json.loads((demo / runs.CALIBRATION).read_text())
    lazy = netcdf.write_alt_netcdf(tmp_path / "lazy.nc", cube, maps.alt_m, maps.alt_sd_m, calibration=cal)
    mem = netcdf.write_alt_netcdf(
        tmp_path / "mem.nc", cube.load(), np.asarray(maps.alt_m), np.asarray(maps.alt_sd_m), calibration=cal
    )
    assert lazy.read_bytes() == mem.read_bytes()
    back = netcdf.read_alt_netcdf(lazy)
    assert np.array_equal(back["alt_m"].values, np.asarray(maps.alt_m), equal_nan=True)
    assert np.isfinite(back["ddt_degc_days"].values).any()


def test_calibrate_step_decides_permafrost_as_the_run_did(demo, tmp_path):
    """``gee-alt calibrate`` on a finished run writes the permafrost criterion the run wrote (it
    used to drop it, so a following ``gee-alt alt`` fell back to the fixed frost-number threshold)."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo, copy)
    before = runs.read_json(demo, runs.CALIBRATION)["permafrost_criterion"]
    assert before["source"] == "probability" and before["presence_model"]
    (copy / runs.CALIBRATION).unlink()
    pipeline.calibrate_run(copy, runs.insitu_csv_path(runs.inputs_dir(copy)), seed=7)
    assert runs.read_json(copy, runs.CALIBRATION)["permafrost_criterion"] == before
    assert runs.read_json(copy, runs.VALIDATION)["permafrost_criterion"] == before
