"""Random-forest sharpening of a coarse field to 30 m (pure graph builders), after pyDMS.

1. Fine predictors (30 m, on the output grid projection) are aggregated to the coarse pixels
   with ``reduceResolution(mean/stdDev, maxPixels=ee_sampling.reduce_max_pixels).reproject(coarse)``.
2. Homogeneity screen: CV = mean over ``homogeneity_bands`` of |std/mean| within each coarse
   pixel; the ``rf.homogeneity_drop`` least homogeneous coarse pixels do not train.
3. ``sample`` (seeded, explicit coarse ``scale`` and ``projection``) draws training pixels;
   ``smileRandomForest`` in ``REGRESSION`` mode, with the arguments
   :func:`smile_random_forest_arguments` maps from the shared
   :class:`~gee_alt.science.forest.RandomForestSettings`, is trained on them.
4. The forest is applied to the 30 m predictors.
5. Residual correction: coarse residual = target − (30 m prediction aggregated to coarse),
   fixed on the coarse grid, bilinearly resampled to 30 m and added back, so the result
   re-aggregates to the observation.
6. Spread: the same forest (same samples and seed) in ``RAW_REGRESSION`` mode gives one value
   per tree; their standard deviation is the 1-sigma band ``<name>_sd``.

Units follow the target (°C for LST, 1 for NDVI). Aggregation is a plain mean of T, not of
radiance (T⁴); at plateau temperatures the difference is below 0.1 °C for sub-pixel
contrasts of a few °C.
"""

from __future__ import annotations

import ee

from gee_alt.config import EeSamplingConfig
from gee_alt.science.forest import RandomForestSettings, features_per_split
from gee_alt.units import KELVIN_AT_0_DEGC

TARGET_PROPERTY = "target"


def smile_random_forest_arguments(rf: RandomForestSettings, n_predictors: int, seed: int) -> dict:
    """The ``ee.Classifier.smileRandomForest`` arguments for the shared forest settings (the
    mapping tabled in :mod:`gee_alt.science.forest`): ``max_features`` becomes the count of
    predictors per split scikit-learn would use, an unset ``max_samples`` the bootstrap bag
    (``bagFraction`` 1), an unset ``max_leaf_nodes`` no limit."""
    return {
        "numberOfTrees": rf.n_estimators,
        "variablesPerSplit": features_per_split(rf.max_features, n_predictors),
        "minLeafPopulation": rf.min_samples_leaf,
        "bagFraction": 1.0 if rf.max_samples is None else rf.max_samples,
        "maxNodes": rf.max_leaf_nodes,
        "seed": seed,
    }


def rf_classifier(rf: RandomForestSettings, n_predictors: int, seed: int, mode: str = "REGRESSION") -> ee.Classifier:
    """A seeded ``smileRandomForest`` for ``n_predictors`` in ``mode`` (``REGRESSION`` or ``RAW_REGRESSION``)."""
    return ee.Classifier.smileRandomForest(**smile_random_forest_arguments(rf, n_predictors, seed)).setOutputMode(mode)


def aggregate(
    fine: ee.Image, coarse_proj: ee.Projection, max_pixels: int, reducer: ee.Reducer | None = None
) -> ee.Image:
    """Aggregate a 30 m image to ``coarse_proj`` (mean by default; masked fine pixels drop out)."""
    return fine.reduceResolution(
        reducer=reducer or ee.Reducer.mean(), bestEffort=False, maxPixels=max_pixels
    ).reproject(crs=coarse_proj)


def homogeneity_cv(fine: ee.Image, bands: list[str], coarse_proj: ee.Projection, max_pixels: int) -> ee.Image:
    """Band ``cv`` (1): mean over ``bands`` of |std / mean| of the 30 m values in each coarse pixel."""
    sel = fine.select(bands)
    mean = aggregate(sel, coarse_proj, max_pixels, ee.Reducer.mean())
    sd = aggregate(sel, coarse_proj, max_pixels, ee.Reducer.stdDev())
    return sd.divide(mean.abs().max(1e-6)).reduce(ee.Reducer.mean()).rename("cv")


def homogeneous_mask(
    cv: ee.Image,
    region: ee.Geometry,
    coarse_proj: ee.Projection,
    coarse_scale_m: float,
    drop_fraction: float,
    tile_scale: int,
) -> ee.Image:
    """1 where ``cv`` is within its ``1 - drop_fraction`` quantile over ``region`` (all pixels if 0)."""
    if drop_fraction <= 0:
        return cv.mask().gt(0)
    pct = round((1.0 - drop_fraction) * 100, 6)
    stats = cv.reduceRegion(
        reducer=ee.Reducer.percentile([pct]),
        geometry=region,
        scale=coarse_scale_m,
        crs=coarse_proj,
        bestEffort=True,
        maxPixels=int(1e9),
        tileScale=tile_scale,
    )
    return cv.lte(ee.Number(stats.get("cv")))


def training_samples(
    coarse_predictors: ee.Image,
    target: ee.Image,
    mask: ee.Image,
    region: ee.Geometry,
    coarse_proj: ee.Projection,
    coarse_scale_m: float,
    sampling: EeSamplingConfig,
    seed: int,
) -> ee.FeatureCollection:
    """Seeded training pixels at the coarse scale: predictor bands + ``target`` property."""
    stack = coarse_predictors.addBands(target.rename(TARGET_PROPERTY)).updateMask(mask)
    return stack.sample(
        region=region,
        scale=coarse_scale_m,
        projection=coarse_proj,
        numPixels=sampling.num_samples,
        seed=seed,
        dropNulls=True,
        tileScale=sampling.tile_scale,
        geometries=False,
    )


def sharpen(
    target: ee.Image,
    fine_predictors: ee.Image,
    predictor_names: list[str],
    coarse_proj: ee.Projection,
    coarse_scale_m: float,
    region: ee.Geometry,
    rf: RandomForestSettings,
    sampling: EeSamplingConfig,
    seed: int,
    name: str,
    homogeneity_bands: list[str],
    radiance: bool = False,
) -> ee.Image:
    """Sharpen the one-band coarse ``target`` to the 30 m grid of ``fine_predictors``.

    The forest uses the bands ``predictor_names`` of ``fine_predictors`` (named here, so
    ``max_features`` becomes a count of predictors before anything runs). Returns bands
    ``name`` (residual-corrected prediction, target units) and ``name + "_sd"`` (std over
    trees, target units). ``fine_predictors`` must carry the 30 m grid projection; ``target``
    must carry ``coarse_proj`` as default projection. With ``radiance`` (temperatures in °C)
    the prediction is aggregated radiance-like for the residual, as the sensor sees it: mean of
    (T + KELVIN_AT_0_DEGC)^4, back to °C (as the local engine does).
    """
    max_pixels = sampling.reduce_max_pixels
    fine_predictors = fine_predictors.select(predictor_names)
    coarse_pred = aggregate(fine_predictors, coarse_proj, max_pixels)
    cv = homogeneity_cv(fine_predictors, homogeneity_bands, coarse_proj, max_pixels)
    mask = homogeneous_mask(cv, region, coarse_proj, coarse_scale_m, rf.homogeneity_drop, sampling.tile_scale)
    samples = training_samples(coarse_pred, target, mask, region, coarse_proj, coarse_scale_m, sampling, seed)
    n_predictors = len(predictor_names)
    forest = rf_classifier(rf, n_predictors, seed, "REGRESSION").train(
        features=samples, classProperty=TARGET_PROPERTY, inputProperties=predictor_names
    )
    fine_pred = fine_predictors.classify(forest, "prediction")
    if radiance:
        rad = fine_pred.add(KELVIN_AT_0_DEGC).pow(4)
        pred_coarse = aggregate(rad, coarse_proj, max_pixels).pow(0.25).subtract(KELVIN_AT_0_DEGC)
    else:
        pred_coarse = aggregate(fine_pred, coarse_proj, max_pixels)
    residual = target.subtract(pred_coarse).reproject(crs=coarse_proj).resample("bilinear")
    value = fine_pred.add(residual).rename(name)
    trees = rf_classifier(rf, n_predictors, seed, "RAW_REGRESSION").train(
        features=samples, classProperty=TARGET_PROPERTY, inputProperties=predictor_names
    )
    spread = (
        fine_predictors.classify(trees, "trees")
        .arrayReduce(ee.Reducer.stdDev(), [0])
        .arrayGet([0])
        .rename(name + "_sd")
    )
    return ee.Image.cat([value, spread]).toFloat()
