#!/usr/bin/env python
"""Benchmark the random-forest sharpener against interpolation and a plain random forest.

Two scene families. ``--family hard`` (the default; issue 15) takes the scenes of
``scripts/downscale_scenes.py``. That module imports no gee_alt code. Its truth lies outside the
model family: date- and aspect-dependent snow lines, cold-air pooling, hidden land cover, the
Terra-overpass sun and thin cloud edges. Its coarse grids are MODIS sinusoidal or EPSG:4326. It has
fixed tuning seeds and untuned seeds (``--seed-set``) and an oracle floor per scene. The hard family
also offers ``fine_rf_oracle``, a reference that cheats: a forest trained on the 30 m truth. Rows
report RMSE / bilinear, / plain RF and / floor. ``--family classic`` is the scene described below.

Synthetic scenes (all **synthetic**, not measurements), built here from the demo's building
blocks (``smooth_field``, ``fractal_surface``, ``modis_grid``) but with their own terrain, land
surface and temperature model, so the benchmark does not only score the demo scene:

- a 30 m window of ``size`` x ``size`` px on the study-area UTM grid, centred at a seeded random
  place in the study area, with a padded truth so that every coarse pixel is fully observed;
- terrain: a fractal surface (seeded spectral slope) plus a valley of seeded orientation, relief
  growing with the window; predictors elevation, slope, northness, eastness, illumination and a
  Landsat-like 30 m NDVI (truth + 0.02 noise) — the local engine's LST predictor set;
- truth: 6 surface-temperature bands (°C, season factors 0.35..1) with lapse rate, illumination,
  vegetation, NDVI x elevation interaction, a bare-ground step, cold-air pooling on relative
  elevation (no predictor carries it) and spatially correlated unexplained parts;
- observation: radiance-like ((T + KELVIN_AT_0_DEGC)^4) block mean to 120 m, Gaussian point-spread blur
  (sigma 240 m), area-weighted mean onto the MODIS 1 km **sinusoidal** lattice, + N(0, 0.3 °C).

Methods, each run in a fresh subprocess per repeat (wall time of fit + predict, peak RSS =
``VmHWM`` of the child, and its increase over the RSS after the inputs were loaded):

- ``bilinear``, ``cubic``: :func:`gee_alt.science.resample.interpolate` of the coarse observation;
- ``plain_rf``: a hand-rolled scikit-learn random forest (same size: 40 trees, leaf 10,
  max_features 0.7) trained on coarse means of the predictors of all fully covered coarse
  pixels, applied at 30 m — no homogeneity screening/weighting, no trend, no residual correction;
- ``rf_noweight``: ``RandomForestSharpener(linear_base=False, homogeneity_drop=0,
  residual_correction=False)`` (the ablated sharpener);
- ``sharpener``: ``RandomForestSharpener(radiance=True)`` with its defaults;
- ``pydms``: a user's checkout of radosuav/pyDMS (``--pydms-path``; GPL, not part of this repository),
  its ``DecisionTreeSharpener`` once per composite on GeoTIFFs of the same predictors and of the
  coarse LST in kelvin, in the configurations of :data:`PYDMS_CONFIGS`, each with and without its
  residual correction. GDAL's Python bindings are replaced by ``scripts/osgeo_shim`` (rasterio);
  pyDMS also needs numba (``--pydms-extra-path`` for a directory that has it). Without
  ``--pydms-path`` the method is skipped with a message. Rows ``pydms_<config>[_rc]``; the
  sharpener's RMSE / best pyDMS and wall / pyDMS are scored on the pixels both predict.

Scores against the 30 m truth on the window: RMSE (pooled over bands), bias (mean of
prediction − truth), R² (per band about the band's spatial mean, averaged over bands).

    PYTHONPATH=. python scripts/bench_downscale.py                      # 256, 512, 1024 x seeds 0 1 2
    PYTHONPATH=. python scripts/bench_downscale.py --sizes 256 --seeds 0 --repeats 1 --out /tmp/b.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

METHODS = ("bilinear", "cubic", "plain_rf", "rf_noweight", "sharpener", "fine_rf_oracle", "pydms")
SHIM_DIR = Path(__file__).resolve().parent / "osgeo_shim"
# pyDMS DecisionTreeSharpener options. "mw15" is the template of pyDMS's README (run_pyDMS.py:
# moving window of 15 coarse pixels, automatic homogeneity threshold, temperature in radiance,
# per-leaf linear regression, extrapolation 0.25); "global" is the same without local models.
# Each runs with residual correction (rows "_rc", run_pyDMS.py's doCorrection=True) and is also
# scored without it (same run, before the correction step).
PYDMS_COMMON = {
    "cvHomogeneityThreshold": 0,
    "disaggregatingTemperature": True,
    "perLeafLinearRegression": True,
    "linearRegressionExtrapolationRatio": 0.25,
}
PYDMS_CONFIGS = {"mw15": {"movingWindowSize": 15}, "global": {"movingWindowSize": 0}}
RF_METHODS = ("plain_rf", "rf_noweight", "sharpener")
N_BANDS = 6
SEASON = (0.35, 0.6, 0.85, 1.0, 0.8, 0.5)


# ------------------------------------------------------------------ scenes
def make_scene(size: int, seed: int) -> dict:
    """A synthetic scene (see the module docstring): predictors, coarse observation, truth."""
    from rasterio.warp import transform_bounds
    from scipy.ndimage import gaussian_filter

    from gee_alt.demo.fields import fractal_surface, smooth_field
    from gee_alt.grid import (
        DATONG_BBOX,
        MODIS_1KM,
        MODIS_SINUSOIDAL,
        bounds,
        coarsen,
        grid_from_bbox,
        modis_grid,
        shape_yx,
        subgrid,
    )
    from gee_alt.science.resample import aggregate
    from gee_alt.science.terrain import terrain_predictors
    from gee_alt.units import KELVIN_AT_0_DEGC

    rng = np.random.default_rng(np.random.SeedSequence([20250, seed, size]))
    study = grid_from_bbox(DATONG_BBOX, 30.0)
    sh, sw = shape_yx(study)
    r0 = int(rng.integers(0, max(1, sh - size)))
    c0 = int(rng.integers(0, max(1, sw - size)))
    fine = subgrid(study, c0, r0, size, size)
    coarse = modis_grid(fine, MODIS_1KM)
    # pad the truth so it covers every coarse pixel (sinusoidal pixels are sheared at 99 E)
    cl, cb, cr, ct = transform_bounds(MODIS_SINUSOIDAL, fine["crs"], *bounds(coarse), densify_pts=51)
    fl, fb, fr, ft = bounds(fine)
    pad = int(math.ceil(max(fl - cl, fb - cb, cr - fr, ct - ft) / 30.0)) + 8
    n_o = size + 2 * pad
    n_o += (-n_o) % 4
    outer = subgrid(study, c0 - pad, r0 - pad, n_o, n_o)
    inner = (slice(pad, pad + size), slice(pad, pad + size))

    # terrain
    yy, xx = np.mgrid[0:n_o, 0:n_o] / n_o - 0.5
    ang = rng.uniform(0, np.pi)
    across = -np.sin(ang) * xx + np.cos(ang) * yy
    valley = np.abs(across - 0.1 * np.sin(2 * np.pi * (np.cos(ang) * xx + np.sin(ang) * yy) * 1.5)) ** 0.9
    rough = fractal_surface((n_o, n_o), rng.uniform(2.9, 3.5), rng)
    z = valley / (valley.std() + 1e-9) + rng.uniform(0.6, 1.2) * rough
    lo, hi = np.percentile(z, [0.5, 99.5])
    relief = 500.0 + 900.0 * math.sqrt(size / 1024.0)
    dem = 3500.0 + relief * np.clip((z - lo) / (hi - lo), 0, 1.02)
    terr = terrain_predictors(dem, 30.0)
    names = list(terr)
    z_km = (dem - 4000.0) / 1000.0
    il = terr["illumination"].astype("float64")
    il = il - il.mean()
    rel = dem - gaussian_filter(dem, 25.0, mode="nearest")  # relative elevation (m), no predictor

    # vegetation
    bare = smooth_field((n_o, n_o), 15, rng) > rng.uniform(1.0, 1.4)
    ndvi = 0.62 - 0.22 * z_km - 0.004 * terr["slope_deg"] + 0.07 * smooth_field((n_o, n_o), 6, rng)
    ndvi = np.where(bare, 0.06 + 0.02 * smooth_field((n_o, n_o), 3, rng), ndvi)
    ndvi = np.clip(ndvi, 0.0, 0.9)
    dn = ndvi - 0.4

    # truth LST (degC), one band per composite
    persistent = 0.4 * smooth_field((n_o, n_o), 12, rng)
    gx, gy = rng.normal(0, 0.6, 2)
    truth = np.empty((N_BANDS, n_o, n_o), "float32")
    for b, s in enumerate(SEASON):
        t0 = 2.0 + 14.0 * s + rng.normal(0, 0.8)
        t = (
            t0
            + gx * xx
            + gy * yy
            - (5.0 + 2.0 * s) * z_km
            + (2.0 + 3.5 * s) * il
            - (3.0 + 6.0 * s) * dn
            + 3.0 * dn * z_km
            + 1.5 * s * (ndvi < 0.15)
            - 1.2 * (1.2 - s) / (1.0 + np.exp(rel / 30.0))  # cold-air pooling in hollows
            + persistent
            + 0.2 * smooth_field((n_o, n_o), 8, rng)
        )
        truth[b] = t

    # observation: radiance-like mean to 120 m, PSF blur, area mean onto the sinusoidal 1 km lattice, noise
    rad = (truth.astype("float64") + KELVIN_AT_0_DEGC) ** 4
    rad = rad.reshape(N_BANDS, n_o // 4, 4, n_o // 4, 4).mean(axis=(2, 4))
    rad = gaussian_filter(rad, (0, 2.0, 2.0), mode="nearest")
    mean, _, cover = aggregate(rad, coarsen(outer, 4), coarse, with_std=False)
    obs = mean**0.25 - KELVIN_AT_0_DEGC + rng.normal(0, 0.3, mean.shape)
    obs[:, cover < 0.99] = np.nan

    ndvi_obs = ndvi + rng.normal(0, 0.02, ndvi.shape)
    X = np.stack([terr[n][inner] for n in names] + [ndvi_obs[inner]]).astype("float32")
    return {
        "X": X,
        "names": names + ["ndvi"],
        "obs": obs.astype("float32"),
        "truth": truth[(slice(None), *inner)],
        "fine_grid": fine,
        "coarse_grid": coarse,
        "size": size,
        "seed": seed,
        "n_coarse_valid": int(np.isfinite(obs[0]).sum()),
    }


def seed_set_of(seed: int) -> str:
    """The seed set (tuning, untuned, fresh or other) a hard-scene seed belongs to."""
    import downscale_scenes as ds

    sets = {"tuning": ds.TUNING_SEEDS, "untuned": ds.UNTUNED_SEEDS, "fresh": ds.FRESH_SEEDS}
    return next((k for k, v in sets.items() if seed in v), "other")


def seeds_of_set(seed_set: str) -> list[int]:
    """The hard-scene seeds of ``--seed-set``: ``both`` is tuning + untuned, never the fresh ones."""
    import downscale_scenes as ds

    sets = {"tuning": ds.TUNING_SEEDS, "untuned": ds.UNTUNED_SEEDS, "fresh": ds.FRESH_SEEDS}
    names = ("tuning", "untuned") if seed_set == "both" else (seed_set,)
    return [s for n in names for s in sets[n]]


def extra_terrain(dem_m: np.ndarray, pixel_m: float, specs: list[str]) -> dict[str, np.ndarray]:
    """Experimental multi-scale terrain predictors: ``tpi:R`` (topographic position index) and
    ``hvf:R`` (height above the local valley floor), R the window's half-width in metres."""
    from gee_alt.science.terrain import height_above_valley_floor_m, topographic_position_m

    funcs = {"tpi": topographic_position_m, "hvf": height_above_valley_floor_m}
    out = {}
    for spec in specs:
        kind, _, radius = spec.partition(":")
        if kind not in funcs or not radius:
            raise SystemExit(f"error: --terrain-extra {spec!r}: expected tpi:METRES or hvf:METRES")
        out[f"{kind}_{radius}m"] = funcs[kind](dem_m, pixel_m, float(radius))
    return out


def make_hard_scene(size: int, seed: int, terrain_extra: list[str] | None = None) -> dict:
    """A scene of :mod:`downscale_scenes` (structure outside the model family; independent code),
    with the predictors ``gee-alt downscale --dem DEM --predictor NDVI`` derives (terrain + NDVI),
    plus the experimental :func:`extra_terrain` predictors named in ``terrain_extra``."""
    import downscale_scenes as ds

    from gee_alt.grid import make_grid
    from gee_alt.science.terrain import terrain_predictors

    sc = ds.make_scene(seed, size)
    terr = terrain_predictors(sc["dem"], ds.FINE_M)
    terr.update(extra_terrain(sc["dem"], ds.FINE_M, terrain_extra or []))
    names = list(terr) + ["ndvi"]
    X = np.stack([terr[n] for n in terr] + [sc["ndvi"]]).astype("float32")
    truth = sc["truth"]
    floors = {
        "explained": score(sc["explained"], truth)["rmse"],
        "explained_plus_residual": score(sc["oracle"], truth)["rmse"],
    }
    return {
        "X": X,
        "names": names,
        "obs": sc["obs"],
        "truth": truth,
        "fine_grid": make_grid(**sc["fine_grid"]),
        "coarse_grid": make_grid(**sc["coarse_grid"]),
        "size": size,
        "seed": seed,
        "n_coarse_valid": int(np.isfinite(sc["obs"]).all(axis=0).sum()),
        "kind": sc["kind"],
        "floor_rmse": min(floors.values()),
        "floors": floors,
        "set": seed_set_of(seed),
    }


def save_scene(path: Path, sc: dict) -> None:
    meta = {k: sc[k] for k in ("names", "fine_grid", "coarse_grid", "size", "seed", "n_coarse_valid")}
    np.savez(path, X=sc["X"], obs=sc["obs"], truth=sc["truth"], meta=json.dumps(meta))


def load_scene(path: Path, truth: bool = False) -> dict:
    from gee_alt.grid import make_grid

    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        sc = {"X": z["X"], "obs": z["obs"], **meta}
        if truth:
            sc["truth"] = z["truth"]
    for k in ("fine_grid", "coarse_grid"):
        g = sc[k]
        sc[k] = make_grid(g["crs"], g["crs_transform"], g["shape_2d"])
    return sc


# ------------------------------------------------------------------ scoring
def score(pred: np.ndarray, truth: np.ndarray) -> dict:
    """RMSE (pooled), bias (pred − truth), R² (per band, averaged), fraction of pixels scored."""
    ok = np.isfinite(pred) & np.isfinite(truth)
    r = np.where(ok, pred.astype("float64") - truth, 0.0)
    n = ok.sum()
    r2 = []
    for b in range(truth.shape[0]):
        t = truth[b][ok[b]].astype("float64")
        sst = np.sum((t - t.mean()) ** 2)
        r2.append(1.0 - np.sum(r[b][ok[b]] ** 2) / sst if sst > 0 else float("nan"))
    return {
        "rmse": float(np.sqrt(np.sum(r**2) / n)),
        "bias": float(np.sum(r) / n),
        "r2": float(np.mean(r2)),
        "scored_frac": float(n / ok.size),
    }


# ------------------------------------------------------------------ one case (child process)
def _status_mb(key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB. (``ru_maxrss`` is not used: Linux
    keeps it across ``execve``, so a child would report its parent's peak.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def run_method(sc: dict, method: str, n_jobs: int = 2, sharpener_kw: dict | None = None) -> tuple[np.ndarray, dict]:
    """Run one method on a loaded scene; returns (prediction (band, y, x), timings)."""
    from gee_alt.cube import geo_dataarray
    from gee_alt.science.resample import interpolate

    fine, coarse = sc["fine_grid"], sc["coarse_grid"]
    t0 = time.perf_counter()
    tfit = t0
    if method in ("bilinear", "cubic"):
        pred = interpolate(sc["obs"], coarse, fine, method)
        tfit = time.perf_counter()
    elif method == "plain_rf":
        from sklearn.ensemble import RandomForestRegressor

        from gee_alt.science.resample import aggregate

        X = sc["X"].astype("float64")
        mean, _, cover = aggregate(X, fine, coarse, with_std=False)
        Y = sc["obs"].astype("float64")
        ok = (cover >= 0.8) & np.all(np.isfinite(mean), axis=0) & np.all(np.isfinite(Y), axis=0)
        rf = RandomForestRegressor(
            n_estimators=40, min_samples_leaf=10, max_features=0.7, n_jobs=n_jobs, random_state=0
        ).fit(mean[:, ok].T, Y[:, ok].T)
        tfit = time.perf_counter()
        flat = X.reshape(X.shape[0], -1).T
        pred = rf.predict(flat).T.reshape(Y.shape[0], *X.shape[1:])
    elif method == "fine_rf_oracle":
        # NOT a method: a reference that cheats. The same forest trained at 30 m on the TRUTH (100 000
        # random pixels), then the usual residual correction: what the predictors could explain if the
        # fine-scale relation were identifiable from the coarse observation.
        from sklearn.ensemble import RandomForestRegressor

        from gee_alt.science.resample import aggregate, coverage_fraction, fill_nearest

        X = sc["X"].reshape(sc["X"].shape[0], -1).T
        T = sc["truth"].reshape(sc["truth"].shape[0], -1).T
        pick = np.random.default_rng(0).choice(len(X), min(100_000, len(X)), replace=False)
        rf = RandomForestRegressor(
            n_estimators=40, min_samples_leaf=10, max_features=0.7, n_jobs=n_jobs, random_state=0
        ).fit(X[pick], T[pick])
        tfit = time.perf_counter()
        pred = rf.predict(X).T.reshape(sc["truth"].shape).astype("float32")
        agg, _, _ = aggregate(pred, fine, coarse, radiance=True, with_std=False)
        cover = coverage_fraction(np.ones(pred.shape[1:], bool), fine, coarse)
        resid = np.where(cover >= 0.8, sc["obs"] - agg, np.nan)
        resid = np.stack([np.nan_to_num(fill_nearest(r), nan=0.0) for r in resid])
        pred = pred + interpolate(resid, coarse, fine, "bilinear")
        gaps = interpolate(np.where(np.isfinite(sc["obs"]), 1.0, np.nan), coarse, fine, "nearest")
        pred = np.where(np.isfinite(gaps), pred, np.nan)
    else:
        from gee_alt.science.sharpen import RandomForestSharpener

        kw = dict(radiance=True, n_jobs=n_jobs, random_state=0)
        X, names = sc["X"], sc["names"]
        if method == "sharpener":
            kw.update(sharpener_kw or {})
        if method == "rf_noweight":
            kw.update(linear_base=False, homogeneity_drop=0.0, residual_correction=False)
        Xda = geo_dataarray(X, fine, names, dim="feature")
        yda = geo_dataarray(sc["obs"], coarse, [f"c{b}" for b in range(sc["obs"].shape[0])])
        est = RandomForestSharpener(**kw).fit(Xda, yda)
        tfit = time.perf_counter()
        pred = est.predict(Xda).values
    t1 = time.perf_counter()
    return pred, {"wall_s": t1 - t0, "fit_s": tfit - t0, "predict_s": t1 - tfit}


# ------------------------------------------------------------------ pyDMS (a user's checkout)
def _write_tif(path: Path, data: np.ndarray, grid: dict) -> None:
    """A float32 GeoTIFF of ``data`` (band, y, x) on ``grid``, nodata NaN (how pyDMS's inputs are given)."""
    import rasterio

    from gee_alt.grid import affine_of

    profile = dict(
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype="float32",
        crs=grid["crs"],
        transform=affine_of(grid),
        nodata=float("nan"),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype("float32"))


def import_pydms(pydms_path: str, extra_paths: list[str]):
    """pyDMS's ``DecisionTreeSharpener`` from a user's checkout, on the osgeo shim (this process only)."""
    sys.path.insert(0, str(SHIM_DIR))
    sys.path.insert(0, str(Path(pydms_path).resolve()))
    sys.path.extend(str(Path(e).resolve()) for e in extra_paths)
    from pyDMS.pyDMS import DecisionTreeSharpener  # third party, user-supplied

    return DecisionTreeSharpener


def run_pydms(sc: dict, config: str, n_jobs: int, workdir: Path, sharpener_cls) -> tuple[dict, dict]:
    """pyDMS's DecisionTreeSharpener on one scene, one composite at a time (pyDMS sharpens band 1 of
    its low-resolution file), as run_pyDMS.py does: trainSharpener, applySharpener (local and global
    models combined by their residuals when ``movingWindowSize`` > 0), residualAnalysis with
    correction. Inputs: the fine predictors (the sharpener's, 7 bands) and the coarse LST in kelvin
    (``disaggregatingTemperature`` works in radiance, T^4) as NaN-nodata GeoTIFFs, written before the
    clock starts. Returns ({variant: prediction °C (band, y, x)}, timings)."""
    from gee_alt.units import KELVIN_AT_0_DEGC

    workdir.mkdir(parents=True, exist_ok=True)
    hr = workdir / "highres_predictors.tif"
    _write_tif(hr, sc["X"], sc["fine_grid"])
    lrs = []
    for b in range(sc["obs"].shape[0]):
        lr = workdir / f"lowres_lst_k_{b}.tif"
        _write_tif(lr, sc["obs"][b : b + 1] + KELVIN_AT_0_DEGC, sc["coarse_grid"])
        lrs.append(lr)
    opts = {**PYDMS_COMMON, **PYDMS_CONFIGS[config]}
    raw, corrected, band_s = [], [], []
    resid_s = 0.0
    t0 = time.perf_counter()
    for lr in lrs:
        tb = time.perf_counter()
        dms = sharpener_cls(
            highResFiles=[str(hr)],
            lowResFiles=[str(lr)],
            lowResQualityFiles=[],
            lowResGoodQualityFlags=[],
            regressorOpt={"random_state": 0},  # ties between equal splits; pyDMS leaves it unset
            baggingRegressorOpt={"n_jobs": n_jobs, "random_state": 0},
            **opts,
        )
        dms.trainSharpener()
        down = dms.applySharpener(str(hr), str(lr))
        tr = time.perf_counter()
        _, corr = dms.residualAnalysis(down, str(lr), None, doCorrection=True)
        resid_s += time.perf_counter() - tr
        raw.append(down.GetRasterBand(1).ReadAsArray())
        corrected.append(corr.GetRasterBand(1).ReadAsArray())
        band_s.append(time.perf_counter() - tb)
    wall = time.perf_counter() - t0
    preds = {
        f"{config}_rc": np.stack(corrected).astype("float32") - KELVIN_AT_0_DEGC,
        config: np.stack(raw).astype("float32") - KELVIN_AT_0_DEGC,
    }
    tm = {
        f"{config}_rc": {"wall_s": wall, "band_s": band_s},
        config: {"wall_s": wall - resid_s, "band_s": band_s},
    }
    return preds, tm


def child(
    scene_path: str,
    method: str,
    n_jobs: int,
    sharpener_kw: dict | None = None,
    pred_out: str | None = None,
    pydms: dict | None = None,
) -> None:
    load0 = os.getloadavg()[0]
    import sklearn.ensemble  # noqa: F401  (imports are not part of a method's memory)

    import gee_alt.cube  # noqa: F401
    import gee_alt.science.resample  # noqa: F401
    import gee_alt.science.sharpen  # noqa: F401

    sc = load_scene(Path(scene_path), truth=method == "fine_rf_oracle")
    if method == "pydms":
        cls = import_pydms(pydms["path"], pydms.get("extra", []))
        rss0 = _status_mb("VmRSS")
        work = Path(scene_path).with_suffix("") / f"pydms_{pydms['config']}"
        preds, tms = run_pydms(sc, pydms["config"], n_jobs, work, cls)
    else:
        rss0 = _status_mb("VmRSS")
        pred, tm = run_method(sc, method, n_jobs, sharpener_kw)
        preds, tms = {"": pred}, {"": tm}
    peak = _status_mb("VmHWM")
    truth = load_scene(Path(scene_path), truth=True)["truth"]
    for variant, pred in preds.items():
        if pred_out:
            np.save(f"{pred_out}{'.' + variant if variant else ''}.npy", pred.astype("float32"))
        out = {
            "variant": variant,
            **tms[variant],
            **score(pred, truth),
            "peak_rss_mb": peak,
            "rss_delta_mb": peak - rss0,
            "load1_before": load0,
            "load1_after": os.getloadavg()[0],
        }
        print("RESULT " + json.dumps(out))


def run_child(
    scene_path: Path,
    method: str,
    n_jobs: int,
    sharpener_kw: str = "{}",
    pred_out: Path | None = None,
    pydms: dict | None = None,
) -> list[dict]:
    """One method in a fresh process; one result per variant (pyDMS: with and without correction).
    BLAS/OpenMP threads are capped at ``n_jobs`` for every method alike."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env.setdefault(k, str(n_jobs))
    cmd = [sys.executable, __file__, "--child", str(scene_path), method, "--n-jobs", str(n_jobs)]
    cmd += ["--sharpener-kw", sharpener_kw]
    if pred_out is not None:
        cmd += ["--pred-out", str(pred_out)]
    if pydms is not None:
        cmd += ["--pydms-child", json.dumps(pydms)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"case {method} on {scene_path.name} failed:\n{p.stderr[-3000:]}")
    return [json.loads(ln[7:]) for ln in lines]


def common_scores(truth: np.ndarray, preds: dict[str, np.ndarray]) -> dict[str, dict]:
    """Scores of every prediction on the pixels where all of them (and the truth) are finite."""
    ok = np.isfinite(truth)
    for p in preds.values():
        ok &= np.isfinite(p)
    return {k: score(np.where(ok, p, np.nan), truth) for k, p in preds.items()}


# ------------------------------------------------------------------ main
def compare_with_pydms(scene_path: Path, pred_paths: dict, pyd_names: list[str], rows: dict) -> None:
    """The sharpener against every pyDMS variant on the pixels all of them predict (thick cloud
    leaves different gaps in each); the best pyDMS variant is the one of lowest RMSE there."""
    truth = load_scene(scene_path, truth=True)["truth"]
    preds = {n: np.load(pred_paths[n]) for n in ["sharpener", *pyd_names]}
    sc = common_scores(truth, preds)
    best = min(pyd_names, key=lambda n: sc[n]["rmse"])
    sh = rows["sharpener"]
    for n in ["sharpener", *pyd_names]:
        rows[n]["common"] = sc[n]
    sh["pydms_best"] = best
    sh["rmse_ratio_best_pydms"] = sc["sharpener"]["rmse"] / sc[best]["rmse"]
    sh["rmse_ratio_pydms"] = {n: sc["sharpener"]["rmse"] / sc[n]["rmse"] for n in pyd_names}
    sh["wall_ratio_best_pydms"] = sh["wall_s"] / rows[best]["wall_s"]
    sh["wall_ratio_pydms"] = {n: sh["wall_s"] / rows[n]["wall_s"] for n in pyd_names}
    print(
        f"      vs pyDMS (common pixels {sc['sharpener']['scored_frac']:.3f}): sharpener "
        f"{sc['sharpener']['rmse']:.3f}, "
        + ", ".join(f"{n} {sc[n]['rmse']:.3f}" for n in pyd_names)
        + f"; RMSE / best ({best}) {sh['rmse_ratio_best_pydms']:.3f}, wall / best {sh['wall_ratio_best_pydms']:.3f}",
        flush=True,
    )


def machine_info() -> dict:
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 1e6
    except OSError:
        pass
    import sklearn

    return {
        "cpu_count": os.cpu_count(),
        "mem_total_gb": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "loadavg_start": list(os.getloadavg()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--family",
        choices=("hard", "classic"),
        default="hard",
        help="hard: scripts/downscale_scenes.py (default); classic: the scene of this module",
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="hard: 1024; classic: 256 512 1024")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default: see --seed-set")
    ap.add_argument(
        "--seed-set",
        choices=("tuning", "untuned", "fresh", "both"),
        default="both",
        help="hard family: the tuning seeds, the untuned ones, both of these, or the fresh ones "
        "(2000-2003, never looked at while tuning; classic: seeds 0 1 2)",
    )
    ap.add_argument("--sharpener-kw", default="{}", help="JSON keyword arguments for the sharpener (experiments)")
    ap.add_argument(
        "--terrain-extra",
        nargs="*",
        default=[],
        metavar="KIND:METRES",
        help="hard scenes: extra predictors for every method (experiments): tpi:R, hvf:R (see BENCHMARKS.md §1b)",
    )
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--repeats", type=int, default=3, help="runs per case for timing (median); RF methods only")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/bench_downscale.json"))
    ap.add_argument(
        "--pydms-path",
        default=None,
        help="method pydms: a checkout of radosuav/pyDMS (the directory holding the pyDMS package)",
    )
    ap.add_argument(
        "--pydms-extra-path",
        nargs="*",
        default=[],
        help="directories appended to sys.path of the pyDMS process only (e.g. one holding numba)",
    )
    ap.add_argument(
        "--pydms-configs", nargs="+", default=list(PYDMS_CONFIGS), choices=list(PYDMS_CONFIGS), help="pyDMS runs"
    )
    ap.add_argument("--child", nargs=2, metavar=("SCENE", "METHOD"), help=argparse.SUPPRESS)
    ap.add_argument("--pred-out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--pydms-child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        pyd = json.loads(a.pydms_child) if a.pydms_child else None
        child(a.child[0], a.child[1], a.n_jobs, json.loads(a.sharpener_kw), a.pred_out, pyd)
        return 0
    if "pydms" in a.methods and not a.pydms_path:
        print("pydms: skipped (no --pydms-path: give a checkout of radosuav/pyDMS to compare with it)")
        a.methods = [m for m in a.methods if m != "pydms"]
    elif "pydms" in a.methods and not (Path(a.pydms_path) / "pyDMS" / "pyDMS.py").is_file():
        print(f"error: --pydms-path {a.pydms_path}: no pyDMS/pyDMS.py there", file=sys.stderr)
        return 2

    hard = a.family == "hard"
    if a.sizes is None:
        a.sizes = [1024] if hard else [256, 512, 1024]
    if a.seeds is None:
        a.seeds = seeds_of_set(a.seed_set) if hard else [0, 1, 2]

    info = machine_info()
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in a.sizes:
            for seed in a.seeds:
                t0 = time.perf_counter()
                sc = make_hard_scene(size, seed, a.terrain_extra) if hard else make_scene(size, seed)
                path = Path(tmp) / f"scene_{size}_{seed}.npz"
                save_scene(path, sc)
                gen_s = time.perf_counter() - t0
                meta = {
                    "size": size,
                    "seed": seed,
                    "n_features": int(sc["X"].shape[0]),
                    "n_bands": N_BANDS,
                    "coarse_shape": list(sc["obs"].shape[1:]),
                    "n_coarse_valid": sc["n_coarse_valid"],
                    "generate_s": round(gen_s, 2),
                    "family": a.family,
                    **{k: sc[k] for k in ("kind", "floor_rmse", "floors", "set") if k in sc},
                }
                del sc
                row_by_method = {}
                pred_paths = {}
                for m in a.methods:
                    reps = a.repeats if m in RF_METHODS else 1
                    if m == "pydms":
                        jobs = [
                            ({"path": a.pydms_path, "extra": a.pydms_extra_path, "config": c}, c)
                            for c in a.pydms_configs
                        ]
                    else:
                        jobs = [(None, "")]
                    for pyd, tag in jobs:
                        keep = m in ("sharpener", "pydms")
                        po = Path(tmp) / f"pred_{size}_{seed}_{m}{'_' + tag if tag else ''}" if keep else None
                        runs = [run_child(path, m, a.n_jobs, a.sharpener_kw, po, pyd) for _ in range(reps)]
                        for variant in [r["variant"] for r in runs[0]]:
                            vr = [next(x for x in r if x["variant"] == variant) for r in runs]
                            name = f"{m}_{variant}" if variant else m
                            if po is not None:
                                pred_paths[name] = f"{po}{'.' + variant if variant else ''}.npy"
                            walls = [r["wall_s"] for r in vr]
                            med = sorted(vr, key=lambda r: r["wall_s"])[len(vr) // 2]
                            row = {
                                **meta,
                                "method": name,
                                **{k: med[k] for k in ("rmse", "bias", "r2", "scored_frac")},
                                "wall_s": statistics.median(walls),
                                "wall_s_runs": walls,
                                **{k: med[k] for k in ("fit_s", "predict_s", "band_s") if k in med},
                                "peak_rss_mb": max(r["peak_rss_mb"] for r in vr),
                                "rss_delta_mb": max(r["rss_delta_mb"] for r in vr),
                                "load1": [round(r["load1_before"], 2) for r in vr],
                                "load1_after": [round(r["load1_after"], 2) for r in vr],
                            }
                            if len(row.get("band_s", [])) > 2:
                                # numba compiles pyDMS's kernels in the first composite of each process
                                row["jit_est_s"] = row["band_s"][0] - statistics.median(row["band_s"][1:])
                            row_by_method[name] = row
                            cases.append(row)
                            print(
                                f"{size:5d} {seed:5d} {name:16s} rmse {row['rmse']:.3f}  bias {row['bias']:+.3f}  "
                                f"r2 {row['r2']:.3f}  scored {row['scored_frac']:.3f}  wall {row['wall_s']:.2f}s  "
                                f"peak {row['peak_rss_mb']:.0f} MB  load {row['load1']}",
                                flush=True,
                            )
                if "bilinear" in row_by_method:
                    for row in row_by_method.values():
                        row["rmse_ratio_bilinear"] = row["rmse"] / row_by_method["bilinear"]["rmse"]
                if "plain_rf" in row_by_method:
                    for row in row_by_method.values():
                        row["rmse_ratio_plain_rf"] = row["rmse"] / row_by_method["plain_rf"]["rmse"]
                if "floor_rmse" in meta:
                    for row in row_by_method.values():
                        row["rmse_ratio_floor"] = row["rmse"] / meta["floor_rmse"]
                pyd_names = [n for n in pred_paths if n.startswith("pydms_")]
                if "sharpener" in pred_paths and pyd_names:
                    compare_with_pydms(path, pred_paths, pyd_names, row_by_method)
                for f in pred_paths.values():
                    Path(f).unlink(missing_ok=True)

    # targets
    sh = [c for c in cases if c["method"] == "sharpener"]
    targets = {}
    if sh and "bilinear" in a.methods:
        worst = max(c["rmse_ratio_bilinear"] for c in sh)
        targets["rmse_le_0.6_bilinear_every_scene"] = {"worst_ratio": worst, "met": worst <= 0.6}
    if sh and "plain_rf" in a.methods:
        worst = max(c["rmse_ratio_plain_rf"] for c in sh)
        targets["rmse_below_plain_rf_every_scene"] = {"worst_ratio": worst, "met": worst < 1.0}
    big = [c for c in sh if c["size"] == 1024]
    if big and not hard:
        worst = max(c["wall_s"] for c in big)
        targets["speed_1024_6bands_le_20s"] = {"worst_median_wall_s": worst, "met": worst <= 20.0}
    if hard:
        for st in ("tuning", "untuned", "fresh"):
            cs = [c for c in sh if c.get("set") == st]
            if not cs:
                continue
            mean_floor = float(np.mean([c["rmse_ratio_floor"] for c in cs]))
            targets[f"{st}_rmse_le_1.5_floor_mean"] = {"mean_ratio": mean_floor, "met": mean_floor <= 1.5}
            worst_bias = max(abs(c["bias"]) for c in cs)
            targets[f"{st}_abs_bias_le_0.05"] = {"worst_abs_bias": worst_bias, "met": worst_bias <= 0.05}
            cp = [c for c in cs if "rmse_ratio_best_pydms" in c]
            if cp:
                worst = max(c["rmse_ratio_best_pydms"] for c in cp)
                mean = float(np.mean([c["rmse_ratio_best_pydms"] for c in cp]))
                targets[f"{st}_rmse_le_0.8_best_pydms_every_scene"] = {"worst_ratio": worst, "met": worst <= 0.8}
                targets[f"{st}_rmse_le_0.7_best_pydms_mean"] = {"mean_ratio": mean, "met": mean <= 0.7}
                worst = max(c["wall_ratio_best_pydms"] for c in cp)
                targets[f"{st}_wall_le_0.2_best_pydms"] = {"worst_ratio": worst, "met": worst <= 0.2}
        if big:
            worst = max(c["wall_s"] for c in big)
            targets["speed_1024_6bands_le_12s"] = {"worst_median_wall_s": worst, "met": worst <= 12.0}
            peak = max(c["peak_rss_mb"] for c in big)
            targets["peak_rss_le_1GB"] = {"worst_peak_mb": peak, "met": peak <= 1000.0}
    info["loadavg_end"] = list(os.getloadavg())
    report = {
        "benchmark": "downscale",
        "synthetic": True,
        "machine": info,
        "methods": list(a.methods),
        "repeats": a.repeats,
        "n_jobs": a.n_jobs,
        "family": a.family,
        "sharpener_kw": json.loads(a.sharpener_kw),
        "terrain_extra": a.terrain_extra,
        "pydms": pydms_info(a) if any(c["method"].startswith("pydms_") for c in cases) else "not run",
        "cases": cases,
        "targets": targets,
        "summary": summarize(cases),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    return 0


def pydms_info(a) -> dict:
    """Where pyDMS came from (checkout, commit) and how it was run."""
    commit = None
    try:
        commit = subprocess.run(
            ["git", "-C", a.pydms_path, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "path": str(a.pydms_path),
        "commit": commit,
        "osgeo": "scripts/osgeo_shim (rasterio)",
        "configs": {c: {**PYDMS_COMMON, **PYDMS_CONFIGS[c]} for c in a.pydms_configs},
        "bagging": {"n_jobs": a.n_jobs, "random_state": 0, "n_estimators": "default (10)"},
        "tree": {"random_state": 0},
    }


def summarize(cases: list[dict]) -> list[dict]:
    """Per (size, seed set, method): mean RMSE/bias/R² and ratios over seeds, median wall time, max peak RSS."""
    out = []
    for size, st, m in sorted({(c["size"], c.get("set", "-"), c["method"]) for c in cases}):
        if True:
            cs = [c for c in cases if c["size"] == size and c.get("set", "-") == st and c["method"] == m]
            row = {
                "size": size,
                "set": st,
                "method": m,
                "n_seeds": len(cs),
                "rmse": float(np.mean([c["rmse"] for c in cs])),
                "bias": float(np.mean([c["bias"] for c in cs])),
                "r2": float(np.mean([c["r2"] for c in cs])),
                "wall_s": float(np.median([c["wall_s"] for c in cs])),
                "peak_rss_mb": float(max(c["peak_rss_mb"] for c in cs)),
                "rss_delta_mb": float(max(c["rss_delta_mb"] for c in cs)),
            }
            for k in (
                "rmse_ratio_bilinear",
                "rmse_ratio_plain_rf",
                "rmse_ratio_floor",
                "rmse_ratio_best_pydms",
                "wall_ratio_best_pydms",
            ):
                if k in cs[0]:
                    row[k + "_max"] = float(max(c[k] for c in cs))
                    row[k + "_mean"] = float(np.mean([c[k] for c in cs]))
            out.append(row)
    return out


def print_table(report: dict) -> None:
    nan = float("nan")
    print(
        f"\nsynthetic scenes ({report['family']}); machine: {report['machine']['cpu_count']} cores, "
        f"load {report['machine']['loadavg_start'][0]:.2f} -> {report['machine']['loadavg_end'][0]:.2f}"
    )
    print("per scene:")
    print(
        f"{'set':8} {'seed':>5} {'crs':10} {'method':12} {'RMSE °C':>8} {'bias':>7} {'R²':>6} {'/bil':>6} "
        f"{'/plainRF':>8} {'/floor':>6} {'wall s':>7} {'peak MB':>8}"
    )
    for c in report["cases"]:
        print(
            f"{c.get('set', '-'):8} {c['seed']:5d} {c.get('kind', '-'):10} {c['method']:12} {c['rmse']:8.3f} "
            f"{c['bias']:+7.3f} {c['r2']:6.3f} {c.get('rmse_ratio_bilinear', nan):6.3f} "
            f"{c.get('rmse_ratio_plain_rf', nan):8.3f} {c.get('rmse_ratio_floor', nan):6.3f} {c['wall_s']:7.2f} "
            f"{c['peak_rss_mb']:8.0f}"
        )
    print("means over seeds:")
    print(
        f"{'size':>5} {'set':8} {'method':12} {'RMSE °C':>8} {'bias':>7} {'R²':>6} {'/bil mean':>9} {'/bil max':>8} "
        f"{'/plainRF':>8} {'/floor':>6} {'wall s':>7} {'peak MB':>8}"
    )
    for r in report["summary"]:
        print(
            f"{r['size']:5d} {r['set']:8} {r['method']:12} {r['rmse']:8.3f} {r['bias']:+7.3f} {r['r2']:6.3f} "
            f"{r.get('rmse_ratio_bilinear_mean', nan):9.3f} {r.get('rmse_ratio_bilinear_max', nan):8.3f} "
            f"{r.get('rmse_ratio_plain_rf_mean', nan):8.3f} {r.get('rmse_ratio_floor_mean', nan):6.3f} "
            f"{r['wall_s']:7.2f} {r['peak_rss_mb']:8.0f}"
        )
    for k, v in report["targets"].items():
        print(f"target {k}: {'MET' if v['met'] else 'MISSED'} ({v})")


if __name__ == "__main__":
    raise SystemExit(main())
