"""Permafrost presence probability per pixel-year, and the permafrost area as summed probabilities.

A threshold on the skin frost number (:mod:`gee_alt.science.permafrost`) is a weak classifier:
skin F cannot see snow, peat or soil moisture, so the classes overlap in F, and a map
thresholded at presence probability 0.5 does not preserve the prevalence: its area is biased
whenever the overlap is asymmetric (the share of the uncertain band above 0.5 is not the share of
it that has permafrost). The expected area of a calibrated probability map is the sum of the
probabilities: the idea of the Permafrost Zonation Index (Gruber 2012, The Cryosphere 6:221-233),
whose area is Σ PZI × pixel area. Here the probability is a penalised logistic regression of
drill-hole presence on predictors the engine has at every pixel: the year's frost number and the
static terrain and vegetation (elevation, slope, northness, mean NDVI; the ones the run has).

Clamping. Holes sample a narrow band of the map (valley floors: on the demo worlds an elevation
standard deviation of ~140 m against the map's ~1200 m range), and a linear logit extrapolated far
outside it says what the holes never saw (e.g. the low NDVI of high scree read as dry steppe). At
prediction the static predictors are clamped to the range the holes cover, as species-distribution
models do (Maxent's clamping: Phillips, Anderson & Schapire 2006, Ecol. Model. 190:231-259; Elith
et al. 2011, Divers. Distrib. 17:43-57); the frost number, the physical predictor, is not clamped.

Which observations. A hole records presence in the year it was drilled (the ground changes: a
hole that found permafrost in 2003 says nothing about 2020), so each hole is one observation, its
frost number that of its drilling year (the nearest year of the run when drilled outside it).

Covariate shift. Holes are drilled where one can get to, not at random (valley floors near
roads), so the holes are a covariate-shifted sample of the map. A logistic model fitted on them
is still right for the map if p(presence | predictors) is the same everywhere and the model is
well specified; the predictors that carry the selection (slope, elevation: what decides access)
are therefore in the model. Importance weighting by the density ratio p_map(x) / p_holes(x)
(Shimodaira 2000, J. Stat. Plan. Inference 90:227-244; estimated with a probabilistic classifier
of map pixels against holes, Bickel, Brückner & Scheffer 2009, JMLR 10:2137-2155; Sugiyama et al.
2007, JMLR 8:985-1005 for the weighted CV) corrects a misspecified model at the cost of a much
smaller effective sample; it is an option (``shift_weights``), clipped at ``weight_clip`` times
the mean weight.

Uncertainty. The penalty C is chosen by stratified cross-validated log-loss on the holes; the
area's CI comes from a bootstrap over holes (the model refitted at the chosen C on each
resample), evaluated on a fixed systematic subsample of the map's pixels (the area's spread
between replicates, scaled to the whole map by the point estimate).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from gee_alt.errors import GeeAltError
from gee_alt.science.frost_climate import frost_at_pixels

#: predictors of the presence model, in this order; ``frost_number`` changes by year, the rest are static
PREDICTORS = ("frost_number", "elevation_m", "slope_deg", "northness", "ndvi_mean")
STATIC_PREDICTORS = PREDICTORS[1:]
#: the penalties tried (inverse L2 strength on standardised predictors)
DEFAULT_CS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
MIN_HOLES_EACH = 5
#: presence probability at and above which the class map says permafrost
CLASS_PROBABILITY = 0.5
#: pixels per year in the systematic subsample the bootstrap area is evaluated on
CI_SAMPLE_PIXELS = 20000


def static_predictors(dem_m: np.ndarray | None, ndvi_mean: np.ndarray | None, pixel_m: float) -> dict:
    """``{name: (y, x) float32}`` of the static :data:`STATIC_PREDICTORS` the run has: elevation
    (m), slope (deg) and northness (1) from the DEM (:mod:`gee_alt.science.terrain`), mean NDVI (1)."""
    from gee_alt.science.terrain import aspect_components, by_row_blocks, slope_deg

    out = {}
    if dem_m is not None:
        dem = np.asarray(dem_m, "float32")
        out["elevation_m"] = dem
        # by row blocks: the derivatives' float64 temporaries of a block, not of the whole grid
        out["slope_deg"] = by_row_blocks(lambda d: slope_deg(d, pixel_m), dem)
        out["northness"] = by_row_blocks(lambda d: aspect_components(d, pixel_m)[0], dem)
    if ndvi_mean is not None:
        out["ndvi_mean"] = np.asarray(ndvi_mean, "float32")
    return out


def static_rows(dem_m: np.ndarray | None, ndvi_mean: np.ndarray | None, pixel_m: float, r0: int, r1: int) -> dict:
    """Rows ``r0:r1`` of :func:`static_predictors` (the same values: the derivatives are computed on
    those rows and a 1-row halo)."""
    h = next((np.shape(a)[0] for a in (dem_m, ndvi_mean) if a is not None), r1)
    a0, a1 = max(0, r0 - 1), min(h, r1 + 1)
    full = static_predictors(
        None if dem_m is None else dem_m[a0:a1], None if ndvi_mean is None else ndvi_mean[a0:a1], pixel_m
    )
    return {k: v[r0 - a0 : r1 - a0] for k, v in full.items()}


def design(names, frost, static: dict, index=None) -> np.ndarray:
    """``(n, k)`` float64 predictor matrix in the order of ``names``: ``frost`` the frost number
    (any shape, flattened), ``static`` 2-D maps flattened the same way (or read at the flat
    ``index`` when given, e.g. hole pixels)."""
    f = np.asarray(frost, "float64").ravel()
    cols = []
    for n in names:
        if n == "frost_number":
            cols.append(f)
        else:
            v = np.asarray(static[n]).ravel()  # indexed before the float64 copy (a whole grid otherwise)
            cols.append((v if index is None else v[index]).astype("float64"))
    return np.column_stack(cols) if cols else np.empty((f.size, 0))


def _quadratic(z: np.ndarray) -> np.ndarray:
    k = z.shape[1]
    return np.column_stack([z, z**2] + [z[:, i] * z[:, j] for i in range(k) for j in range(i + 1, k)])


def density_ratio_weights(x_holes: np.ndarray, x_map: np.ndarray, clip: float = 5.0, random_state: int = 0):
    """Importance weights ``w ∝ p_map(x) / p_holes(x)`` (mean 1) of the holes' predictor rows, from
    a logistic classifier of map rows against hole rows on standardised quadratic features
    (classes balanced), clipped at ``clip`` times the mean and renormalised."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = x_map.mean(axis=0), x_map.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    zh, zm = _quadratic((x_holes - mu) / sd), _quadratic((x_map - mu) / sd)
    lab = np.r_[np.ones(len(zh)), np.zeros(len(zm))]
    sw = np.r_[np.full(len(zh), 0.5 / len(zh)), np.full(len(zm), 0.5 / len(zm))] * len(lab)
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=random_state).fit(
        np.vstack([zh, zm]), lab, sample_weight=sw
    )
    ph = np.clip(clf.predict_proba(zh)[:, 1], 1e-6, 1 - 1e-6)
    w = (1 - ph) / ph
    w = w / w.mean()
    for _ in range(20):  # clip and renormalise until the clip holds
        w = np.minimum(w, clip)
        w = w / w.mean()
        if w.max() <= clip * (1 + 1e-9):
            break
    return w


def _linear(z: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``(n, m)``: intercept + Σ_j z[:, j]·coef[:, j] for each of ``m`` coefficient rows, summed
    predictor by predictor in a fixed order (the same bits for a pixel whatever the batch)."""
    eta = np.broadcast_to(intercept[None, :], (z.shape[0], coef.shape[0])).copy()
    for j in range(z.shape[1]):
        eta += z[:, j : j + 1] * coef[None, :, j]
    return eta


class PresenceProbability(BaseEstimator):
    """Permafrost presence probability: an L2-penalised logistic regression on standardised predictors.

    ``fit(X, present, sample_weight=None)``: one row per drill hole (predictors in the order of
    ``names``), presence bool. Fitted: ``mean_``/``scale_`` (standardisation), ``C_`` (chosen by
    stratified ``cv``-fold log-loss), ``coef_``/``intercept_`` (on standardised predictors),
    ``boot_coef_`` ``(n_boot, k + 1)`` (intercept last; bootstrap over holes at ``C_``),
    ``n_holes_``, ``n_present_``, ``effective_n_`` (Kish effective sample size of the weights),
    ``lower_``/``upper_`` (the range of the training rows of the predictors named in ``clamp``,
    ±inf for the others: at prediction those predictors are clamped to it, see the module docstring).
    """

    def __init__(
        self,
        names=("frost_number",),
        Cs=DEFAULT_CS,
        cv: int = 5,
        n_boot: int = 200,
        random_state: int = 0,
        clamp=(),
    ):
        self.names = names
        self.clamp = clamp
        self.Cs = Cs
        self.cv = cv
        self.n_boot = n_boot
        self.random_state = random_state

    def fit(self, X, present, sample_weight=None) -> PresenceProbability:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        x = np.asarray(X, "float64")
        y = np.asarray(present, bool).ravel()
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, "float64").ravel()
        ok = np.all(np.isfinite(x), axis=1) & np.isfinite(w)
        x, y, w = x[ok], y[ok], w[ok]
        n_pres = int(y.sum())
        if n_pres < MIN_HOLES_EACH or y.size - n_pres < MIN_HOLES_EACH:
            raise GeeAltError(
                f"the permafrost presence model needs at least {MIN_HOLES_EACH} drill holes with and "
                f"{MIN_HOLES_EACH} without permafrost that have all its predictors; have {n_pres} and {y.size - n_pres}"
            )
        clamped = np.array([n in tuple(self.clamp) for n in self.names], bool)
        self.lower_ = np.where(clamped, x.min(axis=0), -np.inf)
        self.upper_ = np.where(clamped, x.max(axis=0), np.inf)
        self.mean_ = x.mean(axis=0)
        sd = x.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        z = (x - self.mean_) / self.scale_
        n_folds = int(min(self.cv, n_pres, y.size - n_pres))
        folds = StratifiedKFold(n_folds, shuffle=True, random_state=self.random_state)
        loss = np.zeros(len(self.Cs))
        for tr, te in folds.split(z, y):
            for j, c in enumerate(self.Cs):
                m = LogisticRegression(C=c, max_iter=5000).fit(z[tr], y[tr], sample_weight=w[tr])
                p = np.clip(m.predict_proba(z[te])[:, 1], 1e-9, 1 - 1e-9)
                loss[j] -= np.sum(w[te] * np.where(y[te], np.log(p), np.log(1 - p)))
        self.cv_log_loss_ = (loss / w.sum()).tolist()
        self.C_ = float(self.Cs[int(np.argmin(loss))])
        m = LogisticRegression(C=self.C_, max_iter=5000).fit(z, y, sample_weight=w)
        self.coef_, self.intercept_ = m.coef_[0].astype("float64"), float(m.intercept_[0])
        rng = np.random.default_rng(self.random_state)
        boot = []
        for _ in range(self.n_boot):
            pick = rng.integers(0, y.size, y.size)
            if y[pick].all() or not y[pick].any():
                continue
            b = LogisticRegression(C=self.C_, max_iter=5000).fit(z[pick], y[pick], sample_weight=w[pick])
            boot.append(np.r_[b.coef_[0], b.intercept_[0]])
        self.boot_coef_ = np.asarray(boot, "float64").reshape(-1, z.shape[1] + 1)
        self.n_holes_, self.n_present_ = int(y.size), n_pres
        self.effective_n_ = float(w.sum() ** 2 / np.sum(w**2))
        return self

    def _z(self, X) -> np.ndarray:
        """Standardised rows, the ``clamp`` predictors first clamped to the training range (NaN kept)."""
        x = np.asarray(X, "float64")
        if np.any(np.isfinite(self.lower_) | np.isfinite(self.upper_)):  # else nothing to clamp: no copy
            x = np.clip(x, self.lower_, self.upper_)
        return (x - self.mean_) / self.scale_

    def predict_proba(self, X) -> np.ndarray:
        """Presence probability (1) of each row; NaN where a predictor is NaN (float64). Element by
        element (no BLAS product), so a pixel's value does not depend on how the map is chunked."""
        z = self._z(X)
        eta = _linear(z, self.coef_[None, :], np.array([self.intercept_]))[:, 0]
        return np.where(np.all(np.isfinite(z), axis=1), 1.0 / (1.0 + np.exp(-np.clip(eta, -50, 50))), np.nan)

    def boot_proba(self, X) -> np.ndarray:
        """``(n_boot, n)`` presence probability under each bootstrap refit (rows with a NaN predictor dropped)."""
        z = self._z(X)
        z = z[np.all(np.isfinite(z), axis=1)]
        eta = _linear(z, self.boot_coef_[:, :-1], self.boot_coef_[:, -1])
        return (1.0 / (1.0 + np.exp(-np.clip(eta, -50, 50)))).T

    def to_dict(self) -> dict:
        return {
            "predictors": list(self.names),
            "predictor_mean": self.mean_.tolist(),
            "predictor_scale": self.scale_.tolist(),
            "coef_standardised": self.coef_.tolist(),
            "intercept": self.intercept_,
            "C": self.C_,
            "Cs": list(self.Cs),
            "cv_log_loss": self.cv_log_loss_,
            "boot_coef": self.boot_coef_.tolist(),
            "n_holes": self.n_holes_,
            "n_holes_with_permafrost": self.n_present_,
            "effective_n": self.effective_n_,
            "clamped_to_holes_range": {
                n: [float(lo), float(hi)]
                for n, lo, hi in zip(self.names, self.lower_, self.upper_, strict=True)
                if np.isfinite(lo) or np.isfinite(hi)
            },
        }

    @classmethod
    def from_dict(cls, d: dict) -> PresenceProbability:
        m = cls(names=tuple(d["predictors"]), Cs=tuple(d.get("Cs", DEFAULT_CS)))
        m.mean_ = np.asarray(d["predictor_mean"], "float64")
        m.scale_ = np.asarray(d["predictor_scale"], "float64")
        m.coef_ = np.asarray(d["coef_standardised"], "float64")
        m.intercept_ = float(d["intercept"])
        m.C_ = float(d["C"])
        m.cv_log_loss_ = list(d.get("cv_log_loss", []))
        m.boot_coef_ = np.asarray(d["boot_coef"], "float64").reshape(-1, len(m.coef_) + 1)
        m.n_holes_, m.n_present_ = int(d["n_holes"]), int(d["n_holes_with_permafrost"])
        m.effective_n_ = float(d.get("effective_n", m.n_holes_))
        bounds = d.get("clamped_to_holes_range") or {}  # none: a model fitted before clamping
        m.clamp = tuple(bounds)
        m.lower_ = np.array([bounds[n][0] if n in bounds else -np.inf for n in m.names], "float64")
        m.upper_ = np.array([bounds[n][1] if n in bounds else np.inf for n in m.names], "float64")
        return m


def ci_sample_mask(shape_yx: tuple[int, int], n_pixels: int = CI_SAMPLE_PIXELS) -> np.ndarray:
    """``(y, x)`` bool: a systematic subsample of about ``n_pixels`` pixels (every k-th in row-major order)."""
    n = int(shape_yx[0]) * int(shape_yx[1])
    step = max(1, n // max(1, int(n_pixels)))
    return (np.arange(n) % step == 0).reshape(shape_yx)


class AreaAccumulator:
    """Per-year sums for the probabilistic permafrost area, fed row strip by row strip.

    ``add(i, p, sub, p_boot)``: year index, the strip's probabilities ``(rows, x)`` (NaN unknown),
    its subsample mask ``(rows, x)`` (:func:`ci_sample_mask`) and the bootstrap probabilities of
    the subsample's pixels with a probability, row-major ``(n_boot, m)``. Sums are taken row by row
    and added in row order, so they are the same bits whatever the strips. ``result(px_km2)``: area
    (km²) = Σ p × pixel area, and its 95 % CI: the point area times the percentiles of
    (Σ_sub p_boot / Σ_sub p) over the replicates."""

    def __init__(self, n_years: int, n_boot: int):
        self.sum_p = np.zeros(n_years)
        self.n_known = np.zeros(n_years, np.int64)
        self.sub_point = np.zeros(n_years)
        self.sub_boot = np.zeros((n_years, n_boot))

    def add(self, i: int, p: np.ndarray, sub: np.ndarray, p_boot: np.ndarray) -> None:
        p = np.atleast_2d(np.asarray(p, "float64"))
        fin = np.isfinite(p)
        pz = np.where(fin, p, 0.0)
        self.n_known[i] += int(fin.sum())
        keep = np.asarray(sub, bool) & fin
        per_row = keep.sum(axis=1)
        start = 0
        for r in range(p.shape[0]):
            self.sum_p[i] += float(pz[r].sum())
            k = int(per_row[r])
            if k:
                self.sub_point[i] += float(pz[r][keep[r]].sum())
                if p_boot.size:
                    self.sub_boot[i] += p_boot[:, start : start + k].sum(axis=1)
                start += k

    def result(self, years, px_km2: float) -> dict:
        area = self.sum_p * px_km2
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = self.sub_boot / self.sub_point[:, None]
        lo, hi = (
            np.percentile(ratio, [2.5, 97.5], axis=1) if ratio.shape[1] >= 20 else (ratio[:, :0].sum(1) * np.nan,) * 2
        )
        return {
            "years": [int(y) for y in years],
            "area_km2": area.tolist(),
            "area_km2_ci95": [[float(a * lo_), float(a * hi_)] for a, lo_, hi_ in zip(area, lo, hi, strict=True)],
            "fraction": (self.sum_p / np.maximum(self.n_known, 1)).tolist(),
        }


def holes_design(frost, years, grid, holes, static: dict, names) -> tuple[np.ndarray, np.ndarray]:
    """``(X, present)`` of the drill holes on the grid: one row per hole, its frost number that of
    its drilling year (the nearest year of the run when drilled outside it) and the static
    predictors at its pixel. ``frost``: ``(year, y, x)`` array or (lazy) DataArray."""
    from gee_alt.grid import lonlat_to_rowcol

    r, c = lonlat_to_rowcol(grid, holes.lon, holes.lat)
    h, w = frost.shape[1:]
    on = np.isfinite(r) & np.isfinite(c) & (r >= 0) & (c >= 0) & (r < h) & (c < w)
    rows, cols = r[on].astype(int), c[on].astype(int)
    yrs = np.asarray(years, "int64")
    k = np.abs(np.asarray(holes.year, "int64")[on][:, None] - yrs[None, :]).argmin(axis=1)
    f = frost_at_pixels(frost, rows, cols, year_index=k)
    return design(names, f, static, index=rows * w + cols), np.asarray(holes.present, bool)[on]


def map_sample(frost, static: dict, names, n: int = 20000, seed: int = 0) -> np.ndarray:
    """``(m, k)`` predictor rows of ``n`` random pixel-years of the map (rows with a NaN dropped):
    the target population of the density ratio."""
    rng = np.random.default_rng(seed)
    ny, h, w = frost.shape
    pick = np.sort(rng.choice(ny * h * w, size=min(n, ny * h * w), replace=False))
    yi, flat = pick // (h * w), pick % (h * w)
    f = frost_at_pixels(frost, flat // w, flat % w, year_index=yi)
    x = design(names, f, static, index=flat)
    return x[np.all(np.isfinite(x), axis=1)]


def fit_presence(
    frost,
    years,
    grid,
    path,
    static: dict,
    *,
    shift_weights: bool = False,
    weight_clip: float = 5.0,
    n_boot: int = 200,
    seed: int = 0,
) -> PresenceProbability:
    """Fit :class:`PresenceProbability` on the drill holes of ``path`` with the frost number and
    every static predictor the run has (``static``), optionally importance-weighted for the
    holes' covariate shift (see the module docstring)."""
    from pathlib import Path

    from gee_alt.science.permafrost import read_boreholes

    names = ("frost_number", *[n for n in STATIC_PREDICTORS if n in static])
    holes = read_boreholes(path)
    x, y = holes_design(frost, years, grid, holes, static, names)
    w = None
    if shift_weights:
        ok = np.all(np.isfinite(x), axis=1)
        w = np.full(len(y), np.nan)
        w[ok] = density_ratio_weights(x[ok], map_sample(frost, static, names, seed=seed), weight_clip, seed)
    try:
        return PresenceProbability(names=names, n_boot=n_boot, random_state=seed, clamp=names[1:]).fit(
            x, y, sample_weight=w
        )
    except GeeAltError as exc:
        raise GeeAltError(f"{Path(path).name}: {exc}") from None
