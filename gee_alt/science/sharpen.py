"""Random-forest sharpening of a coarse raster with fine predictors (scikit-learn estimator).

The method (Gao et al. 2012 / pyDMS ideas, written anew):

1. Fine predictors are aggregated to the coarse grid (area-weighted mean; any CRS to any CRS).
2. Each coarse pixel gets a homogeneity score ``h`` = mean over predictors of
   (within-pixel std / scene std). Coarse pixels that are poorly covered by valid fine pixels
   (or, optionally, among the least homogeneous ``homogeneity_drop`` fraction) are not trained
   on; the rest are weighted by ``(1 / max(h, q10(h))) ** homogeneity_power``.
3. A model is trained at the coarse scale: a weighted ridge regression (extrapolates smooth
   trends such as the lapse rate beyond the coarse range, with inputs capped at half a range
   outside the training range; its penalty is chosen by generalised cross-validation) plus a random
   forest on its residuals (the nonlinear part).
   Bands with the same valid pixels share one multi-output forest (one traversal per pixel
   for all of them).
4. The model is applied to the fine predictors.
5. Residual correction: the coarse residual (observation minus aggregated fine prediction) is
   interpolated bilinearly to the fine grid and added back, so the sharpened field
   re-aggregates (approximately) to the observation. With ``radiance=True`` (temperatures in
   °C) aggregation is radiance-like, over (T + KELVIN_AT_0_DEGC)^4 (:mod:`gee_alt.units`).

Inputs and outputs are ``xarray.DataArray`` ``(band, y, x)`` carrying rioxarray's CRS and
transform (see :func:`gee_alt.cube.geo_dataarray`; :func:`gee_alt.cube.grid_of` reads them).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import RidgeCV

from gee_alt.cube import geo_dataarray, grid_of
from gee_alt.errors import GeeAltError
from gee_alt.science.forest import RandomForestSettings, bootstrap_size
from gee_alt.science.nanstats import nanmean_first_axis
from gee_alt.science.resample import aggregate, coverage_fraction, fill_nearest, interpolate

# Ridge penalties tried for the linear trend (features scaled to 0..1 over the training range);
# chosen by weighted generalised cross-validation (RidgeCV). With few coarse pixels the
# predictors' coarse means are collinear and an unpenalised fit (the former fixed alpha 1e-3)
# over-fits; with many, GCV picks a small alpha and the fit is the near-OLS trend of before.
RIDGE_ALPHAS = np.logspace(-4, 1, 11)
# The homogeneity drop is skipped when fewer than this many training pixels per predictor would remain.
MIN_SAMPLES_PER_FEATURE = 20
RF_DEFAULTS = RandomForestSettings()
# Pixels go to BLAS in blocks of a multiple of this many (see RandomForestSharpener.predict_model).
PIXEL_BLOCK = 16

# With few trees some training rows are in every bootstrap sample: scikit-learn warns and gives
# them a NaN out-of-bag prediction, which the fit treats as "no forest share" for the row. The
# filter is process-wide on purpose: tiles run as threads of one process, and
# ``warnings.catch_warnings`` around the fit is process-global state that another thread's
# entering or leaving undoes (the warning then escaped to the user's console).
warnings.filterwarnings("ignore", "Some inputs do not have OOB scores", UserWarning)
# pixels per block of the prediction's sums (a multiple of PIXEL_BLOCK; bounds the float64 temporaries)
PREDICT_BLOCK = 1024 * PIXEL_BLOCK


class RandomForestSharpener(BaseEstimator):
    """Sharpen coarse bands to the fine grid of the predictors.

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features, max_samples, max_bag_size, max_leaf_nodes, random_state :
        the forest settings of :class:`~gee_alt.science.forest.RandomForestSettings` (same
        names, meanings and defaults; ``RandomForestSharpener(**settings.model_dump())``).
        ``max_samples`` is a fraction of the training pixels, ``max_bag_size`` a cap on each
        tree's draws (:func:`~gee_alt.science.forest.bootstrap_size`).
    linear_base : fit a weighted ridge trend first and the forest on its residuals.
    homogeneity_drop : fraction (0..1) of the least homogeneous coarse pixels left out of training
        (``RandomForestSettings.homogeneity_drop``; not applied when fewer than
        ``MIN_SAMPLES_PER_FEATURE`` pixels per predictor would remain).
        Default 0: with terrain predictors the least homogeneous pixels are the mountainous
        ones, which carry the lapse rate; dropping 20 % of them raised the demo's 30 m LST RMSE
        from 0.77 to 0.86 °C (2017), while weighting by ``1 / h`` alone helps slightly.
    homogeneity_power : training weights are ``(1 / h) ** homogeneity_power`` (0: equal weights).
    min_coverage : minimum covered fraction (0..1) of a coarse pixel by valid fine predictors.
    residual_correction : add back the interpolated coarse residual.
    radiance : aggregate radiance-like ((T + KELVIN_AT_0_DEGC)^4; for temperatures in °C).
    keep_gaps : output NaN where the coarse observation is NaN (else the model fills the gap).
    residual_rank : with many bands, keep only this many components (SVD over bands) of the
        coarse residual before adding it back (``None``: all; see :meth:`_denoise_residual`).
    max_components : bands sharing a forest are reduced to at most this many principal
        components (keeping >= 99.9 % of the residual variance) before the forest is trained;
        composites of one season are highly correlated, so this loses nothing measurable and
        makes prediction several times cheaper.
    n_jobs : threads for the forest (results are identical for the same ``random_state``).
    """

    def __init__(
        self,
        n_estimators: int = RF_DEFAULTS.n_estimators,
        min_samples_leaf: int = RF_DEFAULTS.min_samples_leaf,
        max_features: float = RF_DEFAULTS.max_features,
        max_samples: float | None = RF_DEFAULTS.max_samples,
        max_bag_size: int | None = RF_DEFAULTS.max_bag_size,
        max_leaf_nodes: int | None = RF_DEFAULTS.max_leaf_nodes,
        linear_base: bool = True,
        homogeneity_drop: float = RF_DEFAULTS.homogeneity_drop,
        homogeneity_power: float = 1.0,
        min_coverage: float = 0.8,
        residual_correction: bool = True,
        radiance: bool = False,
        keep_gaps: bool = True,
        max_components: int = 6,
        residual_rank: int | None = None,
        n_jobs: int = 2,
        random_state: int = RF_DEFAULTS.random_state,
    ):
        self.max_components = max_components
        self.residual_rank = residual_rank
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.max_bag_size = max_bag_size
        self.max_leaf_nodes = max_leaf_nodes
        self.linear_base = linear_base
        self.homogeneity_drop = homogeneity_drop
        self.homogeneity_power = homogeneity_power
        self.min_coverage = min_coverage
        self.residual_correction = residual_correction
        self.radiance = radiance
        self.keep_gaps = keep_gaps
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X: xr.DataArray, y: xr.DataArray) -> RandomForestSharpener:
        """Train at the coarse scale. ``X``: fine predictors (feature, y, x); ``y``: coarse bands (band, y, x)."""
        return self.fit_coarse(coarse_statistics(X, grid_of(y)), y, grid_of(X))

    def fit_coarse(self, stats: CoarseStatistics, y: xr.DataArray, fine_grid) -> RandomForestSharpener:
        """Train from the fine predictors already summarised on the coarse grid of ``y`` (see
        :func:`coarse_statistics`; the tiled engine builds the same summary tile by tile).
        ``fine_grid``: the grid of the whole fine scene."""
        coarse_grid = grid_of(y)
        Y = np.asarray(y.values, dtype="float64")
        if Y.ndim == 2:
            Y = Y[None]
        xmean, xstd, cover = stats.mean, stats.std, stats.cover
        n_features = xmean.shape[0]
        scene_std = np.where(stats.scene_std > 0, stats.scene_std, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            h = nanmean_first_axis(xstd / scene_std[:, None, None])  # NaN: coarse pixels outside the fine grid

        ok = (cover >= self.min_coverage) & np.all(np.isfinite(xmean), axis=0) & np.isfinite(h)
        ok &= np.any(np.isfinite(Y), axis=0)
        # the drop only applies when enough pixels remain (>= MIN_SAMPLES_PER_FEATURE per predictor):
        # with few coarse pixels (small scenes) every sample is worth more than its homogeneity
        n_keep = ok.sum() * (1.0 - self.homogeneity_drop)
        if self.homogeneity_drop > 0 and ok.sum() >= 10 and n_keep >= MIN_SAMPLES_PER_FEATURE * n_features:
            ok &= h <= np.quantile(h[ok], 1.0 - self.homogeneity_drop)
        n_ok = int(ok.sum())
        if n_ok < 10:
            raise GeeAltError(
                f"only {n_ok} coarse pixels are usable for training (need >= 10): "
                "does the coarse raster overlap the fine predictors?"
            )
        feats = xmean[:, ok].T  # (n_samples, n_features)
        targets = Y[:, ok].T  # (n_samples, n_bands)
        hw = h[ok]
        weights = (1.0 / np.maximum(hw, max(np.quantile(hw, 0.1), 1e-6))) ** self.homogeneity_power

        self.x_min_ = feats.min(axis=0)
        self.x_max_ = feats.max(axis=0)
        self.models_ = []
        self.oob_rmse_ = np.full(Y.shape[0], np.nan)
        for bands in self._band_groups(targets):
            rows = np.all(np.isfinite(targets[:, bands]), axis=1)
            if rows.sum() < 10:
                raise GeeAltError(f"band(s) {[b + 1 for b in bands]} have fewer than 10 valid training pixels")
            group = self._fit_group(feats[rows], targets[rows][:, bands], weights[rows])
            self.models_.append((bands, group))
            self.oob_rmse_[bands] = group["oob_rmse"]
        self.fine_grid_, self.coarse_grid_ = fine_grid, coarse_grid
        self.y_coarse_ = Y
        self.homogeneity_ = h
        self.train_mask_ = ok
        self.n_train_ = n_ok
        self.band_names_ = [str(b) for b in (y.coords[y.dims[0]].values if y.ndim == 3 else ["b1"])]
        return self

    def _band_groups(self, targets: np.ndarray) -> list[list[int]]:
        """Bands sharing the same valid training rows (each group gets one multi-output model)."""
        groups: dict[bytes, list[int]] = {}
        for b in range(targets.shape[1]):
            groups.setdefault(np.isfinite(targets[:, b]).tobytes(), []).append(b)
        return list(groups.values())

    def _scale(self, feats: np.ndarray) -> np.ndarray:
        span = np.where(self.x_max_ > self.x_min_, self.x_max_ - self.x_min_, 1.0)
        capped = np.clip(feats, self.x_min_ - 0.5 * span, self.x_max_ + 0.5 * span)
        return (capped - self.x_min_) / span

    def _fit_group(self, feats, targets, weights) -> dict:
        """Ridge trend + forest on (PCA-reduced) residuals; the forest's share is chosen out of bag.

        The forest's contribution is scaled by ``rf_weight_`` in {0, 0.25, ..., 1}, the value
        with the smallest out-of-bag error at the coarse scale: where the forest only learns
        coarse-scale noise it is switched off rather than allowed to add it at 30 m.
        """
        n = len(feats)
        base = np.zeros_like(targets)
        lin = None
        if self.linear_base:
            lin = RidgeCV(alphas=RIDGE_ALPHAS).fit(self._scale(feats), targets, sample_weight=weights)
            base = lin.predict(self._scale(feats)).reshape(targets.shape)
        resid = targets - base
        mean = resid.mean(axis=0)
        comps = None
        z = resid - mean
        if targets.shape[1] > self.max_components:
            _, sv, vt = np.linalg.svd(z, full_matrices=False)
            frac = np.cumsum(sv**2) / max(np.sum(sv**2), 1e-300)
            k = int(min(self.max_components, np.searchsorted(frac, 0.999) + 1))
            comps = vt[:k]  # (k, n_bands)
            z = z @ comps.T
        rf = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_samples=bootstrap_size(self.max_samples, n, self.max_bag_size),
            max_leaf_nodes=self.max_leaf_nodes,
            oob_score=True,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        rf.fit(feats, z if z.shape[1] > 1 else z[:, 0], sample_weight=weights)  # OOB NaN rows: below
        oob = rf.oob_prediction_.reshape(n, -1)
        oob = np.where(np.isfinite(oob), oob, 0.0)  # no out-of-bag prediction: no forest share
        oob_full = (oob @ comps if comps is not None else oob) + mean
        best = None
        for w in (0.0, 0.25, 0.5, 0.75, 1.0):
            err = np.sqrt(np.average((targets - base - w * oob_full) ** 2, axis=0, weights=weights))
            if best is None or err.mean() < best[1].mean() - 1e-12:
                best = (w, err)
        return {"lin": lin, "rf": rf, "comps": comps, "mean": mean, "rf_weight": best[0], "oob_rmse": best[1]}

    # -------------------------------------------------------------- predict
    def predict_model(self, X: xr.DataArray) -> np.ndarray:
        """The model alone on the fine predictors, ``(band, y, x)`` float32, NaN where a predictor is NaN.

        Every pixel's value depends on that pixel alone, whatever else is predicted with it: the
        pixels go to BLAS in a block whose length is a multiple of :data:`PIXEL_BLOCK` (padded),
        for which OpenBLAS gives each pixel the same bits at any position and block length
        (tested); a tile of a scene therefore gets the bytes the whole scene gets.
        """
        Xf = np.asarray(X.values, dtype="float64")
        valid = np.all(np.isfinite(Xf), axis=0)
        picked = Xf[:, valid]  # (feature, pixel)
        n = picked.shape[1]
        if n % PIXEL_BLOCK:
            padded = np.zeros((picked.shape[0], n + PIXEL_BLOCK - n % PIXEL_BLOCK))
            padded[:, :n] = picked
            picked = padded
        feats = picked.T
        out = np.full((self.y_coarse_.shape[0], *Xf.shape[1:]), np.nan, dtype="float32")
        flat_out = out.reshape(out.shape[0], -1)
        all_valid = bool(valid.all())
        at = None if all_valid else np.flatnonzero(valid)  # where the picked pixels go
        scaled = self._scale(feats) if any(g["lin"] is not None for _, g in self.models_) else None
        for bands, g in self.models_:  # predictions are built band-major: (band, pixel)
            z = g["rf"].predict(feats).reshape(feats.shape[0], -1) if g["rf_weight"] > 0 else None
            coef = np.atleast_2d(g["lin"].coef_) if g["lin"] is not None else None
            # the sums run on blocks of PREDICT_BLOCK pixels (a multiple of PIXEL_BLOCK: the same
            # bits per pixel), so their float64 temporaries stay small
            for p0 in range(0, n, PREDICT_BLOCK):
                p1 = min(feats.shape[0], p0 + PREDICT_BLOCK)
                pred = np.zeros((len(bands), p1 - p0))
                if z is not None:
                    zb = z[p0:p1]
                    zt = (g["comps"].T @ zb.T) if g["comps"] is not None else zb.T
                    pred += g["rf_weight"] * (zt + g["mean"][:, None])
                if coef is not None:  # ridge by hand: coef @ X.T + b (sklearn's checks cost more than the product)
                    pred += coef @ scaled[p0:p1].T + np.atleast_1d(g["lin"].intercept_)[:, None]
                m = min(n, p1) - p0
                cols = slice(p0, p0 + m) if all_valid else at[p0 : p0 + m]
                for j, b in enumerate(bands):
                    flat_out[b, cols] = pred[j, :m]
        return out

    def residual_basis(self, aggregated: np.ndarray, cover: np.ndarray) -> ResidualBasis:
        """The coarse residual to add back, from the model's prediction aggregated to the coarse
        grid (``aggregated``, band, cy, cx) and the coarse pixels' cover by valid predictions.

        With many bands of one season (composites), sensor noise is independent from band to
        band while a surface pattern the model missed repeats: with ``residual_rank`` = k only
        the k leading components of an SVD over bands are kept, which drops most of the noise.
        Interpolation is linear, so only the k component images are interpolated later
        (:meth:`add_residual`).
        """
        resid = self.y_coarse_ - aggregated
        resid[:, cover < self.min_coverage] = np.nan
        resid = np.stack([np.nan_to_num(fill_nearest(r), nan=0.0) for r in resid])
        k = self.residual_rank
        n_b = resid.shape[0]
        if k is None or n_b <= max(k, 3):
            return ResidualBasis(None, resid)
        u, sv, vt = np.linalg.svd(resid.reshape(n_b, -1), full_matrices=False)
        return ResidualBasis(u[:, :k] * sv[:k], vt[:k].reshape(k, *resid.shape[1:]))

    def add_residual(self, pred: np.ndarray, basis: ResidualBasis, fine_grid, window=None) -> np.ndarray:
        """Add the residual ``basis``, interpolated (bilinear) to the fine pixels, to ``pred`` in
        place. ``window`` = ``(row_off, col_off, height, width)`` of ``pred`` in ``fine_grid``
        (``None``: the whole grid); a window gets the bytes of the whole grid's call."""
        comps = interpolate(basis.images, self.coarse_grid_, fine_grid, "bilinear", window=window)
        if basis.weights is None:
            pred += comps
            return pred
        k = comps.shape[0]
        flat = comps.reshape(k, -1)
        n = flat.shape[1]
        if n % PIXEL_BLOCK:  # same bits per pixel whatever the window (see predict_model)
            flat = np.concatenate([flat, np.zeros((k, PIXEL_BLOCK - n % PIXEL_BLOCK))], axis=1)
        if not pred.flags.c_contiguous:
            pred += (basis.weights @ flat)[:, :n].reshape(basis.weights.shape[0], *comps.shape[1:])
            return pred
        out = pred.reshape(basis.weights.shape[0], n)  # a view of ``pred``
        for p0 in range(0, n, PREDICT_BLOCK):  # blocks of PREDICT_BLOCK pixels (the same bits, see predict_model)
            p1 = min(n, p0 + PREDICT_BLOCK)
            out[:, p0:p1] += (basis.weights @ flat[:, p0 : p0 + PREDICT_BLOCK])[:, : p1 - p0]
        return pred

    def mask_gaps(self, pred: np.ndarray, fine_grid, window=None) -> np.ndarray:
        """Set ``pred`` to NaN (in place) where the coarse observation of its band is NaN."""
        masks = {}
        for b in range(pred.shape[0]):
            bad = ~np.isfinite(self.y_coarse_[b])
            if bad.any():
                key = bad.tobytes()
                if key not in masks:
                    masks[key] = interpolate(
                        np.where(bad, np.nan, 1.0), self.coarse_grid_, fine_grid, "nearest", window=window
                    )
                pred[b][~np.isfinite(masks[key])] = np.nan
        return pred

    def predict(self, X: xr.DataArray) -> xr.DataArray:
        """Sharpened bands on the fine grid of ``X`` (float32, NaN = no data)."""
        fine_grid = grid_of(X)
        pred = self.predict_model(X)
        if self.residual_correction:
            agg, _, _ = aggregate(pred, fine_grid, self.coarse_grid_, radiance=self.radiance, with_std=False)
            cover = coverage_fraction(np.all(np.isfinite(pred), axis=0), fine_grid, self.coarse_grid_)
            self.add_residual(pred, self.residual_basis(agg, cover), fine_grid)  # in place, float32
        if self.keep_gaps:
            self.mask_gaps(pred, fine_grid)
        return geo_dataarray(pred.astype("float32", copy=False), fine_grid, self.band_names_)


@dataclass
class CoarseStatistics:
    """The fine predictors summarised on the coarse grid, all a sharpener's training needs of them:
    ``mean`` and ``std`` (feature, cy, cx) of the valid fine pixels, ``cover`` (cy, cx) the
    fraction of each coarse pixel covered by fine pixels where every predictor is valid, and
    ``scene_std`` (feature,) the standard deviation of each predictor over the scene."""

    mean: np.ndarray
    std: np.ndarray
    cover: np.ndarray
    scene_std: np.ndarray


@dataclass
class ResidualBasis:
    """A coarse residual ready to interpolate: ``images`` (k, cy, cx) and, when the residual was
    reduced to k components over bands, ``weights`` (band, k); else ``weights`` is None and
    ``images`` are the bands' residuals."""

    weights: np.ndarray | None
    images: np.ndarray


def coarse_statistics(X: xr.DataArray, coarse_grid) -> CoarseStatistics:
    """:class:`CoarseStatistics` of fine predictors ``X`` (feature, y, x) held in memory."""
    fine_grid = grid_of(X)
    Xf = np.asarray(X.values, dtype="float64")
    valid_fine = np.all(np.isfinite(Xf), axis=0)
    if not valid_fine.any():
        raise GeeAltError("the fine predictors have no pixel where all are valid")
    masked = np.where(valid_fine, Xf, np.nan)
    xmean, xstd, _ = aggregate(masked, fine_grid, coarse_grid, cache=True)
    cover = coverage_fraction(valid_fine, fine_grid, coarse_grid)
    return CoarseStatistics(xmean, xstd, cover, np.nanstd(masked, axis=(1, 2)))
