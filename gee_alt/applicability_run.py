"""The calibration's area of applicability on a run (see :mod:`gee_alt.science.applicability`).

:func:`assess` is called by the pipeline between the ALT maps and their writing: it writes
``RUN/aoa.tif`` (band 1 dissimilarity index, band 2 inside the area of applicability 1/0) and
``RUN/applicability.json`` (threshold, map-error estimate), and inflates the ALT sd outside the
area of applicability in place (the leave-one-class-out error replaces the residual spread).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.io import write_json_atomic

AOA_TIF, APPLICABILITY_JSON = runs.AOA_TIF, runs.APPLICABILITY_JSON


def _site_pixels(grid, table, site_ids) -> dict[str, tuple[int, int]]:
    from gee_alt.grid import lonlat_to_rowcol

    r, c = lonlat_to_rowcol(grid, table.lon, table.lat)
    h, w = grid["shape_2d"][1], grid["shape_2d"][0]
    out = {}
    for s, ri, ci in zip(np.asarray(table.site_id).astype(str), r, c, strict=True):
        if s in site_ids and np.isfinite(ri) and np.isfinite(ci) and 0 <= ri < h and 0 <= ci < w:
            out.setdefault(s, (int(ri), int(ci)))
    return out


def assess(out: str | Path, cube, fields, calibrated, maps, *, synthetic: bool = False) -> dict | None:
    """AOA + map-error estimate of a calibrated run; ``None`` without a DEM (no predictors)."""
    from gee_alt.cube import DDT_VAR
    from gee_alt.export.cog import write_cog
    from gee_alt.grid import pixel_size
    from gee_alt.science.applicability import (
        AreaOfApplicability,
        class_holdout_mse_e,
        map_error_estimate,
        nndm_exclusions,
        nndm_mse_e,
        predictors,
    )

    if fields.dem_m is None:
        return None
    grid = maps.grid
    summ = calibrated.summary
    pairs = summ.get("pairs") or []
    if len(pairs) < 3:
        return None
    pred = predictors(fields.dem_m, fields.ndvi_mean, pixel_size(grid))
    names = list(pred)
    stack = np.stack([pred[k] for k in names], axis=-1)
    site_ids = {p["site_id"] for p in pairs}
    px = _site_pixels(grid, calibrated.table, site_ids)
    sites = sorted(px)
    xs = np.array([stack[px[s]] for s in sites])
    lc = fields.landcover
    cs = None if lc is None else np.array([lc[px[s]] for s in sites])
    aoa = AreaOfApplicability().fit(xs, cs)
    di, inside = aoa.predict(stack.reshape(-1, len(names)), None if lc is None else lc.ravel())
    di, inside = di.reshape(fields.dem_m.shape), inside.reshape(fields.dem_m.shape)
    # errors in E units: site LOO inside, leave-one-class-out outside
    x = np.sqrt(np.clip([p["ddt_degc_days"] for p in pairs], 0, None))
    y = np.array([p["alt_obs_m"] for p in pairs])
    loo = np.array([p["alt_loo_m"] for p in pairs])
    cens = np.array([p["censored"] or "" for p in pairs], dtype=object)
    ex = (cens == "") & np.isfinite(loo) & (x > 0)
    mse_in = float(np.mean(((loo[ex] - y[ex]) / x[ex]) ** 2))
    classes = [p.get("class") for p in pairs]
    if lc is not None and all(c is not None for c in classes) and len(set(classes)) >= 2:
        loco = class_holdout_mse_e(
            x,
            y,
            np.array(classes, dtype=object),
            np.array([p["site_id"] for p in pairs], dtype=object),
            censored=cens,
            deployed_classes=[int(k) if str(k).lstrip("-").isdigit() else k for k in summ.get("E_by_class") or {}],
        )
        mse_out, out_kind = max(loco["mse_e"], mse_in), "leave-one-land-cover-class-out CV (E units)"
    else:
        loco, mse_out, out_kind = None, mse_in, "no land-cover classes: site LOO used outside too (not conservative)"
    ddt = cube[DDT_VAR].values
    mapped_years = np.isfinite(maps.alt_m).sum(axis=0)
    err_aoa = map_error_estimate(
        np.where(np.isfinite(maps.alt_m), ddt, np.nan), inside & np.isfinite(di), mse_in, mse_out
    )
    # NNDM LOO CV (Milà et al. 2022): folds whose held-out-to-training distances in predictor space
    # match the mapped pixels' distances to the nearest site, so the CV error is that of the map
    nn = _nndm(aoa, stack, mapped_years, px, sites, pairs, x, y, cens, summ, nndm_exclusions, nndm_mse_e)
    sampled = (
        np.isin(np.nan_to_num(lc, nan=-1).astype(int), [int(c) for c in cs if np.isfinite(c)])
        if lc is not None and cs is not None
        else np.ones(fields.dem_m.shape, bool)
    )
    if nn is not None and np.isfinite(nn["mse_e"]):
        mse_map_sampled = nn["mse_e"]
        mse_map_unsampled = max(nn["mse_e"], mse_out)
        err = map_error_estimate(
            np.where(np.isfinite(maps.alt_m), ddt, np.nan), sampled, mse_map_sampled, mse_map_unsampled
        )
        err_kind = (
            "NNDM LOO CV (Milà et al. 2022) of the deployed model in E units on land-cover classes with sites; "
            "max(NNDM, leave-one-class-out) on classes without sites; weighted by each pixel-year's DDT"
        )
    else:
        mse_map_sampled, mse_map_unsampled = mse_in, mse_out
        err = err_aoa
        err_kind = "AOA-stratified: site LOO inside, leave-one-class-out outside (NNDM not possible)"
    # inflate the ALT sd outside the area of applicability: var += DDT * max(0, MSE_E - sd_E^2 - tau^2),
    # MSE_E the map-error estimate's mean square in E units for the pixel's stratum
    e_sd = float(summ.get("E_sd") or 0.0)
    tau = float(summ.get("resid_E_sd") or 0.0) if np.isfinite(summ.get("resid_E_sd") or np.nan) else 0.0
    mse_px = np.where(sampled, max(mse_map_sampled, mse_in), max(mse_map_unsampled, mse_out))
    extra = np.clip(mse_px - e_sd**2 - tau**2, 0.0, None)
    out_px = ~inside
    with np.errstate(invalid="ignore"):
        add = np.clip(ddt, 0, None) * extra[None]
        maps.alt_sd_m[:] = np.where(out_px[None], np.sqrt(maps.alt_sd_m.astype("float64") ** 2 + add), maps.alt_sd_m)
    layer = np.stack([di, inside.astype("float32")]).astype("float32")
    layer[:, ~np.isfinite(di)] = np.nan
    write_cog(
        Path(out) / AOA_TIF,
        layer,
        grid,
        tags=runs.product_tags(
            "dissimilarity index of the calibration (Meyer & Pebesma 2021) and area of applicability",
            "1",
            synthetic=synthetic,
            predictors=",".join(names) + ",landcover (categorical)",
            threshold=f"{aoa.threshold_:.4f}",
        ),
        band_descriptions=["dissimilarity_index", "inside_aoa"],
    )
    res = {
        "predictors": names
        + (["landcover (categorical: compared with sites of the same class)"] if lc is not None else []),
        "threshold_di": aoa.threshold_,
        "n_sites": len(sites),
        "site_classes": sorted({int(c) for c in cs if np.isfinite(c)}) if cs is not None else None,
        "inside_fraction": float(np.mean(inside[np.isfinite(di)])),
        "outside_by_class": (
            {str(int(k)): float(np.mean(~inside[(lc == k) & np.isfinite(di)])) for k in np.unique(lc[np.isfinite(lc)])}
            if lc is not None
            else None
        ),
        "map_error": {
            **err,
            "method": err_kind,
            "nndm": nn,
            "mse_e_map_sampled_classes": mse_map_sampled,
            "mse_e_map_unsampled_classes": mse_map_unsampled,
            "aoa_stratified": err_aoa,
            "mse_e_inside": mse_in,
            "mse_e_outside": mse_out,
            "inside_from": "leave-one-site-out CV of the deployed model (E units)",
            "outside_from": out_kind,
            "class_holdout": loco,
            "note": "AOA-stratified map-error estimate (the site LOO alone is not map accuracy: sites sit "
            "where people can reach)",
            **_unsampled(lc, cs, np.isfinite(maps.alt_m).any(axis=0) & np.isfinite(di)),
        },
        "alt_sd_outside": "var += DDT * max(0, MSE_E - sd_E^2 - tau^2), MSE_E the map-error mean square (E units) "
        "of the pixel's stratum (classes with sites: max(NNDM, site LOO); without: max(NNDM, class hold-out))",
    }
    write_json_atomic(Path(out) / APPLICABILITY_JSON, res)
    return res


def _nndm(aoa, stack, mapped_years, px, sites, pairs, x, y, cens, summ, nndm_exclusions, nndm_mse_e):
    """NNDM exclusion sets in the area-of-applicability's scaled predictor space (prediction points:
    up to 5000 mapped pixels drawn with probability ∝ their mapped years, seed 0) and the NNDM CV
    mean square of the deployed model in E units; ``None`` when nothing is mapped."""
    flat = stack.reshape(-1, stack.shape[-1])
    w = mapped_years.ravel().astype(float) * np.all(np.isfinite(flat), axis=1)
    if w.sum() <= 0 or len(sites) < 4:
        return None
    rng = np.random.default_rng(0)
    idx = rng.choice(w.size, size=min(5000, int((w > 0).sum())), replace=False, p=w / w.sum())
    xp = flat[idx] / aoa.scale_
    xs = np.array([stack[px[s]] for s in sites]) / aoa.scale_
    fin = np.all(np.isfinite(xs), axis=1)
    ok_sites = [s for s, f in zip(sites, fin, strict=True) if f]
    res = nndm_exclusions(xs[fin], xp)
    excl = {s: {ok_sites[j] for j in res["exclude"][i]} for i, s in enumerate(ok_sites)}
    classes = [p.get("class") for p in pairs]
    deployed = [int(k) if str(k).lstrip("-").isdigit() else k for k in summ.get("E_by_class") or {}]
    cv = nndm_mse_e(
        x,
        y,
        np.array([p["site_id"] for p in pairs]),
        excl,
        censored=cens,
        classes=np.array(classes, dtype=object) if all(c is not None for c in classes) else None,
        deployed_classes=deployed,
    )
    return {
        **cv,
        "w_loo": res["w_loo"],
        "w_nndm": res["w"],
        "mean_excluded_sites": float(np.mean([len(e) - 1 for e in res["exclude"]])),
        "median_distance_prediction": float(np.median(res["nnd_pred"])),
        "median_distance_cv": float(np.median(res["nnd_cv"])),
        "reference": "Milà, Mateu, Pebesma & Meyer 2022, Methods Ecol. Evol. 13:1304 (NNDM LOO CV)",
    }


def _unsampled(lc: np.ndarray | None, site_classes: np.ndarray | None, mapped: np.ndarray) -> dict:
    """Land-cover classes on the map with no calibration site, and their share of the mapped pixels.

    Where such ground is mapped, no cross-validation of the sites can measure the error there (E is
    carried over from other ground), so the map-error estimate is a lower bound: ``lower_bound``."""
    if lc is None or site_classes is None:
        return {"unsampled_classes": None, "unsampled_fraction": None, "lower_bound": False}
    sampled = {int(c) for c in site_classes if np.isfinite(c)}
    on_map = lc[mapped & np.isfinite(lc)].astype(int)
    missing = sorted(int(k) for k in np.unique(on_map) if int(k) not in sampled)
    frac = float(np.isin(on_map, missing).mean()) if on_map.size else 0.0
    return {"unsampled_classes": missing, "unsampled_fraction": frac, "lower_bound": bool(missing)}
