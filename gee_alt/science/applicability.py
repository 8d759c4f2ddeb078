"""Where the calibration applies: dissimilarity index, area of applicability, map-error estimate.

After Meyer & Pebesma (2021, *Methods Ecol. Evol.* 12:1620). E is a property of the ground
(organic layer, moisture, conductivity); the map carries E from the calibration sites to every
pixel, which is only supported where the ground resembles a site's.

**Predictors of E** (:func:`predictors`): elevation (m), slope (°), mean NDVI, and a wetness
proxy, the topographic position index ``TPI = z − mean(z)`` over 11 × 11 px (≈ 330 m at 30 m;
hollows and valley floors, TPI < 0, collect water), each scaled by its sd over the calibration
sites (equal weights: E is fitted without these predictors, so there is no variable importance
to weight by); and land cover, used categorically: a pixel is compared only with sites of its own
class.

**Dissimilarity index** (:class:`AreaOfApplicability`): ``DI = d / d̄``, ``d`` the scaled
distance to the nearest site of the pixel's class, ``d̄`` the mean distance between sites. The
threshold is the upper whisker (Q3 + 1.5 IQR, at most the maximum) of the sites' own DI, each
site against the other sites (leave-one-site-out). **Inside the area of applicability**: the
pixel's class has calibration sites and ``DI ≤ threshold``. A class without sites is outside
(its DI is then measured against all sites, for information).

**Map error** (:func:`map_error_estimate`): an AOA-stratified estimate, never the site LOO alone.
Errors are carried in E units (``(ALT_pred − ALT_obs)/√DDT``, so a pixel's error scales with its
own thaw): inside the AOA the leave-one-site-out mean square of the deployed model; outside it
the leave-one-*class*-out mean square (each land-cover class's sites held out together and
predicted by the model fitted without that class — what an unsampled ground type gets). The map
mean square is ``mean over mapped pixel-years of DDT · MSE_E(stratum)``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["predictors", "AreaOfApplicability", "class_holdout_mse_e", "map_error_estimate", "TPI_WINDOW_PX"]

TPI_WINDOW_PX = 11


def predictors(dem_m: np.ndarray, ndvi: np.ndarray | None, pixel_m: float) -> dict[str, np.ndarray]:
    """Continuous predictors of E per pixel (see the module docstring): elevation_m, slope_deg,
    ndvi (if given), tpi_m."""
    from gee_alt.science.terrain import slope_deg

    z = np.asarray(dem_m, "float64")
    zf = np.where(np.isfinite(z), z, np.nanmean(z))
    out = {
        "elevation_m": z,
        "slope_deg": np.where(np.isfinite(z), slope_deg(zf, pixel_m), np.nan),
        "tpi_m": np.where(np.isfinite(z), zf - ndimage.uniform_filter(zf, TPI_WINDOW_PX, mode="nearest"), np.nan),
    }
    if ndvi is not None:
        out["ndvi"] = np.asarray(ndvi, "float64")
    return out


def _cls(c) -> np.ndarray:
    c = np.asarray(c, float)
    return np.where(np.isfinite(c), c, -1).astype(np.int64)


class AreaOfApplicability:
    """Dissimilarity index and area of applicability (scikit-learn conventions).

    ``fit(x_sites (n, p), classes_sites (n,))``; ``predict(x (m, p), classes (m,)) -> (DI, inside)``.
    Fitted: ``scale_``, ``mean_dist_``, ``train_di_``, ``threshold_``, ``classes_``.
    """

    def __init__(self, whisker: float = 1.5):
        self.whisker = whisker

    def fit(self, x, classes=None) -> AreaOfApplicability:
        x = np.asarray(x, float)
        c = np.zeros(len(x), np.int64) if classes is None else _cls(classes)
        ok = np.all(np.isfinite(x), axis=1)
        x, c = x[ok], c[ok]
        sd = np.std(x, axis=0, ddof=1) if len(x) > 1 else np.ones(x.shape[1])
        self.scale_ = np.where(sd > 0, sd, 1.0)
        xs = x / self.scale_
        diff = xs[:, None, :] - xs[None, :, :]
        dist = np.sqrt((diff**2).sum(-1))
        n = len(xs)
        self.mean_dist_ = float(dist[np.triu_indices(n, 1)].mean()) if n > 1 else 1.0
        self.classes_ = sorted(set(c.tolist()))
        self.x_, self.c_ = xs, c
        tr = np.full(n, np.nan)
        for i in range(n):
            other = (np.arange(n) != i) & (c == c[i])
            if not other.any():
                other = np.arange(n) != i
            tr[i] = dist[i, other].min() / self.mean_dist_ if other.any() else np.nan
        self.train_di_ = tr
        fin = tr[np.isfinite(tr)]
        if fin.size:
            q1, q3 = np.percentile(fin, [25, 75])
            self.threshold_ = float(min(q3 + self.whisker * (q3 - q1), fin.max()))
        else:
            self.threshold_ = float("nan")
        return self

    def predict(self, x, classes=None) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, float)
        c = np.zeros(len(x), np.int64) if classes is None else _cls(classes)
        di = np.full(len(x), np.nan)
        ok = np.all(np.isfinite(x), axis=1)
        xs = x / self.scale_
        known = np.zeros(len(x), bool)
        for k in self.classes_:
            sel = ok & (c == k)
            if sel.any():
                d, _ = cKDTree(self.x_[self.c_ == k]).query(xs[sel])
                di[sel] = d / self.mean_dist_
                known[sel] = True
        rest = ok & ~known
        if rest.any():
            d, _ = cKDTree(self.x_).query(xs[rest])
            di[rest] = d / self.mean_dist_
        inside = known & (di <= self.threshold_)
        return di, inside


def class_holdout_mse_e(sqrt_ddt, alt_m, classes, site_ids, censored=None, deployed_classes=None) -> dict:
    """Leave-one-class-out CV of the deployed model in E units: ``{mse_e, by_class, n}`` with
    ``mse_e`` the mean over exact held-out rows of ``((pred − obs)/√DDT)²`` and ``by_class`` the
    same per held-out class. The held-out class's E comes from the rest (pooled E)."""
    from gee_alt.science.stefan import group_cv

    x = np.asarray(sqrt_ddt, float)
    y = np.asarray(alt_m, float)
    cls = np.asarray(classes, dtype=object)
    res = group_cv(
        x,
        y,
        cls.astype(str),
        censored=censored,
        classes=cls,
        by_class=bool(deployed_classes),
        site_ids=site_ids,
        deployed_classes=deployed_classes or None,
        return_pred=True,
    )
    p = res["pred_m"]
    code = np.array([str(v) for v in (censored if censored is not None else [""] * len(x))])
    ok = np.isfinite(p) & np.isfinite(y) & (x > 0) & (code == "")
    e2 = ((p - y) / np.where(x > 0, x, np.nan)) ** 2
    by = {str(k): float(np.mean(e2[ok & (cls.astype(str) == str(k))])) for k in np.unique(cls[ok].astype(str))}
    return {"mse_e": float(np.mean(e2[ok])) if ok.any() else float("nan"), "by_class": by, "n": int(ok.sum())}


def map_error_estimate(ddt_degc_days: np.ndarray, inside: np.ndarray, mse_e_in: float, mse_e_out: float) -> dict:
    """AOA-stratified map RMSE (m): ``sqrt(mean(DDT · MSE_E))`` over the pixel-years with a finite
    DDT, ``MSE_E`` = ``mse_e_in`` inside, ``mse_e_out`` outside (``inside`` (y, x) bool)."""
    d = np.asarray(ddt_degc_days, float)
    d = d.reshape(-1, *inside.shape)
    fin = np.isfinite(d)
    dd = np.where(fin, np.clip(d, 0, None), 0.0)
    ins = np.broadcast_to(inside, d.shape)
    n = fin.sum()
    s_in = float(dd[ins & fin].sum()) * mse_e_in
    s_out = float(dd[~ins & fin].sum()) * mse_e_out
    return {
        "rmse_m": float(np.sqrt((s_in + s_out) / n)) if n else float("nan"),
        # NaN when no pixel-year is on that side (not 0: an empty side has no error estimate)
        "rmse_inside_m": float(np.sqrt(s_in / (ins & fin).sum())) if (ins & fin).any() else float("nan"),
        "rmse_outside_m": float(np.sqrt(s_out / (~ins & fin).sum())) if (~ins & fin).any() else float("nan"),
        "outside_fraction": float((~ins & fin).sum() / n) if n else float("nan"),
    }


# ------------------------------------------------------------ NNDM cross-validation (map error)
def _ecdf(sorted_ref: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_ref, r, side="right") / max(sorted_ref.size, 1)


def nndm_exclusions(x_sites, x_pred, max_iter: int = 10_000, min_train: int = 3) -> dict:
    """Nearest-neighbour-distance-matching leave-one-out folds (NNDM LOO CV; Milà, Mateu,
    Pebesma & Meyer 2022, *Methods Ecol. Evol.* 13:1304, their Algorithm 1).

    ``x_sites`` (n, p) and ``x_pred`` (m, p), scaled predictors. The prediction distances
    ``G_ij`` are each prediction point's distance to its nearest site; a fold holds out site
    ``i`` and also excludes from its training set the sites in ``exclude[i]``, chosen so that the
    distribution of held-out-to-nearest-training distances ``G*_j`` matches ``G_ij``: while some
    ``G*_j(r) > G_ij(r)`` (CV distances too short), the site with the smallest distance where
    this happens loses its current nearest training neighbour, kept only if the Wasserstein-type
    discrepancy ``W = ∫|G*_j − G_ij| dr`` decreases. Returns ``{exclude: list[set], nnd_cv,
    nnd_pred, w_loo, w}``. Deterministic (no random draw)."""
    xs = np.asarray(x_sites, float)
    xp = np.asarray(x_pred, float)
    n = len(xs)
    dist = np.sqrt(((xs[:, None, :] - xs[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    g_pred = np.sort(cKDTree(xs).query(xp)[0])
    grid_r = np.unique(np.concatenate([g_pred, dist[np.isfinite(dist)].ravel()]))

    def w_of(nnd):
        diff = np.abs(_ecdf(np.sort(nnd), grid_r) - _ecdf(g_pred, grid_r))
        return float(np.sum(diff[:-1] * np.diff(grid_r)))

    exclude = [{i} for i in range(n)]

    def nnd_i(i):
        d = dist[i].copy()
        d[list(exclude[i])] = np.inf
        return float(d.min())

    nnd = np.array([nnd_i(i) for i in range(n)])
    w0 = w = w_of(nnd)
    tried: set[tuple[int, int]] = set()
    for _ in range(max_iter):
        g_cv = _ecdf(np.sort(nnd), nnd)
        too_short = np.flatnonzero((g_cv > _ecdf(g_pred, nnd)) & np.isfinite(nnd))
        cand = [i for i in too_short[np.argsort(nnd[too_short], kind="stable")] if (i, len(exclude[i])) not in tried]
        if not cand:
            break
        i = cand[0]
        tried.add((i, len(exclude[i])))
        if n - len(exclude[i]) - 1 < min_train:
            continue
        d = dist[i].copy()
        d[list(exclude[i])] = np.inf
        j = int(np.argmin(d))
        exclude[i].add(j)
        old = nnd[i]
        nnd[i] = nnd_i(i)
        w_new = w_of(nnd)
        if w_new < w:
            w = w_new
        else:
            exclude[i].discard(j)
            nnd[i] = old
    return {"exclude": exclude, "nnd_cv": nnd, "nnd_pred": g_pred, "w_loo": w0, "w": w}


def nndm_mse_e(sqrt_ddt, alt_m, row_site, exclude_by_site: dict, censored=None, classes=None, deployed_classes=None):
    """NNDM CV of the deployed model in E units: each site's rows predicted by the model refitted
    without the site and its exclusion set (:func:`nndm_exclusions`); ``{mse_e, n, n_folds}``
    over exact held-out rows (``((pred − obs)/√DDT)²``)."""
    from gee_alt.errors import GeeAltError
    from gee_alt.science.stefan import _censor_codes, _fit_predictor

    x = np.asarray(sqrt_ddt, float)
    y = np.asarray(alt_m, float)
    site = np.asarray(row_site).astype(str)
    code = _censor_codes(censored, x.size)
    cls = None if classes is None else np.asarray(classes, dtype=object)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    e2 = np.full(x.size, np.nan)
    folds = 0
    for s, excl in exclude_by_site.items():
        test = ok & (site == s)
        train = ok & ~np.isin(site, list(excl))
        if not test.any() or not train.any():
            continue
        try:
            predict, *_ = _fit_predictor(
                x[train],
                y[train],
                code[train],
                None if cls is None else cls[train],
                bool(deployed_classes),
                5,
                site[train],
                deployed=deployed_classes or None,
            )
        except GeeAltError:
            continue
        folds += 1
        e2[test] = ((predict(x[test], None if cls is None else cls[test]) - y[test]) / x[test]) ** 2
    sc = np.isfinite(e2) & (code == 0)
    return {"mse_e": float(np.mean(e2[sc])) if sc.any() else float("nan"), "n": int(sc.sum()), "n_folds": folds}
