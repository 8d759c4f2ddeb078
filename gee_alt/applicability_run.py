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
    """AOA + map-error estimate of a calibrated run held in memory; ``None`` without a DEM (no
    predictors). Inflates ``maps.alt_sd_m`` in place outside the area of applicability. The
    streamed pipeline uses :func:`prepare` and :class:`Applicability` row chunk by row chunk instead."""
    from gee_alt.cube import DDT_VAR

    alt = np.asarray(maps.alt_m)
    app = prepare(fields, calibrated, maps.grid, mapped_years=np.isfinite(alt).sum(axis=0))
    if app is None:
        return None
    ddt = np.asarray(cube[DDT_VAR].values)
    h = alt.shape[1]
    maps.alt_sd_m[:] = app.inflate(0, h, ddt, np.asarray(maps.alt_sd_m))
    app.add(0, h, ddt, alt)
    return app.finish(out, synthetic=synthetic)


#: map-error sums are exact in fixed point (DDT in units of 2^-24 degC day, integer sums), so they
#: do not depend on how the rows are chunked
_FIXED = float(2**24)


#: rows of a row chunk :meth:`Applicability.add` and :meth:`Applicability.inflate` take at a time
BLOCK_ROWS = 64


def _blocks(n: int, rows: int | None = None) -> list[tuple[int, int]]:
    """``(a, b)`` bounds of the consecutive blocks of ``rows`` (default :data:`BLOCK_ROWS`) rows covering ``0:n``."""
    step = rows or BLOCK_ROWS
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def _fixed_sum(a: np.ndarray) -> int:
    """Exact sum of non-negative float values (each rounded to 2^-24) as a Python int, per 2-D slice
    (int64 cannot overflow: < 2^63 / (5e4 * 2^24) ~ 1e10 values per slice)."""
    a = np.asarray(a, "float64").reshape(-1, a.shape[-1] * (a.shape[-2] if a.ndim > 1 else 1))
    return sum(int(v) for v in np.rint(a * _FIXED).astype(np.int64).sum(axis=1))


class Applicability:
    """The fitted area of applicability of a run and the accumulators of its map-error estimate.

    Built by :func:`prepare` (DI and inside on the 2-D grid, errors in E units from the
    calibration pairs); :meth:`inflate` and :meth:`add` take row chunks ``r0:r1`` of the
    ``(year, rows, x)`` DDT, ALT sd and ALT; :meth:`finish` writes ``aoa.tif`` and ``applicability.json``.
    """

    def __init__(
        self, grid, names, aoa, di, inside, lc, cs, sites, mse_in, mse_out, out_kind, loco, sd_e_tau, nndm, mse_px, ext
    ):
        self.grid, self.names, self.aoa, self.di, self.inside = grid, names, aoa, di, inside
        self.lc, self.cs, self.sites = lc, cs, sites
        self.mse_in, self.mse_out, self.out_kind, self.loco = mse_in, mse_out, out_kind, loco
        #: (sd_E, tau): the parameter and residual sd of E already in the ALT sd (:meth:`extra_rows`)
        self.e_sd, self.tau = sd_e_tau
        #: the NNDM map-error stratification: sampled (y, x) bool, mean squares, kind; or None
        self.nndm = nndm
        #: (y, x) float: the pixel's map-error mean square in E units (NNDM inside the AOA, the
        #: extrapolation term outside); ``ext`` what the extrapolation term is made of
        self.mse_px, self.ext = mse_px, ext
        self.s_px, self.s_px_in, self.s_px_out = 0, 0, 0
        self.n, self.n_in, self.n_out, self.s_in, self.s_out = 0, 0, 0, 0, 0
        self.s_sampled, self.s_unsampled, self.n_sampled, self.n_unsampled = 0, 0, 0, 0
        self.mapped = np.zeros(inside.shape, bool)

    def extra_rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of the variance added per unit DDT outside the AOA (E units, float64):
        max(0, MSE_E - sd_E^2 - tau^2), from the pixel's map-error mean square (not kept as a grid)."""
        return np.clip(self.mse_px[r0:r1] - self.e_sd**2 - self.tau**2, 0.0, None)

    def inflate(self, r0: int, r1: int, ddt: np.ndarray, alt_sd_m: np.ndarray) -> np.ndarray:
        """ALT sd (m) of rows ``r0:r1`` outside the AOA inflated: var += DDT * max(0, MSE_out - sd_E^2 - tau^2).
        :data:`BLOCK_ROWS` rows at a time (pixel by pixel: the same values, float64 temporaries of a block)."""
        out = np.empty_like(alt_sd_m)
        for a, b in _blocks(r1 - r0):
            out[:, a:b] = self._inflate_rows(r0 + a, r0 + b, ddt[:, a:b], alt_sd_m[:, a:b])
        return out

    def _inflate_rows(self, r0: int, r1: int, ddt: np.ndarray, alt_sd_m: np.ndarray) -> np.ndarray:
        out_px = ~self.inside[r0:r1]
        with np.errstate(invalid="ignore"):
            add = np.clip(ddt, 0, None) * self.extra_rows(r0, r1)[None]
            return np.where(out_px[None], np.sqrt(alt_sd_m.astype("float64") ** 2 + add), alt_sd_m).astype(
                alt_sd_m.dtype
            )

    def add(self, r0: int, r1: int, ddt: np.ndarray, alt_m: np.ndarray) -> None:
        """Accumulate the map-error sums over the pixel-years of rows ``r0:r1`` with a finite ALT and DDT,
        :data:`BLOCK_ROWS` rows at a time (exact sums: the same totals)."""
        for a, b in _blocks(r1 - r0):
            self._add_rows(r0 + a, r0 + b, ddt[:, a:b], alt_m[:, a:b])

    def _add_rows(self, r0: int, r1: int, ddt: np.ndarray, alt_m: np.ndarray) -> None:
        d = np.where(np.isfinite(alt_m), ddt, np.nan)
        fin = np.isfinite(d)
        dd = np.where(fin, np.clip(d, 0, None), 0.0)
        ins = np.broadcast_to(self.inside[r0:r1] & np.isfinite(self.di[r0:r1]), d.shape)
        self.n += int(fin.sum())
        self.n_in += int((ins & fin).sum())
        self.n_out += int((~ins & fin).sum())
        self.s_in += _fixed_sum(np.where(ins, dd, 0.0))
        self.s_out += _fixed_sum(np.where(~ins, dd, 0.0))
        dm = dd * self.mse_px[r0:r1][None]
        self.s_px_in += _fixed_sum(np.where(ins, dm, 0.0))
        self.s_px_out += _fixed_sum(np.where(~ins, dm, 0.0))
        if self.nndm is not None:
            samp = np.broadcast_to(self.nndm["sampled"][r0:r1], d.shape)
            self.s_sampled += _fixed_sum(np.where(samp, dd, 0.0))
            self.s_unsampled += _fixed_sum(np.where(~samp, dd, 0.0))
            self.n_sampled += int((samp & fin).sum())
            self.n_unsampled += int((~samp & fin).sum())
        self.mapped[r0:r1] |= np.isfinite(alt_m).any(axis=0)

    def map_error_nndm(self) -> dict | None:
        """Map RMSE (m) from the NNDM stratification (classes with / without sites), or None."""
        if self.nndm is None:
            return None
        n, n_s, n_u = self.n, self.n_sampled, self.n_unsampled
        s_s = self.s_sampled / _FIXED * self.nndm["mse_sampled"]
        s_u = self.s_unsampled / _FIXED * self.nndm["mse_unsampled"]
        return {
            "rmse_m": float(np.sqrt((s_s + s_u) / n)) if n else float("nan"),
            "rmse_sampled_classes_m": float(np.sqrt(s_s / n_s)) if n_s else float("nan"),
            "rmse_unsampled_classes_m": float(np.sqrt(s_u / n_u)) if n_u else float("nan"),
            "unsampled_classes_pixel_year_fraction": float(n_u / n) if n else float("nan"),
        }

    def map_error(self) -> dict:
        """AOA-stratified map RMSE (m), as :func:`gee_alt.science.applicability.map_error_estimate`."""
        s_in = self.s_in / _FIXED * self.mse_in
        s_out = self.s_out / _FIXED * self.mse_out
        n = self.n
        return {
            "rmse_m": float(np.sqrt((s_in + s_out) / n)) if n else float("nan"),
            "rmse_inside_m": float(np.sqrt(s_in / self.n_in)) if self.n_in else float("nan"),
            "rmse_outside_m": float(np.sqrt(s_out / self.n_out)) if self.n_out else float("nan"),
            "outside_fraction": float(self.n_out / n) if n else float("nan"),
        }

    def map_error_model(self) -> dict:
        """The reported map RMSE (m): each pixel-year's DDT times its map-error mean square in E
        units (NNDM inside the area of applicability, the extrapolation term outside)."""
        n, s_in, s_out = self.n, self.s_px_in / _FIXED, self.s_px_out / _FIXED
        return {
            "rmse_m": float(np.sqrt((s_in + s_out) / n)) if n else float("nan"),
            "rmse_inside_m": float(np.sqrt(s_in / self.n_in)) if self.n_in else float("nan"),
            "rmse_outside_m": float(np.sqrt(s_out / self.n_out)) if self.n_out else float("nan"),
            "outside_fraction": float(self.n_out / n) if n else float("nan"),
        }

    def _map_error_block(self) -> dict:
        aoa_err = self.map_error()
        nn = self.nndm
        est = self.map_error_model()
        cv = "NNDM LOO CV (Milà et al. 2022)" if nn is not None else "leave-one-site-out CV (NNDM not possible)"
        block = {
            **est,  # rmse_m (the one reported), rmse_inside_m, rmse_outside_m, outside_fraction
            "method": f"inside the area of applicability: {cv} of the deployed model in E units; outside it (and "
            "on classes without sites): max(that, the model-based extrapolation term sd_E^2 + sigma_E^2 + drift^2 "
            "+ tau2_U [class without sites]); each pixel-year weighted by its DDT",
            "extrapolation": self.ext,
            "aoa_stratified": aoa_err,
            "nndm": None if nn is None else nn["result"],
        }
        if nn is not None:
            block.update(
                {
                    "nndm_class_stratified": self.map_error_nndm(),
                    "mse_e_map_sampled_classes": nn["mse_sampled"],
                    "mse_e_map_unsampled_classes": nn["mse_unsampled"],
                }
            )
        return block

    def finish(self, out: str | Path, *, synthetic: bool = False) -> dict:
        """Write ``RUN/aoa.tif`` and ``RUN/applicability.json``; returns the JSON content."""
        from gee_alt.export.cog import write_cog

        di, inside, lc, cs = self.di, self.inside, self.lc, self.cs
        layer = np.empty((3, *di.shape), "float32")  # float32 bands straight away (no float64 stack)
        layer[0], layer[1], layer[2] = di, inside, np.sqrt(self.mse_px)
        layer[:, ~np.isfinite(di)] = np.nan
        write_cog(
            Path(out) / AOA_TIF,
            layer,
            self.grid,
            tags=runs.product_tags(
                "dissimilarity index of the calibration (Meyer & Pebesma 2021) and area of applicability",
                "1",
                synthetic=synthetic,
                predictors=",".join(self.names) + ",landcover (categorical)",
                threshold=f"{self.aoa.threshold_:.4f}",
                band3="expected RMS error of E at the pixel, m (degC day)^-0.5 (ALT error sd = band3 * sqrt(DDT))",
            ),
            band_descriptions=["dissimilarity_index", "inside_aoa", "map_error_rmse_E"],
        )
        del layer
        res = {
            "predictors": self.names
            + (["landcover (categorical: compared with sites of the same class)"] if lc is not None else []),
            "threshold_di": self.aoa.threshold_,
            "n_sites": len(self.sites),
            "site_classes": sorted({int(c) for c in cs if np.isfinite(c)}) if cs is not None else None,
            "inside_fraction": float(np.mean(inside[np.isfinite(di)])),
            "outside_by_class": (
                {
                    str(int(k)): float(np.mean(~inside[(lc == k) & np.isfinite(di)]))
                    for k in np.unique(lc[np.isfinite(lc)])
                }
                if lc is not None
                else None
            ),
            "map_error": {
                **self._map_error_block(),
                "mse_e_inside": self.mse_in,
                "mse_e_outside": self.mse_out,
                "inside_from": (
                    "NNDM LOO CV of the deployed model (E units)"
                    if self.nndm is not None
                    else "leave-one-site-out CV of the deployed model (E units)"
                ),
                "outside_from": "the model-based extrapolation term (parameter + residual variance of E, squared "
                "covariate drift of E, upper limit of the between-class variance on classes without sites), at "
                "least the sites' CV",
                "class_holdout_kind": self.out_kind,
                "class_holdout": self.loco,
                "note": "the site LOO alone is not map accuracy (sites sit where people can reach): outside the "
                "area of applicability the error is a model-based extrapolation term, not a cross-validation",
                **_unsampled(lc, cs, self.mapped & np.isfinite(di), self.ext["between_class"]["tau2_upper"]),
            },
            "alt_sd_outside": "var += DDT * max(0, MSE_E - sd_E^2 - tau^2), MSE_E the pixel's map-error mean square "
            f"in E units ({runs.AOA_TIF} band 3 squared): max(NNDM (or site LOO), sd_E^2 + sigma_E^2 + drift^2 "
            "+ tau2_U [class without sites])",
        }
        write_json_atomic(Path(out) / APPLICABILITY_JSON, res)
        return res


#: rows of predictors per AOA prediction call (the DI needs a site-distance matrix per pixel)
AOA_ROWS = 64


def prepare(fields, calibrated, grid, mapped_years: np.ndarray | None = None) -> Applicability | None:
    """Fit the area of applicability of a calibrated run (DI and inside per pixel, 2-D) and its
    errors in E units; ``None`` without a DEM or with fewer than 3 calibration pairs.

    ``mapped_years`` ((y, x) int: how many years each pixel gets an ALT) places the NNDM CV's
    prediction points (Milà et al. 2022) where the map is; without it only the AOA-stratified
    estimate is made."""
    from gee_alt.grid import pixel_size
    from gee_alt.science.applicability import (
        AreaOfApplicability,
        class_holdout_mse_e,
        nndm_exclusions,
        nndm_mse_e,
        predictors,
    )

    if fields.dem_m is None:
        return None
    summ = calibrated.summary
    pairs = summ.get("pairs") or []
    if len(pairs) < 3:
        return None
    pred = predictors(fields.dem_m, fields.ndvi_mean, pixel_size(grid))
    names = list(pred)
    h, w = fields.dem_m.shape
    site_ids = {p["site_id"] for p in pairs}
    px = _site_pixels(grid, calibrated.table, site_ids)
    sites = sorted(px)
    xs = np.array([[pred[k][px[s]] for k in names] for s in sites])
    lc = fields.landcover
    cs = None if lc is None else np.array([lc[px[s]] for s in sites])
    aoa = AreaOfApplicability().fit(xs, cs)
    # errors in E units: site LOO inside, leave-one-class-out outside. With an E of disturbed ground
    # (pairs flagged "disturbed"), CV folds refit it; the land-cover terms (class hold-out, drift,
    # between-class variance) are of undisturbed ground: the disturbed site-years have their own E.
    dist = np.array([bool(p.get("disturbed")) for p in pairs])
    dist_cv = dist if summ.get("E_disturbed") is not None else None
    und = ~dist if dist_cv is not None else np.ones(len(pairs), bool)
    x = np.sqrt(np.clip([p["ddt_degc_days"] for p in pairs], 0, None))
    y = np.array([p["alt_obs_m"] for p in pairs])
    loo = np.array([np.nan if p["alt_loo_m"] is None else p["alt_loo_m"] for p in pairs], float)  # null in JSON
    cens = np.array([p["censored"] or "" for p in pairs], dtype=object)
    ex = (cens == "") & np.isfinite(loo) & (x > 0)
    mse_in = float(np.mean(((loo[ex] - y[ex]) / x[ex]) ** 2))
    classes = [p.get("class") for p in pairs]
    if lc is not None and all(c is not None for c in classes) and len(set(classes)) >= 2:
        loco = class_holdout_mse_e(
            x[und],
            y[und],
            np.array(classes, dtype=object)[und],
            np.array([p["site_id"] for p in pairs], dtype=object)[und],
            censored=cens[und],
            deployed_classes=[int(k) if str(k).lstrip("-").isdigit() else k for k in summ.get("E_by_class") or {}],
        )
        mse_out, out_kind = max(loco["mse_e"], mse_in), "leave-one-land-cover-class-out CV (E units)"
    else:
        loco, mse_out, out_kind = None, mse_in, "no land-cover classes: site LOO used outside too (not conservative)"
    nn = None
    if mapped_years is not None:
        # NNDM LOO CV (Milà et al. 2022): folds whose held-out-to-training distances in predictor
        # space match the mapped pixels' distances to the nearest site, so the CV error is the map's
        res = _nndm(
            aoa, pred, names, mapped_years, px, sites, pairs, x, y, cens, summ, nndm_exclusions, nndm_mse_e, dist_cv
        )
        if res is not None and np.isfinite(res["mse_e"]):
            sampled = (
                _in_classes(lc, [int(c) for c in cs if np.isfinite(c)])
                if lc is not None and cs is not None
                else np.ones((h, w), bool)
            )
            nn = {
                "result": res,
                "sampled": sampled,
                "mse_sampled": res["mse_e"],
                "mse_unsampled": max(res["mse_e"], mse_out),
            }
    # where the calibration does not apply: the model-based extrapolation term (E units)
    e_sd = float(summ.get("E_sd") or 0.0)
    tau = float(summ.get("resid_E_sd") or 0.0) if np.isfinite(summ.get("resid_E_sd") or np.nan) else 0.0
    ext = _extrapolation(
        aoa,
        pred,
        names,
        px,
        sites,
        [p for p, u in zip(pairs, und, strict=True) if u],
        cs,
        lc,
        e_sd,
        tau,
        (h, w),
        float(summ["E"]),
        summ.get("E_by_class"),
    )
    di, inside = _dissimilarity(aoa, pred, names, lc)  # after the NNDM draw: not beside its temporaries
    del pred
    mse_cv = mse_in if nn is None else nn["mse_sampled"]  # the sites' CV: NNDM (else site LOO)
    mse_px = ext.pop("mse_px")  # in place: max(the sites' CV, the extrapolation term) outside, the CV inside
    np.maximum(mse_px, mse_cv, out=mse_px)
    mse_px[inside] = mse_cv
    # ALT sd outside the AOA: var += DDT * max(0, MSE_E - sd_E^2 - tau^2) (the parameter and residual
    # parts are already in the sd), MSE_E the pixel's map-error mean square in E units
    return Applicability(
        grid, names, aoa, di, inside, lc, cs, sites, mse_in, mse_out, out_kind, loco, (e_sd, tau), nn, mse_px, ext
    )


def _dissimilarity(aoa, pred: dict, names: list[str], lc: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(di, inside)`` per pixel: the dissimilarity index (float32, as ``aoa.tif`` holds it) and
    inside the area of applicability (from the float64 DI), :data:`AOA_ROWS` rows at a time (the
    DI's site-distance queries and the predictors' float64 stack stay small)."""
    h, w = pred[names[0]].shape
    di = np.empty((h, w), "float32")
    inside = np.empty((h, w), bool)
    for r0, r1 in _blocks(h, AOA_ROWS):
        block = np.stack([pred[k][r0:r1] for k in names], axis=-1).reshape(-1, len(names))
        d, i = aoa.predict(block, None if lc is None else lc[r0:r1].ravel())
        di[r0:r1], inside[r0:r1] = d.reshape(r1 - r0, w), i.reshape(r1 - r0, w)
    return di, inside


def _in_classes(lc: np.ndarray, classes: list[int]) -> np.ndarray:
    """``(y, x)`` bool: the pixel's land-cover class (NaN: -1) is one of ``classes``; by row blocks
    (the int64 classes of a block, not of the whole grid)."""
    out = np.empty(lc.shape, bool)
    for r0, r1 in _blocks(lc.shape[0], AOA_ROWS):
        r = slice(r0, r1)
        out[r] = np.isin(np.nan_to_num(lc[r], nan=-1).astype(int), classes)
    return out


def _site_e_units(pairs, sites) -> np.ndarray:
    """Each site's least-squares E (m (°C·day)^-½) over its exact (uncensored) pairs; NaN without any."""
    out = np.full(len(sites), np.nan)
    for i, s in enumerate(sites):
        q = [p for p in pairs if p["site_id"] == s and not p["censored"] and p["ddt_degc_days"] > 0]
        if q:
            x = np.sqrt([p["ddt_degc_days"] for p in q])
            y = np.array([p["alt_obs_m"] for p in q])
            out[i] = float(x @ y / (x @ x))
    return out


def _extrapolation(aoa, pred, names, px, sites, pairs, cs, lc, e_sd, tau, shape, e_pool, e_by_class) -> dict:
    """The model-based extrapolation term (:func:`gee_alt.science.applicability.extrapolation_mse_e`)
    per pixel (``mse_px``, (y, x), E units) and what it is made of (JSON-ready)."""
    from gee_alt.science.applicability import TAU2_LEVEL, EDrift, extrapolation_mse_e, tau2_upper

    h, w = shape
    e_site = _site_e_units(pairs, sites)
    xs = np.array([[pred[k][px[s]] for k in names] for s in sites]) / aoa.scale_
    # the drift is of the deployed E: each site's E minus the E the map uses for its class
    e_by = {str(k): float(v) for k, v in (e_by_class or {}).items()}
    e_dep = np.array(
        [
            e_by.get(str(int(c)), e_pool) if cs is not None and np.isfinite(c) else e_pool
            for c in (cs if cs is not None else [np.nan] * len(sites))
        ]
    )
    drift = EDrift().fit(xs, e_site - e_dep)
    by_class, tau2_u = {}, float("nan")
    unsampled = np.zeros((h, w), bool)
    if cs is not None and lc is not None:
        for k in sorted({int(c) for c in cs if np.isfinite(c)}):
            ek = e_site[(cs == k) & np.isfinite(e_site)]
            if ek.size == 0:  # the class's sites have only disturbed site-years (their own E)
                continue
            se = float(np.std(ek, ddof=1) / np.sqrt(ek.size)) if ek.size >= 2 else float("nan")
            by_class[str(k)] = {"n_sites": int(ek.size), "mean_site_E": float(ek.mean()) if ek.size else None, "se": se}
        tau2_u = tau2_upper(
            [v["mean_site_E"] if v["mean_site_E"] is not None else np.nan for v in by_class.values()],
            [v["se"] for v in by_class.values()],
        )
        unsampled = np.isfinite(lc) & ~_in_classes(lc, [int(k) for k in by_class])
    mse = np.empty((h, w))
    for r0, r1 in _blocks(h, AOA_ROWS):  # row blocks: the drift's and the sum's float64 temporaries stay small
        d_px = np.zeros((r1 - r0, w))
        if drift.used_:
            block = np.stack([pred[k][r0:r1] for k in names], axis=-1).reshape(-1, len(names)) / aoa.scale_
            d_px = drift.predict(block).reshape(r1 - r0, w)
        mse[r0:r1] = extrapolation_mse_e(e_sd, tau, d_px, unsampled[r0:r1], tau2_u)
    return {
        "mse_px": mse,
        "formula": "MSE_E,out = sd_E^2 + sigma_E^2 + drift^2 + tau2_U * [class without sites]; outside the AOA "
        "the map-error mean square is max(NNDM (or site LOO), MSE_E,out)",
        "sd_E": e_sd,
        "sigma_E": tau,
        "drift": {
            "model": "site E - deployed E of its class = a + beta . (x - mean x), OLS on the scaled AOA predictors; "
            "drift = a + beta . (x - mean x)",
            "intercept": drift.e_mean_ if drift.used_ else 0.0,
            "predictors": list(names),
            "n_sites": drift.n_,
            "coef_per_scaled_unit": [float(c) for c in drift.coef_],
            "loo_rmse_E": drift.loo_rmse_,
            "loo_rmse_E_site_mean": drift.loo_rmse_mean_,
            "used": drift.used_,
            "rule": "used only when it lowers the leave-one-site-out error of site E",
        },
        "between_class": {
            "tau2_upper": tau2_u,
            "level": TAU2_LEVEL,
            "method": "Q-profile one-sided upper confidence limit (Viechtbauer 2007) of the between-class "
            "variance of the class means of site-level E; an upper quantile, not the point estimate (few classes)",
            "classes": by_class,
            "applies_to": "pixels whose land-cover class has no calibration site",
        },
    }


def _nndm(aoa, pred, names, mapped_years, px, sites, pairs, x, y, cens, summ, nndm_exclusions, nndm_mse_e, dist=None):
    """NNDM exclusion sets in the area-of-applicability's scaled predictor space (prediction points:
    up to 5000 mapped pixels drawn with probability ∝ their mapped years, seed 0) and the NNDM CV
    mean square of the deployed model in E units; ``None`` when nothing is mapped."""
    idx = _draw_mapped(mapped_years, [pred[k] for k in names], 5000)
    if idx is None or len(sites) < 4:
        return None
    xp = np.stack([np.asarray(pred[k]).ravel()[idx] for k in names], axis=-1) / aoa.scale_
    xs = np.array([[pred[k][px[s]] for k in names] for s in sites]) / aoa.scale_
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
        disturbed=dist,
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


def _draw_mapped(mapped_years: np.ndarray, pred: list[np.ndarray], n: int) -> np.ndarray | None:
    """Flat indices of up to ``n`` pixels drawn without replacement with probability ∝ their mapped
    years among those with every predictor finite (``numpy.random.default_rng(0).choice``); None
    when nothing is mapped. The draw is over those pixels only (never a whole-grid float64 of
    probabilities): the same pixels as over the whole grid, whose other pixels have probability 0
    (choice's cumulative sums of ``p`` are those of the nonzero entries, exactly)."""
    finite = np.isfinite(pred[0])
    for v in pred[1:]:
        finite &= np.isfinite(v)
    flat = np.asarray(mapped_years).ravel()
    keep = np.flatnonzero(finite.ravel() & (flat > 0))
    del finite
    w = flat[keep].astype(float)
    total = w.sum()  # a sum of integer counts: exact in any order
    if total <= 0:
        return None
    w /= total
    return keep[np.random.default_rng(0).choice(keep.size, size=min(n, keep.size), replace=False, p=w)]


def _unsampled(
    lc: np.ndarray | None, site_classes: np.ndarray | None, mapped: np.ndarray, tau2_u: float = float("nan")
) -> dict:
    """Land-cover classes on the map with no calibration site, and their share of the mapped pixels.

    Where such ground is mapped, no cross-validation of the sites can measure the error there (E is
    carried over from other ground): the estimate there rests on the between-class term ``tau2_u``;
    without it (fewer than two classes with sites) the map-error estimate is a lower bound
    (``lower_bound``)."""
    if lc is None or site_classes is None:
        return {"unsampled_classes": None, "unsampled_fraction": None, "lower_bound": False}
    sampled = {int(c) for c in site_classes if np.isfinite(c)}
    on_map = lc[mapped & np.isfinite(lc)].astype(int)
    missing = sorted(int(k) for k in np.unique(on_map) if int(k) not in sampled)
    frac = float(np.isin(on_map, missing).mean()) if on_map.size else 0.0
    return {
        "unsampled_classes": missing,
        "unsampled_fraction": frac,
        "lower_bound": bool(missing) and not np.isfinite(tau2_u),
        "unsampled_from": "model-based: between-class variance upper limit tau2_U" if np.isfinite(tau2_u) else None,
    }
