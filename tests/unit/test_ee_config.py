"""Study config loading and one-line validation errors."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from gee_alt.config import config_from_dict, default_config_text, load_config
from gee_alt.errors import GeeAltError
from gee_alt.science.forest import RandomForestSettings


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_are_the_datong_study():
    cfg = load_config()
    assert cfg.years == (2000, 2024) and len(cfg.year_list()) == 25
    assert cfg.bbox == (98.8667, 37.7772, 99.9617, 38.3314)
    assert cfg.collections.lst == ("MODIS/061/MOD11A1", "MODIS/061/MYD11A1")
    assert cfg.collections.dem == "copernicus" and cfg.rf.random_state == 42
    g = cfg.grid()
    assert g["crs"] == "EPSG:32647" and g["crs_transform"][0] == 30.0 and g["crs_transform"][4] == -30.0
    # ≈ 96 km x 62 km at 30 m (REFERENCE: ~3200 x 2050 px)
    assert 3150 <= g["shape_2d"][0] <= 3300 and 2000 <= g["shape_2d"][1] <= 2100


def test_user_file_overrides_and_keeps_defaults(tmp_path):
    cfg = load_config(
        write(tmp_path, '[study]\nyears = [2010, 2012]\n[rf]\nrandom_state = 7\n[collections]\ndem = "srtm"\n')
    )
    assert cfg.years == (2010, 2012) and cfg.rf.random_state == 7 and cfg.collections.dem == "srtm"
    assert cfg.rf.n_estimators == 40 and cfg.ee_sampling.num_samples == 5000 and cfg.bbox[0] == 98.8667


def test_default_forest_is_the_local_engines():
    """One forest vocabulary: the shipped [rf] table is RandomForestSettings' defaults (the local
    engine's 40 trees, leaves >= 10, 0.7 of the predictors, bootstrap, no drop) with the study seed."""
    assert load_config().rf == RandomForestSettings(random_state=42)
    assert RandomForestSettings().model_dump() == {
        "n_estimators": 40,
        "min_samples_leaf": 10,
        "max_features": 0.7,
        "max_samples": None,
        "max_bag_size": 20000,
        "max_leaf_nodes": None,
        "random_state": 0,
        "homogeneity_drop": 0.0,
    }


def test_optional_forest_keys_and_ee_sampling(tmp_path):
    cfg = load_config(
        write(
            tmp_path, "[rf]\nmax_samples = 0.5\nmax_leaf_nodes = 64\nmax_features = 1\n[ee_sampling]\ntile_scale = 16\n"
        )
    )
    assert (cfg.rf.max_samples, cfg.rf.max_leaf_nodes, cfg.rf.max_features) == (0.5, 64, 1.0)
    assert isinstance(cfg.rf.max_features, float) and cfg.ee_sampling.tile_scale == 16


def test_config_from_dict_names_a_missing_key():
    d = tomllib.loads(default_config_text())
    del d["pull"]["max_workers"]
    with pytest.raises(GeeAltError, match=r"^config key pull.max_workers is missing$"):
        config_from_dict(d)
    del d["qa"]
    with pytest.raises(GeeAltError, match=r"^config table \[qa\] is missing$"):
        config_from_dict(d)


def test_geojson_aoi_elsewhere_gets_its_own_utm_zone(tmp_path):
    poly = {
        "type": "Polygon",
        "coordinates": [[[-149.0, 68.5], [-148.8, 68.5], [-148.8, 68.6], [-149.0, 68.6], [-149.0, 68.5]]],
    }
    write(
        tmp_path,
        json.dumps(
            {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": poly}]}
        ),
        "aoi.geojson",
    )
    cfg = load_config(write(tmp_path, '[aoi]\ngeojson = "aoi.geojson"\n[grid]\ncrs = ""\n'))
    assert cfg.bbox == (-149.0, 68.5, -148.8, 68.6)
    assert cfg.grid()["crs"] == "EPSG:32606"  # UTM 6N
    assert cfg.aoi_geojson()["type"] == "Polygon"


BAD = [
    ("[aoi]\nbbox = [99.9, 37.7, 98.8, 38.3]\n", "west < east"),
    ("[aoi]\nbbox = [98.8, 37.7, 199.9, 38.3]\n", "outside the world"),
    ("[aoi]\nbbox = [98.8, 37.7, 99.9]\n", "aoi.bbox"),
    ("[study]\nyears = [2024, 2000]\n", "reversed"),
    ("[study]\nyears = [1995, 2000]\n", "data range"),
    ("[study]\nyears = [2000, 2999]\n", "data range"),
    ('[collections]\nlst = ["MODIS/061/MOD11A2"]\n', "unknown LST collection"),
    ('[collections]\nndvi = "MODIS/061/MOD13A1"\n', "unknown NDVI collection"),
    ('[collections]\nlandsat = ["LANDSAT/LC07/C02/T1_L2"]\n', "unknown Landsat collection"),
    ('[collections]\ndem = "aster"\n', "unknown DEM"),
    ("[grid]\nscale_m = -30\n", "must be positive"),
    ('[grid]\nscale_m = "30"\n', "must be float"),
    ("[rf]\nrandom_state = 4.2\n", "config key rf.random_state must be int, got float 4.2"),
    ('[rf]\nn_estimators = "x"\n', "config key rf.n_estimators must be int, got str 'x'"),
    ("[rf]\nn_estimators = 0\n", "config key rf.n_estimators must be >= 1, got 0"),
    ("[rf]\nmin_samples_leaf = true\n", "config key rf.min_samples_leaf must be int, got bool True"),
    ("[rf]\nmax_features = 1.5\n", "config key rf.max_features must be <= 1.0, got 1.5"),
    ("[rf]\nmax_samples = 0\n", "config key rf.max_samples must be > 0.0, got 0"),
    ("[rf]\nmax_leaf_nodes = 1\n", "config key rf.max_leaf_nodes must be >= 2, got 1"),
    ("[rf]\nrandom_state = -1\n", "config key rf.random_state must be >= 0, got -1"),
    ("[rf]\nhomogeneity_drop = 1.0\n", "config key rf.homogeneity_drop must be < 1.0, got 1.0"),
    ("[ee_sampling]\nnum_samples = 5\n", "config key ee_sampling.num_samples must be >= 10, got 5"),
    ("[ee_sampling]\ntile_scale = 32\n", "config key ee_sampling.tile_scale must be <= 16, got 32"),
    ("[pull]\nmax_retries = -1\n", "config key pull.max_retries must be >= 0, got -1"),
    ("[collections]\nlst = [5]\n", "config key collections.lst.0 must be str, got int 5"),
    ('[collections]\nlandsat = "LANDSAT/LC08/C02/T1_L2"\n', "config key collections.landsat must be list"),
    ('[study]\nyears = "2000-2010"\n', "config key study.years must be list, got str '2000-2010'"),
    ("study = 5\n", "config [study] must be a table"),
    (
        "[rf]\nnumber_of_trees = 100\n",
        "unknown config key rf.number_of_trees (known: homogeneity_drop, max_bag_size, max_features, "
        "max_leaf_nodes, max_samples, min_samples_leaf, n_estimators, random_state)",
    ),
    ("[rf]\nnum_samples = 100\n", "unknown config key rf.num_samples"),
    ("[qa]\nlandsat_mask_snow = 1\n", "must be bool"),
    ("[rf]\nn_estimator = 10\n", "unknown config key rf.n_estimator"),
    ("[rff]\nseed = 1\n", "unknown config table [rff]"),
    (
        "foo = 5\n",
        "unknown config table [foo] (known: aoi, collections, ee_run, ee_sampling, grid, pull, qa, rf, season, study)",
    ),
    ('[season]\nthaw_start = "13-01"\n', "MM-DD"),
    ('[aoi]\nbbox = [1, 2, 3, 4]\ngeojson = "a.geojson"\n', "not both"),
    ("[qa]\nlst_max_error_k = 5\n", "lst_max_error_k"),
    ("[pull]\nmax_workers = 100\n", "1..40"),
    ("this is = = not toml", "invalid TOML"),
]


@pytest.mark.parametrize("text, expect", BAD)
def test_bad_configs_fail_with_one_line(tmp_path, text, expect):
    with pytest.raises(GeeAltError) as ei:
        load_config(write(tmp_path, text))
    msg = str(ei.value)
    assert expect in msg and "\n" not in msg


@pytest.mark.parametrize(
    "content, expect",
    [
        ("{not json", "not valid JSON"),
        ('{"type": "FeatureCollection", "features": []}', "no geometry"),
        ('{"type": "Point", "coordinates": [99, 38]}', "Polygon"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}', "empty"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [190, 0], [190, 1], [0, 0]]]}', "outside the world"),
    ],
)
def test_bad_geojson_fails_with_one_line(tmp_path, content, expect):
    write(tmp_path, content, "aoi.geojson")
    with pytest.raises(GeeAltError) as ei:
        load_config(write(tmp_path, '[aoi]\ngeojson = "aoi.geojson"\n'))
    assert expect in str(ei.value) and "\n" not in str(ei.value)


def test_missing_files_are_user_errors(tmp_path):
    with pytest.raises(GeeAltError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(GeeAltError, match="AOI GeoJSON not found"):
        load_config(write(tmp_path, '[aoi]\ngeojson = "missing.geojson"\n'))


def test_geographic_grid_crs_is_rejected(tmp_path):
    with pytest.raises(GeeAltError, match=r"grid.crs .*projected CRS.*EPSG:4326"):
        load_config(write(tmp_path, '[grid]\ncrs = "EPSG:4326"\n'))
