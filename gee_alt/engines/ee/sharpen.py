"""Sharpening of a coarse field to 30 m on Earth Engine (pure graph builders): the local
engine's method (:mod:`gee_alt.science.sharpen`) expressed as an ``ee`` graph.

1. Fine predictors (30 m, on the output grid projection) are aggregated to the coarse pixels
   with ``reduceResolution(mean/stdDev, maxPixels).reproject(coarse)``; ``maxPixels`` comes from
   the measured footprint (:func:`gee_alt.engines.ee.footprint.required_max_pixels`).
2. Homogeneity, as locally: ``h`` = mean over predictors of (within-coarse-pixel sd / scene-wide
   sd of that predictor). The local weight ``1 / max(h, q10(h))`` becomes a sampling
   probability ``q10(h) / max(h, q10(h))`` (in 0..1; ``smileRandomForest`` takes no sample
   weights, so pixels are kept with that probability: weighting in expectation). No pixel is
   dropped unless ``rf.homogeneity_drop`` > 0 (then the least homogeneous fraction is).
3. Linear trend under the forest: predictors scaled to 0..1 over their coarse range (capped at
   half a range beyond it, as locally), ``ee.Reducer.ridgeRegression`` (fixed λ
   :data:`RIDGE_LAMBDA`) on the sampled coarse pixels; the lapse rate extrapolates to ridge
   tops and plateaus instead of being clipped at the forest's training range.
4. ``smileRandomForest`` (``REGRESSION``; :func:`smile_random_forest_arguments` maps the shared
   :class:`~gee_alt.science.forest.RandomForestSettings`) on the trend's residuals; the fine
   prediction is trend + forest.
5. Residual correction: coarse residual = target − aggregated fine prediction (radiance-like,
   mean of (T + 273.15)^4, for temperatures), bilinear to 30 m and added back.
6. Error (the local engine's out-of-bag RMSE, band ``<name>_err``): a second forest with the
   same settings trained on the samples outside a seeded 20 % hold-out fold; RMSE of trend +
   forest on the hold-out at the coarse scale (°C for LST). Cheap: no 30 m evaluation.

Guards: with fewer than :data:`MIN_TRAINING_PIXELS` sampled pixels (an empty or fully masked
target) the result is the bilinear target with error NaN — never a reduction or a training
over an empty collection.
"""

from __future__ import annotations

from dataclasses import dataclass

import ee

from gee_alt.config import EeSamplingConfig
from gee_alt.science.forest import RandomForestSettings, bag_fraction, features_per_split
from gee_alt.units import KELVIN_AT_0_DEGC

TARGET_PROPERTY = "target"
RESIDUAL_PROPERTY = "trend_residual"
FOLD_PROPERTY = "fold"
HOLDOUT_FRACTION = 0.2
RIDGE_LAMBDA = 0.01  # on predictors scaled to 0..1 (the local engine chooses it by GCV in 1e-4..10)
MIN_TRAINING_PIXELS = 20
SCALED_PREFIX = "s_"
HOMOGENEITY_QUANTILE = 10  # percentile of h below which every pixel gets the full weight (as locally)


def smile_random_forest_arguments(
    rf: RandomForestSettings, n_predictors: int, seed: int, n_train: int | None = None
) -> dict:
    """The ``ee.Classifier.smileRandomForest`` arguments for the shared forest settings (the
    mapping tabled in :mod:`gee_alt.science.forest`): ``max_features`` becomes the count of
    predictors per split scikit-learn would use, an unset ``max_samples`` the bootstrap bag
    (``bagFraction`` 1) capped at ``max_bag_size / n_train`` (``n_train``: the training pixels
    sampled, when known), an unset ``max_leaf_nodes`` no limit."""
    return {
        "numberOfTrees": rf.n_estimators,
        "variablesPerSplit": features_per_split(rf.max_features, n_predictors),
        "minLeafPopulation": rf.min_samples_leaf,
        "bagFraction": bag_fraction(rf.max_samples, rf.max_bag_size, n_train),
        "maxNodes": rf.max_leaf_nodes,
        "seed": seed,
    }


def rf_classifier(
    rf: RandomForestSettings, n_predictors: int, seed: int, mode: str = "REGRESSION", n_train: int | None = None
) -> ee.Classifier:
    """A seeded ``smileRandomForest`` for ``n_predictors`` in ``mode`` (``n_train``: the training
    pixels sampled, for the bag cap)."""
    args = smile_random_forest_arguments(rf, n_predictors, seed, n_train)
    return ee.Classifier.smileRandomForest(**args).setOutputMode(mode)


def aggregate(
    fine: ee.Image, coarse_proj: ee.Projection, max_pixels: int, reducer: ee.Reducer | None = None
) -> ee.Image:
    """Aggregate a 30 m image to ``coarse_proj`` (mean by default; masked fine pixels drop out)."""
    return fine.reduceResolution(
        reducer=reducer or ee.Reducer.mean(), bestEffort=False, maxPixels=max_pixels
    ).reproject(crs=coarse_proj)


@dataclass
class Predictors:
    """What every target sharpened on one predictor set shares (graph objects).

    ``fine``: the 30 m predictors; ``coarse``: their coarse means; ``scaled_fine`` /
    ``scaled_coarse``: both scaled to 0..1 over the coarse range (capped); ``keep``: the
    homogeneity sampling probability (coarse, 0..1); ``names``; coarse ``projection`` and
    ``scale_m``; ``region``; ``max_pixels``.
    """

    fine: ee.Image
    coarse: ee.Image
    scaled_fine: ee.Image
    scaled_coarse: ee.Image
    keep: ee.Image
    names: list[str]
    projection: ee.Projection
    scale_m: float
    region: ee.Geometry
    max_pixels: int
    tile_scale: int


def scene_sd_image(fine: ee.Image, names: list[str], region: ee.Geometry, fine_scale_m: float, tile_scale: int):
    """Constant image of each predictor's scene-wide sd over ``region`` (30 m pixels), 1 where 0."""
    sd = fine.reduceRegion(
        reducer=ee.Reducer.stdDev(),
        geometry=region,
        scale=fine_scale_m,
        bestEffort=True,
        maxPixels=int(1e9),
        tileScale=tile_scale,
    )
    img = ee.Dictionary(sd).toImage(names).rename(names)
    return img.where(img.lte(0), 1)


def homogeneity(
    fine: ee.Image, names: list[str], coarse_proj: ee.Projection, max_pixels: int, scene_sd: ee.Image
) -> ee.Image:
    """Band ``h`` (1): mean over predictors of (within-coarse-pixel sd / scene sd), as locally."""
    sd = aggregate(fine, coarse_proj, max_pixels, ee.Reducer.stdDev())
    return sd.divide(scene_sd).reduce(ee.Reducer.mean()).rename("h")


def prepare_predictors(
    fine: ee.Image,
    names: list[str],
    coarse_proj: ee.Projection,
    coarse_scale_m: float,
    fine_scale_m: float,
    region: ee.Geometry,
    sampling: EeSamplingConfig,
    max_pixels: int,
    homogeneity_drop: float = 0.0,
) -> Predictors:
    """Aggregate, scale and weigh one predictor set (see the module docstring, steps 1-3)."""
    fine = fine.select(names)
    coarse = aggregate(fine, coarse_proj, max_pixels)
    h = homogeneity(
        fine, names, coarse_proj, max_pixels, scene_sd_image(fine, names, region, fine_scale_m, sampling.tile_scale)
    )
    region_args = dict(
        geometry=region,
        scale=coarse_scale_m,
        crs=coarse_proj,
        bestEffort=True,
        maxPixels=int(1e9),
        tileScale=sampling.tile_scale,
    )
    pcts = [HOMOGENEITY_QUANTILE] + ([round((1.0 - homogeneity_drop) * 100, 6)] if homogeneity_drop > 0 else [])
    hq = ee.Dictionary(h.reduceRegion(reducer=ee.Reducer.percentile(pcts), **region_args))
    q10 = ee.Image.constant(hq.getNumber(f"h_p{HOMOGENEITY_QUANTILE}")).max(1e-6)
    keep = q10.divide(h.max(q10)).rename("keep")
    if homogeneity_drop > 0:
        keep = keep.updateMask(h.lte(ee.Image.constant(hq.getNumber(f"h_p{pcts[1]:g}"))))
    mm = ee.Dictionary(coarse.reduceRegion(reducer=ee.Reducer.minMax(), **region_args))
    lo = mm.toImage([f"{b}_min" for b in names]).rename(names)
    hi = mm.toImage([f"{b}_max" for b in names]).rename(names)
    span = hi.subtract(lo)
    span = span.where(span.lte(0), 1)

    def scaled(img):
        capped = img.max(lo.subtract(span.multiply(0.5))).min(hi.add(span.multiply(0.5)))
        return capped.subtract(lo).divide(span).rename([SCALED_PREFIX + b for b in names])

    return Predictors(
        fine,
        coarse,
        scaled(fine),
        scaled(coarse),
        keep,
        list(names),
        coarse_proj,
        coarse_scale_m,
        region,
        max_pixels,
        sampling.tile_scale,
    )


def _sample(p: Predictors, stack: ee.Image, sampling: EeSamplingConfig, seed: int) -> ee.FeatureCollection:
    """Seeded coarse training pixels of ``stack``, each kept with the homogeneity probability."""
    accept = ee.Image.random(seed).lt(p.keep)
    return stack.updateMask(accept).sample(
        region=p.region,
        scale=p.scale_m,
        projection=p.projection,
        numPixels=sampling.num_samples,
        seed=seed,
        dropNulls=True,
        tileScale=sampling.tile_scale,
        geometries=False,
    )


def linear_trend(coefficients: ee.Array, scaled: ee.Image, n: int) -> ee.Image:
    """Trend = Σ coef_i · scaled_i + intercept (``ridgeRegression``'s (n + 1) × 1 array: intercept last)."""
    coefs = ee.Array(coefficients)
    slopes = ee.Image.constant(coefs.slice(0, 0, n).project([0]).toList())
    return scaled.multiply(slopes).reduce(ee.Reducer.sum()).add(ee.Image.constant(coefs.get([n, 0])))


def sharpen(
    target: ee.Image,
    p: Predictors,
    rf: RandomForestSettings,
    sampling: EeSamplingConfig,
    seed: int,
    name: str,
    radiance: bool = False,
) -> ee.Image:
    """Sharpen the one-band coarse ``target`` (default projection ``p.projection``) to 30 m.

    Returns bands ``name`` (trend + forest + residual correction, target units) and
    ``name + "_err"`` (hold-out RMSE at the coarse scale, a constant, target units; NaN-masked
    when the guard falls back to the bilinear target).
    """
    n = len(p.names)
    snames = [SCALED_PREFIX + b for b in p.names]
    target = target.rename(TARGET_PROPERTY)
    samples = _sample(p, p.scaled_coarse.addBands(target), sampling, seed)
    enough = samples.size().gte(max(MIN_TRAINING_PIXELS, n + 2))
    ridge = samples.reduceColumns(ee.Reducer.ridgeRegression(n, 1, RIDGE_LAMBDA), [*snames, TARGET_PROPERTY])
    coefs = ee.Array(ridge.get("coefficients"))
    trend_coarse = linear_trend(coefs, p.scaled_coarse, n)
    resid_stack = p.coarse.addBands(target.subtract(trend_coarse).rename(RESIDUAL_PROPERTY))
    train = _sample(p, resid_stack, sampling, seed).randomColumn(FOLD_PROPERTY, seed)
    forest = rf_classifier(rf, n, seed, n_train=sampling.num_samples).train(
        features=train, classProperty=RESIDUAL_PROPERTY, inputProperties=p.names
    )
    fine_pred = linear_trend(coefs, p.scaled_fine, n).add(p.fine.classify(forest, "forest"))
    if radiance:
        rad = fine_pred.add(KELVIN_AT_0_DEGC).pow(4)
        pred_coarse = aggregate(rad, p.projection, p.max_pixels).pow(0.25).subtract(KELVIN_AT_0_DEGC)
    else:
        pred_coarse = aggregate(fine_pred, p.projection, p.max_pixels)
    residual = target.subtract(pred_coarse).reproject(crs=p.projection).resample("bilinear")
    value = fine_pred.add(residual).rename(name)
    # hold-out error of the same procedure (trend fixed, forest refitted without the fold)
    fit = train.filter(ee.Filter.gte(FOLD_PROPERTY, HOLDOUT_FRACTION))
    held = train.filter(ee.Filter.lt(FOLD_PROPERTY, HOLDOUT_FRACTION))
    check = rf_classifier(rf, n, seed, n_train=sampling.num_samples).train(
        features=fit, classProperty=RESIDUAL_PROPERTY, inputProperties=p.names
    )
    sq = held.classify(check, "forest").map(
        lambda f: f.set("sq", ee.Number(f.get(RESIDUAL_PROPERTY)).subtract(f.get("forest")).pow(2))
    )
    err = ee.Number(sq.reduceColumns(ee.Reducer.mean(), ["sq"]).get("mean")).sqrt()
    err_img = ee.Image.constant(err).rename(name + "_err")
    fallback = ee.Image.cat(
        [
            target.reproject(crs=p.projection).resample("bilinear").rename(name),
            ee.Image.constant(0).updateMask(0).rename(name + "_err"),
        ]
    )
    enough_holdout = held.size().gte(2)
    sharpened = ee.Image.cat(
        [value, ee.Image(ee.Algorithms.If(enough_holdout, err_img, fallback.select(name + "_err")))]
    )
    return ee.Image(ee.Algorithms.If(enough, sharpened, fallback)).toFloat()
