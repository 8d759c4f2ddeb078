"""Offline structure tests of the Earth Engine graphs (ee.apitestcase catalog, no server)."""

from __future__ import annotations

import dataclasses
import hashlib
import math

import pytest

from gee_alt.config import load_config
from gee_alt.engines.ee import collections as col
from gee_alt.engines.ee import composite, sharpen, thaw
from gee_alt.grid import grid_from_bbox
from helpers.ee import calls_named, constants_in, invocations

SMALL_BBOX = (99.0, 38.0, 99.06, 38.04)


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def small_grid():
    return grid_from_bbox(SMALL_BBOX, 30.0, "EPSG:32647")


def names(obj) -> set[str]:
    return {n for n, _ in invocations(obj)}


def test_lst_qc_bits_and_scale(ee_offline):
    import ee

    img = col.modis_lst_degc(ee.Image("MODIS/061/MOD11A1/2010_07_01"), max_error_k=2)
    ands = [a["value"] if "value" in a else a.get("image2") for a in calls_named(img, "Image.bitwiseAnd")]
    consts = constants_in(img)
    assert col.QC_MANDATORY_BITS == 0b11 and col.QC_LST_ERROR_SHIFT == 6 and col.QC_LST_ERROR_BITS == 0b11
    assert 3 in consts and 6 in consts  # bits 0-1 mask, bits 6-7 shift
    assert 0.02 in consts and 273.15 in consts
    assert {"QC_Day", "QC_Night", "LST_Day_1km", "LST_Night_1km"} <= {c for c in consts if isinstance(c, str)} | {
        x for c in consts if isinstance(c, list) for x in c
    }
    assert "Image.rightShift" in names(img) and "Image.lte" in names(img) and ands is not None
    # error class accepted per threshold: <=1 K -> 0, <=2 K -> 1, <=3 K -> 2, any -> 3
    assert [col.lst_error_class_max(k) for k in (1, 2, 3, 4)] == [0, 1, 2, 3]
    assert col.QC_MANDATORY_MAX_OK == 1  # 00 good and 01 "check other bits" pass, cloud 10/11 do not


@pytest.mark.parametrize(
    "cid, thermal, red, nir, other_thermal",
    [
        ("LANDSAT/LT05/C02/T1_L2", "ST_B6", "SR_B3", "SR_B4", "ST_B10"),
        ("LANDSAT/LE07/C02/T1_L2", "ST_B6", "SR_B3", "SR_B4", "ST_B10"),
        ("LANDSAT/LC08/C02/T1_L2", "ST_B10", "SR_B4", "SR_B5", "ST_B6"),
        ("LANDSAT/LC09/C02/T1_L2", "ST_B10", "SR_B4", "SR_B5", "ST_B6"),
    ],
)
def test_landsat_bands_masks_and_scales_per_mission(ee_offline, cid, thermal, red, nir, other_thermal):
    import ee

    m = col.LANDSAT_MISSIONS[cid]
    img = col.landsat_ndvi_st(ee.Image(cid + "/X"), m, mask_snow=True)
    strings = {c for c in constants_in(img) if isinstance(c, str)} | {
        x for c in constants_in(img) if isinstance(c, list) for x in c if isinstance(x, str)
    }
    assert {thermal, red, nir, "QA_PIXEL", "QA_RADSAT"} <= strings and other_thermal not in strings
    nd = calls_named(img, "Image.normalizedDifference")
    assert nd and nd[0]["bandNames"] == [nir, red]
    consts = constants_in(img)
    assert 0.0000275 in consts and -0.2 in consts and 0.00341802 in consts and 149.0 in consts
    assert 0b111111 in consts  # bits 0-4 + snow bit 5
    no_snow = col.landsat_ndvi_st(ee.Image(cid + "/X"), m, mask_snow=False)
    assert 0b11111 in constants_in(no_snow) and 0b111111 not in constants_in(no_snow)


def test_landsat_missions_by_period():
    ids = load_config().collections.landsat
    assert [m.name for m in col.landsat_missions_for(ids, "2005-06-01", "2005-09-16")] == ["L5", "L7"]
    assert [m.name for m in col.landsat_missions_for(ids, "2012-06-01", "2012-09-16")] == ["L7"]
    assert [m.name for m in col.landsat_missions_for(ids, "2016-06-01", "2016-09-16")] == ["L7", "L8"]
    assert [m.name for m in col.landsat_missions_for(ids, "2024-06-01", "2024-09-16")] == ["L8", "L9"]


def test_aqua_only_when_it_covers_the_season():
    ids = ("MODIS/061/MOD11A1", "MODIS/061/MYD11A1")
    assert col.lst_collection_ids(ids, "2002-03-01") == ["MODIS/061/MOD11A1"]
    assert col.lst_collection_ids(ids, "2003-03-01") == list(ids)


def test_thaw_windows_cover_the_season_exactly():
    w = composite.lst_windows(2004, "03-01", "11-30", 8)
    assert w[0].start == "2004-03-01" and w[-1].end == "2004-12-01"
    assert sum(x.days for x in w) == 275 and len(w) == 35 and w[-1].days == 3  # 2004 is a leap year
    assert all(a.end == b.start for a, b in zip(w, w[1:], strict=False))


@pytest.mark.parametrize(
    "choice, asset, mosaic",
    [
        ("copernicus", "COPERNICUS/DEM/GLO30", True),
        ("srtm", "USGS/SRTMGL1_003", False),
        ("nasadem", "NASA/NASADEM_HGT/001", False),
    ],
)
def test_dem_choice_and_terrain(ee_offline, choice, asset, mosaic):
    t = col.terrain_predictors(choice)
    n = names(t)
    assert asset in constants_in(t)
    assert ("ImageCollection.mosaic" in n and "Image.setDefaultProjection" in n) == mosaic
    assert {"Terrain.slope", "Terrain.aspect", "Image.resample"} <= n
    assert calls_named(t, "Image.resample")[0]["mode"] == "bilinear"


def test_terrain_bands_follow_the_one_definition(ee_offline):
    """Same names as the local engine; aspect components weighted by sin(slope);
    illumination from the same sun (cos and sin of the 18 deg zenith angle, azimuth pi)."""
    from gee_alt.science.terrain import NDVI_TERRAIN_PREDICTORS, TERRAIN_PREDICTORS

    t = col.terrain_predictors("srtm")
    assert sorted(a["names"][0] for a in calls_named(t, "Image.rename")) == sorted(TERRAIN_PREDICTORS)
    assert NDVI_TERRAIN_PREDICTORS == TERRAIN_PREDICTORS[:4]
    n = names(t)
    assert {"Image.sin", "Image.cos", "Image.multiply", "Image.max"} <= n
    sin_calls = [name for name, _ in invocations(t) if name == "Image.sin"]
    assert len(sin_calls) == 2  # sin(slope) once, sin(aspect) for eastness
    consts = constants_in(t)
    assert any(abs(c - math.cos(math.radians(18.0))) < 1e-12 for c in consts if isinstance(c, float))
    assert any(abs(c - math.sin(math.radians(18.0))) < 1e-12 for c in consts if isinstance(c, float))
    assert math.pi in consts and any(abs(c - math.pi / 180.0) < 1e-15 for c in consts if isinstance(c, float))


@pytest.mark.parametrize("ndvi, band", [("MODIS/061/MOD13Q1", "SummaryQA"), ("MODIS/061/MOD09GQ", "QC_250m")])
def test_modis_ndvi_product_choice(ee_offline, cfg, ndvi, band):
    import ee

    c = dataclasses.replace(cfg, collections=cfg.collections.model_copy(update={"ndvi": ndvi}))
    comp = composite.modis_ndvi_composite(c, 2010, ee.Geometry.Rectangle(list(SMALL_BBOX)))
    assert ndvi in constants_in(comp) and band in str(constants_in(comp))
    assert "Image.setDefaultProjection" in names(comp)


def test_ddt_graph_structure(ee_offline, cfg, small_grid):
    img = thaw.ddt_image(cfg, 2010, small_grid)
    n = invocations(img)
    rf = [a for name, a in n if name == "Classifier.smileRandomForest"]
    # the shared defaults mapped: 40 trees, leaves >= 10, bootstrap bag, no node limit
    assert rf and all(
        a["numberOfTrees"] == 40
        and a["minLeafPopulation"] == 10
        and a["bagFraction"] == 1.0
        and a.get("maxNodes") is None
        for a in rf
    )
    # max_features 0.7 as scikit-learn counts it: NDVI forest 5 predictors -> 3, LST forest 6 -> 4
    assert {a["seed"]: a["variablesPerSplit"] for a in rf} == {42: 3, 43: 4}  # NDVI, LST forests
    inputs = {tuple(a["inputProperties"]) for name, a in n if name == "Classifier.train"}
    assert inputs == {
        ("landsat_ndvi", "elevation_m", "slope_deg", "northness", "eastness"),
        ("ndvi", "elevation_m", "slope_deg", "northness", "eastness", "illumination"),
    }
    modes = sorted(a["mode"] for name, a in n if name == "Classifier.setOutputMode")
    assert modes == ["RAW_REGRESSION", "RAW_REGRESSION", "REGRESSION", "REGRESSION"]
    samples = [a for name, a in n if name == "Image.sample"]
    assert sorted((round(a["scale"], 3), a["seed"], a["numPixels"]) for a in samples) == [
        (231.656, 42, 5000),
        (926.625, 43, 5000),
    ]
    assert all(a["tileScale"] == 4 and a["dropNulls"] is True for a in samples)
    rr = [a for name, a in n if name == "Image.reduceResolution"]
    assert rr and all(a["maxPixels"] == 2048 and a["bestEffort"] is False for a in rr)
    # every reduceResolution result is reprojected (to the coarse MODIS grid)
    assert sum(1 for name, _ in n if name == "Image.reproject") >= len(rr)
    # residual correction: bilinear resampling of coarse fields, added back
    assert sum(1 for name, a in n if name == "Image.resample" and a["mode"] == "bilinear") >= 3
    assert "Image.classify" in {x for x, _ in n} and "Image.arrayReduce" in {x for x, _ in n}
    # the output grid
    out = [a for name, a in n if name == "Image.reproject" and a.get("crsTransform")]
    assert [a["crsTransform"] for a in out] == [list(small_grid["crs_transform"])]
    assert out[0]["crs"]["functionInvocationValue"]["functionName"] == "Projection" and "EPSG:32647" in constants_in(
        img
    )
    # homogeneity screen: no drop by default (as the local engine), so no percentile threshold
    assert not [a for name, a in n if name == "Reducer.percentile"]


def test_homogeneity_drop_is_the_percentile_left_out(ee_offline, cfg, small_grid):
    c = dataclasses.replace(cfg, rf=cfg.rf.model_copy(update={"homogeneity_drop": 0.2}))
    pct = calls_named(thaw.ddt_image(c, 2010, small_grid), "Reducer.percentile")
    assert pct and all(a["percentiles"] == [80.0] for a in pct)


def test_forest_settings_map_onto_smile_arguments():
    from gee_alt.science.forest import RandomForestSettings

    rf = RandomForestSettings(
        n_estimators=25, min_samples_leaf=3, max_features=0.5, max_samples=0.6, max_leaf_nodes=200, random_state=9
    )
    assert sharpen.smile_random_forest_arguments(rf, 7, 11) == {
        "numberOfTrees": 25,
        "variablesPerSplit": 3,
        "minLeafPopulation": 3,
        "bagFraction": 0.6,
        "maxNodes": 200,
        "seed": 11,
    }
    assert sharpen.smile_random_forest_arguments(RandomForestSettings(max_features=0.1), 5, 0)["variablesPerSplit"] == 1


def test_sharpen_residual_correction_structure(ee_offline, cfg):
    import ee

    coarse = col.modis_projection(col.MOD11A1, "LST_Day_1km")
    fine = ee.Projection("EPSG:32647", [30, 0, 499980, 0, -30, 4210260])
    target = ee.Image(1).rename("t").setDefaultProjection(coarse)
    preds = ee.Image.cat([ee.Image(2).rename("ndvi"), ee.Image(3).rename("elevation_m")]).reproject(crs=fine)
    out = sharpen.sharpen(
        target,
        preds,
        ["ndvi", "elevation_m"],
        coarse,
        926.625433055833,
        ee.Geometry.Rectangle(list(SMALL_BBOX)),
        cfg.rf,
        cfg.ee_sampling,
        7,
        "v",
        ["ndvi", "elevation_m"],
    )
    n = invocations(out)
    assert [a["outputName"] for name, a in n if name == "Image.classify"].count("prediction") == 1
    assert "Image.subtract" in {x for x, _ in n} and "Image.add" in {x for x, _ in n}
    assert {a["mode"] for name, a in n if name == "Classifier.setOutputMode"} == {"REGRESSION", "RAW_REGRESSION"}
    assert {a["seed"] for name, a in n if name in ("Classifier.smileRandomForest", "Image.sample")} == {7}
    assert {"v", "v_sd"} <= {c for c in constants_in(out) if isinstance(c, str)}


def test_aqua_in_graph_only_from_2003(ee_offline, cfg, small_grid):
    import ee

    for year, aqua in ((2000, False), (2002, False), (2003, True), (2020, True)):
        js = ee.serializer.toJSON(thaw.ddt_image(cfg, year, small_grid))
        assert ("MODIS/061/MOD11A1" in js) and (("MODIS/061/MYD11A1" in js) == aqua), year


def test_graph_hash_is_deterministic_and_tracks_the_seed(ee_offline, cfg, small_grid):
    import ee

    def h(c):
        return hashlib.sha256(ee.serializer.toJSON(thaw.ddt_image(c, 2015, small_grid)).encode()).hexdigest()

    assert h(cfg) == h(cfg)
    assert h(cfg) != h(dataclasses.replace(cfg, rf=cfg.rf.model_copy(update={"random_state": 1})))


def test_catalog_rejects_misspelled_arguments(ee_offline, cfg, small_grid, monkeypatch):
    import ee

    with pytest.raises(TypeError, match="maxPixelz"):
        ee.Image(1).reduceResolution(reducer=ee.Reducer.mean(), maxPixelz=10)
    with pytest.raises(TypeError, match="numberOfTreez"):
        ee.Classifier.smileRandomForest(numberOfTreez=10)
    thaw.ddt_image(cfg, 2010, small_grid)  # builds as shipped

    def misspelled(fine, coarse_proj, max_pixels, reducer=None):
        return fine.reduceResolution(
            reducer=reducer or ee.Reducer.mean(), bestEfort=False, maxPixels=max_pixels
        ).reproject(crs=coarse_proj)

    monkeypatch.setattr(sharpen, "aggregate", misspelled)
    with pytest.raises(TypeError, match="bestEfort"):
        thaw.ddt_image(cfg, 2010, small_grid)


def test_offline_init_without_apitestcase_builds_and_rejects():
    import ee

    from gee_alt.engines.ee.offline import offline_ee

    with offline_ee():
        ee.Image("USGS/SRTMGL1_003").reproject(crs="EPSG:4326", scale=30)
        with pytest.raises(TypeError):
            ee.Image("USGS/SRTMGL1_003").reproject(crs="EPSG:4326", scal=30)
        with pytest.raises(ee.EEException, match="offline"):
            ee.Number(1).getInfo()


def test_validation_graph(ee_offline, cfg, small_grid):
    from gee_alt.engines.ee import validate

    d = validate.validation_stats(cfg, 2016, small_grid)
    n = invocations(d)
    md = [a for name, a in n if name == "Filter.maxDifference"]
    assert md and md[0]["difference"] == 12 * 3600 * 1000
    s = [a for name, a in n if name == "Image.sample"]
    assert any(a["scale"] == 30.0 and a["seed"] == 44 for a in s)
    consts = str(constants_in(d))
    assert "ST_B10" in consts and "ST_B6" in consts and "st_degc" in consts  # L7 + L8 in 2016
    import ee

    js = ee.serializer.toJSON(d)
    assert all(f'"{k}"' in js for k in ("rmse_degc", "bias_degc", "n", "diff_degc", "sq_degc2"))


def test_fetch_validation_client(ee_offline, cfg, small_grid, monkeypatch):
    import ee

    from gee_alt.engines.ee import validate
    from gee_alt.errors import GeeAltError

    served = [{"year": 2016, "rmse_degc": 3.5, "bias_degc": -0.4, "n": 812}]  # stub numbers, not EE results
    monkeypatch.setattr(ee.data, "computeValue", lambda obj: served)
    assert validate.fetch_validation(cfg, [2016], small_grid) == served

    def boom(obj):
        raise ee.EEException("Collection query aborted after accumulating over 5000 elements.\nmore")

    monkeypatch.setattr(ee.data, "computeValue", boom)
    with pytest.raises(GeeAltError, match="validation failed") as ei:
        validate.fetch_validation(cfg, [2016], small_grid)
    assert "\n" not in str(ei.value)


def test_year_images_for_the_map_build_offline(ee_offline):
    """The map layers of one year are valid graphs with the expected bands (checked offline)."""
    import ee

    from gee_alt.config import load_config
    from gee_alt.engines.ee.plan import year_images

    cfg = load_config(None)
    imgs = year_images(cfg, 2015, e=0.05, e_sd=0.002)
    assert set(imgs) == {"lst", "ddt", "alt", "alt_sd"}
    for img in imgs.values():
        js = ee.serializer.toJSON(img)
        assert "Image" in js
    assert "alt_m" in ee.serializer.toJSON(imgs["alt"]) and "Image.sqrt" in ee.serializer.toJSON(imgs["alt_sd"])
    assert set(year_images(cfg, 2015)) == {"lst", "ddt"}


def test_lst_residual_is_aggregated_radiance_like(ee_offline, cfg):
    """Temperatures: the residual compares the sensor's view, mean of (T + 273.15)^4, not mean T."""
    import ee

    coarse = col.modis_projection(col.MOD11A1, "LST_Day_1km")
    fine = ee.Projection("EPSG:32647", [30, 0, 499980, 0, -30, 4210260])
    target = ee.Image(1).rename("t").setDefaultProjection(coarse)
    preds = ee.Image.cat([ee.Image(2).rename("ndvi"), ee.Image(3).rename("elevation_m")]).reproject(crs=fine)
    args = (
        target,
        preds,
        ["ndvi", "elevation_m"],
        coarse,
        926.625433055833,
        ee.Geometry.Rectangle(list(SMALL_BBOX)),
        cfg.rf,
        cfg.ee_sampling,
        7,
        "v",
        ["ndvi", "elevation_m"],
    )

    def numbers(img):
        return {c for c in constants_in(img) if isinstance(c, (int, float)) and not isinstance(c, bool)}

    assert {4, 0.25, 273.15} <= numbers(sharpen.sharpen(*args, radiance=True))
    assert not {0.25, 273.15} & numbers(sharpen.sharpen(*args))
    # the yearly DDT graph uses it for LST
    assert '"Image.pow"' in ee.serializer.toJSON(thaw.ddt_image(cfg, 2015, cfg.grid()))
