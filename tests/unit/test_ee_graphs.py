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
    assert "Image.rightShift" in names(img) and "Image.lte" in names(img)
    # MOD11A1 QC (user guide table 10): every bitwiseAnd masks two bits, 0b11 = 3 (bits 0-1 mandatory QA,
    # bits 6-7 LST error after the shift by 6), two per QC band (day, night)
    and_values = [
        a.get("functionInvocationValue", {}).get("arguments", {}).get("value", {}).get("constantValue") for a in ands
    ]
    assert len(and_values) == 4 and and_values == [3, 3, 3, 3]
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


def test_aqua_enters_whenever_it_flies():
    """Aqua (from 2002-07-04) is no longer held back to whole seasons: it enters through its
    fitted offset to Terra, so the 2002 season already has it and no year boundary makes a step."""
    ids = ("MODIS/061/MOD11A1", "MODIS/061/MYD11A1")
    assert col.lst_collection_ids(ids, "2001-03-01", "2001-12-01") == ["MODIS/061/MOD11A1"]
    assert col.lst_collection_ids(ids, "2002-01-01", "2002-07-04") == ["MODIS/061/MOD11A1"]
    assert col.lst_collection_ids(ids, "2002-03-01", "2002-12-01") == list(ids)
    assert col.lst_collection_ids(ids, "2003-03-01", "2003-12-01") == list(ids)


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
    # max_features 0.7 as scikit-learn counts it: NDVI forest 5 predictors -> 3, LST forests 6 -> 4;
    # one LST forest per thaw-season month (March..November: 9), seeds 43..51
    assert {a["seed"]: a["variablesPerSplit"] for a in rf} == {42: 3, **{43 + k: 4 for k in range(9)}}
    inputs = {tuple(a["inputProperties"]) for name, a in n if name == "Classifier.train"}
    assert inputs == {
        ("elevation_m", "slope_deg", "northness", "eastness", "landsat_ndvi"),
        ("elevation_m", "slope_deg", "northness", "eastness", "illumination", "ndvi"),
    }
    assert {a["mode"] for name, a in n if name == "Classifier.setOutputMode"} == {"REGRESSION"}
    samples = [a for name, a in n if name == "Image.sample"]
    # two draws per forest (ridge trend, forest on its residuals), same seed: the same pixels
    assert sorted({(round(a["scale"], 3), a["seed"], a["numPixels"]) for a in samples}) == [
        (231.656, 42, 5000),
        *[(926.625, 43 + k, 5000) for k in range(9)],
    ]
    assert all(a["tileScale"] == 4 and a["dropNulls"] is True for a in samples)
    rr = [a for name, a in n if name == "Image.reduceResolution"]
    assert rr and all(a["bestEffort"] is False for a in rr)
    # every reduceResolution result is reprojected (to the coarse MODIS grid)
    assert sum(1 for name, _ in n if name == "Image.reproject") >= len(rr)
    # residual correction: bilinear resampling of coarse fields, added back
    assert sum(1 for name, a in n if name == "Image.resample" and a["mode"] == "bilinear") >= 3
    assert "Image.classify" in {x for x, _ in n}
    # the output grid
    out = [a for name, a in n if name == "Image.reproject" and a.get("crsTransform")]
    assert [a["crsTransform"] for a in out] == [list(small_grid["crs_transform"])]
    assert out[0]["crs"]["functionInvocationValue"]["functionName"] == "Projection" and "EPSG:32647" in constants_in(
        img
    )
    # homogeneity: weights only (the 10th percentile of h), no drop by default (as the local engine)
    assert {tuple(a["percentiles"]) for name, a in n if name == "Reducer.percentile"} == {(10,)}


def test_server_graph_has_trend_per_month_sharpening_and_scene_sd_weights(ee_offline, cfg, small_grid):
    """Parity with the local engine: a ridge trend under every forest, one LST forest per month
    (not one season-mean anomaly), homogeneity normalised by each predictor's scene-wide sd."""
    img = thaw.ddt_image(cfg, 2010, small_grid)
    n = invocations(img)
    months = thaw.forests_per_year(cfg, 2010)["lst_months"]
    assert months == 9
    ridge = [a for name, a in n if name == "Reducer.ridgeRegression"]  # identical reducers are serialized once
    fits = [a for name, a in n if name == "Collection.reduceColumns" and a["selectors"][-1] == sharpen.TARGET_PROPERTY]
    assert len(fits) == 1 + months
    assert {(a["numX"], a["numY"], a["lambda"]) for a in ridge} == {
        (5, 1, sharpen.RIDGE_LAMBDA),
        (6, 1, sharpen.RIDGE_LAMBDA),
    }
    # forests on the trend's residuals
    assert {a["classProperty"] for name, a in n if name == "Classifier.train"} == {sharpen.RESIDUAL_PROPERTY}
    # 30 m evaluations: the NDVI forest and one per month
    assert len([a for name, a in n if name == "Image.classify"]) == 1 + months
    # scene-wide sd of the 30 m predictors (at the grid's 30 m), turned into a constant image
    sd = [a for name, a in n if name == "Image.reduceRegion" and a.get("scale") == 30.0]
    assert len(sd) == 2  # the NDVI and the LST predictor sets
    assert {"Dictionary.toImage", "Image.random", "Reducer.stdDev"} <= names(img)
    # hold-out folds for the error of each forest
    folds = [a for name, a in n if name == "Collection.randomColumn"]
    assert len(folds) == 1 + months and {a["columnName"] for a in folds} == {sharpen.FOLD_PROPERTY}
    # the months' anomalies are targets of monthly means of the raw windows
    assert [mm for mm, _ in composite.month_groups(composite.lst_windows(2010, "03-01", "11-30", 8))] == [
        f"{m:02d}" for m in range(3, 12)
    ]


@pytest.mark.parametrize("year", [2001, 2010])
def test_no_reduction_sees_an_empty_collection_unguarded(ee_offline, cfg, small_grid, year):
    """Terra's 2001-06-15..07-02 outage leaves empty 8-day windows: every image-collection
    reduction runs over a guarded collection (masked guard image, literal list or catalog)."""
    from helpers.ee import unguarded_reductions

    assert unguarded_reductions(thaw.ddt_image(cfg, year, small_grid)) == []
    from gee_alt.engines.ee import validate

    assert unguarded_reductions(validate.validation_sums(cfg, year, small_grid)) == []
    # the checker does catch a bare reduction over a filtered collection
    import ee

    bare = ee.ImageCollection("MODIS/061/MOD11A1").filterDate("2001-06-17", "2001-06-25").mean()
    assert unguarded_reductions(bare) == ["reduce.mean over Collection.filter"]
    guarded = composite.guarded(ee.ImageCollection("MODIS/061/MOD11A1").filterDate("2001-06-17", "2001-06-25"), ["x"])
    assert unguarded_reductions(guarded.mean()) == []


@pytest.mark.parametrize("grid_name", ["small", "datong"])
def test_every_reduce_resolution_covers_the_measured_footprint(ee_offline, cfg, small_grid, grid_name):
    """maxPixels >= the pyproj-measured bounding-box count of a MODIS cell on the grid (~2000 at
    1 km over Datong, where the sinusoidal cell is sheared ~47 deg; 2048 was too few)."""
    from gee_alt.engines.ee.footprint import FOOTPRINT_MARGIN, bbox_pixel_count
    from gee_alt.grid import MODIS_1KM, MODIS_250M

    grid = small_grid if grid_name == "small" else cfg.grid()
    bbox = SMALL_BBOX if grid_name == "small" else cfg.bbox
    c = dataclasses.replace(cfg, bbox=bbox)
    need_1km, need_250 = bbox_pixel_count(grid, bbox, MODIS_1KM), bbox_pixel_count(grid, bbox, MODIS_250M)
    assert 1900 <= need_1km <= 2300 and 100 <= need_250 <= 160
    rr = calls_named(thaw.ddt_image(c, 2010, grid), "Image.reduceResolution")
    assert {a["maxPixels"] for a in rr} == {
        math.ceil(need_1km * FOOTPRINT_MARGIN),
        math.ceil(need_250 * FOOTPRINT_MARGIN),
    }
    assert min(a["maxPixels"] for a in rr if a["maxPixels"] > 1000) >= 2180  # above the upper estimate
    # a configured floor larger than the footprint wins
    big = dataclasses.replace(c, ee_sampling=c.ee_sampling.model_copy(update={"reduce_max_pixels": 5000}))
    assert {a["maxPixels"] for a in calls_named(thaw.ddt_image(big, 2010, grid), "Image.reduceResolution")} == {5000}


def test_grid_is_aligned_with_landsat_pixel_edges(ee_offline, cfg):
    """Landsat C2 UTM pixel edges sit at 15 (mod 30) m: so do the default grid's; and Landsat
    reflectance/temperature are bilinear (QA bits nearest) for scenes in other lattices."""
    a, _, c, _, e, f = cfg.grid()["crs_transform"]
    assert (a, e) == (30.0, -30.0) and c % 30 == 15 and f % 30 == 15
    import ee

    m = col.LANDSAT_MISSIONS["LANDSAT/LC08/C02/T1_L2"]
    img = col.landsat_ndvi_st(ee.Image("LANDSAT/LC08/C02/T1_L2/X"), m, mask_snow=True)
    assert [a["mode"] for a in calls_named(img, "Image.resample")] == ["bilinear", "bilinear"]
    clamp = calls_named(img, "Image.clamp")
    assert clamp and (clamp[0]["low"], clamp[0]["high"]) == (-1, 1)


def test_summary_qa_fill_is_masked(ee_offline):
    import ee

    c = col.modis_ndvi(col.MOD13Q1, "2010-06-01", "2010-09-16", ee.Geometry.Rectangle(list(SMALL_BBOX)))
    n = invocations(c)
    assert any(name == "Image.gte" and a.get("image2") is not None for name, a in n)
    assert 0 in constants_in(c) and 1 in constants_in(c)


def test_homogeneity_drop_is_the_percentile_left_out(ee_offline, cfg, small_grid):
    c = dataclasses.replace(cfg, rf=cfg.rf.model_copy(update={"homogeneity_drop": 0.2}))
    pct = calls_named(thaw.ddt_image(c, 2010, small_grid), "Reducer.percentile")
    assert pct and all(a["percentiles"] == [10, 80.0] for a in pct)


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


def _toy_predictors(cfg):
    import ee

    coarse = col.modis_projection(col.MOD11A1, "LST_Day_1km")
    fine = ee.Projection("EPSG:32647", [30, 0, 499995, 0, -30, 4210245])
    target = ee.Image(1).rename("t").setDefaultProjection(coarse)
    preds = ee.Image.cat([ee.Image(2).rename("ndvi"), ee.Image(3).rename("elevation_m")]).reproject(crs=fine)
    p = sharpen.prepare_predictors(
        preds,
        ["ndvi", "elevation_m"],
        coarse,
        926.625433055833,
        30.0,
        ee.Geometry.Rectangle(list(SMALL_BBOX)),
        cfg.ee_sampling,
        2400,
    )
    return target, p


def test_sharpen_residual_correction_structure(ee_offline, cfg):
    target, p = _toy_predictors(cfg)
    out = sharpen.sharpen(target, p, cfg.rf, cfg.ee_sampling, 7, "v")
    n = invocations(out)
    assert [a["outputName"] for name, a in n if name == "Image.classify"] == ["forest"]
    assert "Image.subtract" in {x for x, _ in n} and "Image.add" in {x for x, _ in n}
    assert {a["mode"] for name, a in n if name == "Classifier.setOutputMode"} == {"REGRESSION"}
    assert {a["seed"] for name, a in n if name in ("Classifier.smileRandomForest", "Image.sample")} == {7}
    assert {"v", "v_err"} <= {c for c in constants_in(out) if isinstance(c, str)}
    assert {a["maxPixels"] for a in calls_named(out, "Image.reduceResolution")} == {2400}
    # guard: too few training pixels -> the bilinear target (an If on the sample count)
    assert "If" in names(out) and "Collection.size" in names(out)


def test_aqua_in_graph_from_2002(ee_offline, cfg, small_grid):
    import ee

    for year, aqua in ((2000, False), (2001, False), (2002, True), (2003, True), (2020, True)):
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

    d = validate.validation_sums(cfg, 2016, small_grid)
    n = invocations(d)
    md = [a for name, a in n if name == "Filter.maxDifference"]
    assert md and md[0]["difference"] == 12 * 3600 * 1000
    s = [a for name, a in n if name == "Image.sample"]
    assert any(a["scale"] == 30.0 for a in s)
    consts = str(constants_in(d))
    assert "ST_B10" in consts and "ST_B6" in consts and "st_degc" in consts  # L7 + L8 in 2016
    import ee

    js = ee.serializer.toJSON(d)
    assert all(f'"{k}"' in js for k in ("sum_d", "sum_d2", "sum_st", "sum_st2", "n", "dlst_"))
    # different pixels every year: the seed depends on the year
    assert validate.validation_seed(cfg, 2016) != validate.validation_seed(cfg, 2017)
    assert str(validate.validation_seed(cfg, 2016)) in js and str(validate.validation_seed(cfg, 2017)) not in js


def test_validation_statistics_pool_years():
    from gee_alt.engines.ee import validate

    d = [1.0, -1.0, 2.0]
    st = [10.0, 12.0, 14.0]
    sums = {
        "n": 3,
        "sum_d": sum(d),
        "sum_d2": sum(x * x for x in d),
        "sum_st": sum(st),
        "sum_st2": sum(x * x for x in st),
    }
    s = validate.statistics(sums)
    assert s["n"] == 3 and s["bias_degc"] == pytest.approx(2 / 3) and s["rmse_degc"] == pytest.approx(math.sqrt(2))
    assert s["r2"] == pytest.approx(1 - 6 / 8)
    per_year = [{"year": 1, **sums}, {"year": 2, **sums}, {"year": 3, "error": "x"}]
    both = validate.pooled(per_year)
    assert both["n"] == 6 and both["rmse_degc"] == pytest.approx(math.sqrt(2))
    assert validate.statistics({"n": 0}) == {"n": 0, "rmse_degc": None, "bias_degc": None, "r2": None}


def test_fetch_validation_one_request_per_year(ee_offline, cfg, small_grid, monkeypatch):
    import ee

    from gee_alt.engines.ee import validate

    calls = []

    def served(obj):  # stub numbers, not EE results
        calls.append(obj)
        if len(calls) == 2:
            raise ee.EEException("Collection query aborted after accumulating over 5000 elements.\nmore")
        return {"year": 0, "n": 4, "sum_d": 2.0, "sum_d2": 4.0, "sum_st": 40.0, "sum_st2": 404.0}

    monkeypatch.setattr(ee.data, "computeValue", served)
    out = validate.fetch_validation(cfg, [2016, 2017, 2018], small_grid, sleep=lambda s: None)
    assert len(calls) == 3  # one request a year, the failing one not retried (not transient)
    assert out["failed_years"] == [2017] and "5000 elements" in out["per_year"][1]["error"]
    assert "\n" not in out["per_year"][1]["error"]
    assert out["overall"]["n"] == 8 and out["overall"]["rmse_degc"] == pytest.approx(1.0)
    assert out["per_year"][0]["bias_degc"] == pytest.approx(0.5) and out["per_year"][0]["r2"] == pytest.approx(
        1 - 4 / 4
    )


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
    # map layers are computed at the map's zoom scale, not forced onto the 30 m grid per tile
    for img in imgs.values():
        assert not [a for a in calls_named(img, "Image.reproject") if a.get("crsTransform")]


def test_lst_residual_is_aggregated_radiance_like(ee_offline, cfg):
    """Temperatures: the residual compares the sensor's view, mean of (T + 273.15)^4, not mean T."""
    import ee

    target, p = _toy_predictors(cfg)

    def numbers(img):
        return {c for c in constants_in(img) if isinstance(c, (int, float)) and not isinstance(c, bool)}

    assert {4, 0.25, 273.15} <= numbers(sharpen.sharpen(target, p, cfg.rf, cfg.ee_sampling, 7, "v", radiance=True))
    assert not {0.25, 273.15} & numbers(sharpen.sharpen(target, p, cfg.rf, cfg.ee_sampling, 7, "v"))
    # the yearly DDT graph uses it for LST
    assert '"Image.pow"' in ee.serializer.toJSON(thaw.ddt_image(cfg, 2015, cfg.grid()))


def dates_in(obj) -> set[str]:
    """ISO dates (YYYY-MM-DD) among a graph's string constants."""
    return {c for c in constants_in(obj) if isinstance(c, str) and len(c) == 10 and c[4] == "-" and c[7] == "-"}


def test_freezing_index_is_the_winter_before_the_thaw_season(ee_offline, cfg, small_grid):
    """DDF of 2010 = autumn 2009 (07-01..12-31) + spring 2010 (01-01..06-30) in 8-day windows
    covering each half exactly, the thaw season's sparse rule, −T clipped at 0; the first MODIS
    year (2000) takes its own autumn (no 1999 data)."""
    import ee

    region = ee.Geometry.Rectangle(list(SMALL_BBOX))
    ddf = composite.freezing_season_ddf(cfg, 2010, region)
    d = dates_in(ddf)
    assert min(d) == "2009-07-01" and max(d) == "2010-07-01"  # the half-open end of the spring half
    assert "2010-07-09" not in d and "2009-06-23" not in d
    for y, spring, days in ((2010, True, 181), (2009, False, 184)):
        ws = composite.lst_windows(y, *(("01-01", "06-30") if spring else ("07-01", "12-31")), 8)
        assert sum(w.days for w in ws) == days and all(w.start in d for w in ws)
    # sparse rule: n_valid >= min_valid_fraction x windows of the half (23 windows each)
    consts = constants_in(ddf)
    assert cfg.season.min_valid_fraction * 23 in consts and -1 in consts
    d2000 = dates_in(composite.freezing_season_ddf(cfg, 2000, region))
    assert min(d2000) == "2000-01-01" and max(d2000) == "2001-01-01"
    # the yearly image carries it as its fourth band, pulled with the others
    from gee_alt.engines.ee import pull

    assert pull.LAYERS == ("ddt_degc_days", "ddt_sd_degc_days", "n_obs", "ddf_degc_days")
    assert "2009-07-01" in dates_in(thaw.ddt_image(cfg, 2010, small_grid))


def test_daily_mean_uses_view_times_and_the_diurnal_model(ee_offline, cfg, small_grid):
    """The year's graph reads both view-time bands and evaluates the GOT01 shape (cos by day, exp
    by night) with the day length of each window; Aqua enters through an offset (a median of
    Aqua − Terra) only in years it flies."""
    import ee

    from gee_alt.engines.ee import daily_lst

    js = ee.serializer.toJSON(thaw.ddt_image(cfg, 2010, small_grid))
    assert '"Day_view_time"' in js and '"Night_view_time"' in js
    n = names(thaw.ddt_image(cfg, 2010, small_grid))
    assert {"Image.cos", "Image.exp", "Image.where", "reduce.median"} <= n
    windows = composite.lst_windows(2010, cfg.season.thaw_start, cfg.season.thaw_end, cfg.season.lst_step_days)
    consts = constants_in(thaw.ddt_image(cfg, 2010, small_grid))
    for w in (windows[0], windows[len(windows) // 2]):  # each window's own day length
        terms = daily_lst.shape_terms(daily_lst.window_middle_doy(w.start, w.days), composite.aoi_latitude(cfg))
        assert terms["half_range"] in consts and terms["tr"] in consts
    assert daily_lst.window_middle_doy("2010-07-01", 8) == 182 + 3.5


def test_thaw_fraction_request_is_a_1km_area_median(ee_offline, cfg):
    req, knots = thaw.thaw_fraction_request(cfg, 2010)
    (call,) = calls_named(req, "Image.reduceRegion")
    assert call["scale"] == thaw.MODIS_1KM_SCALE_M and call["tileScale"] == cfg.ee_sampling.tile_scale
    assert "Reducer.median" in names(req)
    windows = composite.lst_windows(2010, cfg.season.thaw_start, cfg.season.thaw_end, cfg.season.lst_step_days)
    assert len(knots) == len(windows) + 1 and knots[0] == 59.0 and knots[-1] == 334.0  # 28 Feb, 30 Nov
    assert {f"f{k:02d}" for k in range(len(windows))} <= {c for c in constants_in(req) if isinstance(c, str)}
