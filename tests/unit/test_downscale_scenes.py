"""The hard sharpening scenes of scripts/downscale_scenes.py: geometry and physics against hand
computations, and the sharpener on a small scene against interpolation and the oracle floor."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ds = _load("downscale_scenes")


def test_scene_generator_does_not_use_the_sharpeners_science():
    import ast

    tree = ast.parse((SCRIPTS / "downscale_scenes.py").read_text())
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert mods and not any(m.split(".")[0] == "gee_alt" for m in mods)


def test_horn_slope_aspect_of_a_plane():
    # z rises 0.1 m/m to the east and 0.2 m/m to the north; rows run north to south
    rows, cols = np.mgrid[0:20, 0:20]
    px = 30.0
    dem = 0.1 * cols * px + 0.2 * (-rows) * px
    slope, aspect = ds.horn_slope_aspect(dem, px)
    inner = (slice(2, -2), slice(2, -2))
    assert np.allclose(slope[inner], math.atan(math.hypot(0.1, 0.2)))
    # downslope = towards south-west: azimuth 180 + atan(0.1 / 0.2)
    assert np.allclose(np.degrees(aspect[inner]), 180.0 + math.degrees(math.atan(0.5)))


def test_sun_at_solstice_noon():
    el, az = ds.sun_position(172, lat_deg=38.0, solar_hour=12.0)
    assert math.degrees(el) == pytest.approx(90.0 - 38.0 + 23.44, abs=0.05)
    assert math.degrees(az) == pytest.approx(180.0, abs=0.5)
    el_am, az_am = ds.sun_position(172, lat_deg=38.0, solar_hour=10.5)
    assert el_am < el and 90.0 < math.degrees(az_am) < 180.0  # morning sun is south-east


@pytest.mark.parametrize("kind", ["sinusoidal", "4326"])
def test_sensor_footprints_are_where_the_coarse_grid_says(kind):
    fine = ds._grid(ds.UTM, 480000.0, 4200000.0, 30.0, 30.0, 128, 128)
    coarse = ds.coarse_grid_for(fine, kind, np.random.default_rng(0))
    px = ds.MODIS_PX_M if kind == "sinusoidal" else ds.ARCSEC30_DEG
    assert coarse["crs_transform"][0] == pytest.approx(px)
    pad = 70
    sensor = ds.Sensor(fine, coarse, pad)
    # a constant radiance is observed as itself, and the coarse pixels over the window are complete
    const = sensor(np.full((1, 128 + 2 * pad, 128 + 2 * pad), 7.0))[0]
    assert np.allclose(const[sensor.complete], 7.0)
    rows, cols = ds.fine_in_coarse(fine, coarse)
    ri, ci = np.floor(rows + 0.5).astype(int), np.floor(cols + 0.5).astype(int)
    assert sensor.complete[ri, ci].all()
    # the mean easting of a footprint is the easting of the coarse pixel centre (within ~ a fine pixel)
    xx, _ = ds._centres(fine, pad)
    east = sensor(xx[None].astype("float64"))[0]
    a, _, c, _, e, f = coarse["crs_transform"]
    r, k = np.nonzero(sensor.complete)
    cx, cy = c + (k + 0.5) * a, f + (r + 0.5) * e
    utm_x, _ = Transformer.from_crs(coarse["crs"], ds.UTM, always_xy=True).transform(cx, cy)
    # blur is symmetric and linear fields are kept by a Gaussian, except near the padded edge
    assert np.median(np.abs(east[r, k] - utm_x)) < 30.0


def test_small_scene_truth_floor_and_the_sharpener():
    bd = _load("bench_downscale")
    sc = bd.make_hard_scene(256, 0)
    assert sc["kind"] == "sinusoidal" and sc["set"] == "tuning"
    assert np.isfinite(sc["truth"]).all() and sc["X"].shape == (6, 256, 256)
    # the unexplained field has an sd of about sqrt(0.45^2 + 0.35^2) = 0.57 K
    assert 0.35 < sc["floors"]["explained"] < 0.8
    assert sc["floor_rmse"] <= sc["floors"]["explained"]
    bil, _ = bd.run_method(sc, "bilinear")
    sh, _ = bd.run_method(sc, "sharpener")
    s_bil, s_sh = bd.score(bil, sc["truth"]), bd.score(sh, sc["truth"])
    assert s_sh["rmse"] < s_bil["rmse"]
    assert s_sh["rmse"] > sc["floor_rmse"]  # nothing beats the oracle
    assert abs(s_sh["bias"]) < 0.2


def test_seed_sets_are_disjoint_and_both_leaves_the_fresh_seeds_out():
    import sys

    sys.path.insert(0, str(SCRIPTS))
    try:
        bd = _load("bench_downscale")
    finally:
        sys.path.remove(str(SCRIPTS))
    sets = [set(ds.TUNING_SEEDS), set(ds.UNTUNED_SEEDS), set(ds.FRESH_SEEDS)]
    assert sum(map(len, sets)) == len(set.union(*sets)) == 12
    assert bd.seeds_of_set("both") == [0, 1, 2, 3, 1000, 1001, 1002, 1003]
    assert bd.seeds_of_set("fresh") == [2000, 2001, 2002, 2003]
    assert [bd.seed_set_of(s) for s in (3, 1002, 2001, 7)] == ["tuning", "untuned", "fresh", "other"]
