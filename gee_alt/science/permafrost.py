"""The permafrost criterion: the frost-number threshold, calibrated on drill holes.

The surface frost number F = √DDF / (√DDF + √DDT) (Nelson & Outcalt 1987) marks permafrost at
F ≥ 0.5 when DDF and DDT are the ground's freezing and thawing indices. From MODIS skin LST they
are not: clear-sky LST overstates DDT (the cooling under cloud is never seen), snow insulates
the ground so the skin DDF overstates the ground's, and vegetation, the organic layer and the
thermal offset shift the temperature at the top of permafrost again (the n-factors and the
offset of the TTOP model, Smith & Riseborough 1996). All of these move the F at which
permafrost starts, so 0.5 on skin F is biased (in the realistic demo world it maps about half
the true extent).

Borehole inventories record the drill holes that found no permafrost as well as those that
found it. Logistic regression of presence on the skin F at the holes (every year of the run
at each hole; the cube's F, so the same multi-year F the map is thresholded on,
:mod:`gee_alt.science.frost_climate`) gives the threshold F₅₀ (presence probability 0.5; the 0.5 of the bare frost
number when the skin were the ground) with a bootstrap CI that resamples holes (a hole's years
are not independent). The holes must be placed without regard to what was found (drilled in
search of permafrost; not only the ones that found it), or the intercept, hence F₅₀, is biased.

A map thresholded at F₅₀ is a weak classifier whose *area* is biased where the classes overlap; the
default criterion is therefore the presence probability of :mod:`gee_alt.science.permafrost_probability`
(its area the sum of probabilities), with F₅₀ fitted and reported beside it
(``season.permafrost_criterion = "boreholes"`` maps F ≥ F₅₀ as before).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator

from gee_alt.errors import GeeAltError

#: the bare frost-number criterion (F of the ground's indices; used without drill holes)
F_BARE = 0.5
MIN_HOLES_EACH = 5  # holes with and without permafrost needed to fit a threshold


@dataclass
class Boreholes:
    """Drill holes: ``site_id``, ``lon``/``lat`` (degrees), ``year`` drilled, ``present`` (bool)."""

    site_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    year: np.ndarray
    present: np.ndarray


_TRUE, _FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n"}


def read_boreholes(path: str | Path) -> Boreholes:
    """``permafrost_boreholes.csv`` (columns ``site_id, lon, lat, year, permafrost`` with
    ``permafrost`` true/false); one-line :class:`GeeAltError` on a bad file."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GeeAltError(f"{path.name}: cannot read ({type(exc).__name__})") from None
    need = {"site_id", "lon", "lat", "year", "permafrost"}
    if not rows or not need <= set(rows[0]):
        raise GeeAltError(f"{path.name}: needs the columns {', '.join(sorted(need))} and at least one row")
    out = {k: [] for k in ("site_id", "lon", "lat", "year", "present")}
    for i, r in enumerate(rows, start=2):
        flag = str(r["permafrost"]).strip().lower()
        try:
            lon, lat, year = float(r["lon"]), float(r["lat"]), int(r["year"])
        except ValueError:
            raise GeeAltError(f"{path.name} line {i}: lon, lat and year must be numbers") from None
        if flag not in _TRUE | _FALSE:
            raise GeeAltError(f"{path.name} line {i}: permafrost must be true or false, got {r['permafrost']!r}")
        out["site_id"].append(str(r["site_id"]))
        out["lon"].append(lon)
        out["lat"].append(lat)
        out["year"].append(year)
        out["present"].append(flag in _TRUE)
    return Boreholes(*(np.asarray(out[k]) for k in ("site_id", "lon", "lat", "year", "present")))


def _fit_logistic(f: np.ndarray, y: np.ndarray, n_iter: int = 50) -> tuple[float, float]:
    """``(F50, slope)`` of P(present) = 1 / (1 + exp(-slope (F - F50))), maximum likelihood
    (Newton-Raphson on the two-parameter logistic log-likelihood, F centred for conditioning).
    NaN when the fit does not converge (e.g. perfectly separated classes)."""
    x = np.asarray(f, "float64")
    t = np.asarray(y, "float64")
    yes, no = x[t > 0], x[t <= 0]
    if yes.size and no.size and no.max() < yes.min():  # separated: the MLE is the step in the gap
        return float((no.max() + yes.min()) / 2), float("inf")
    x0, sx = float(x.mean()), float(x.std()) or 1.0
    X = np.column_stack([np.ones_like(x), (x - x0) / sx])
    beta = np.zeros(2)
    for _ in range(n_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -30, 30)))
        w = p * (1 - p)
        hess = X.T @ (X * w[:, None])
        try:
            step = np.linalg.solve(hess, X.T @ (t - p))
        except np.linalg.LinAlgError:
            return float("nan"), float("nan")
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    else:
        return float("nan"), float("nan")
    b0, b1 = beta[0], beta[1] / sx
    if not (np.isfinite(b1) and b1 > 0 and abs(beta[1]) < 50):  # |slope| in sd units: separated classes
        return float("nan"), float(b1)
    return float(x0 - b0 / b1), float(b1)


class FrostNumberThreshold(BaseEstimator):
    """The frost number above which permafrost is present, fitted on drill holes.

    ``fit(frost_number, present, groups)``: F (1) and presence (bool) per observation (a hole in
    a year), ``groups`` the hole of each observation (the bootstrap resamples holes). Fitted:
    ``f50_`` (1), ``slope_`` (per unit F), ``f50_ci95_`` (bootstrap percentile), ``n_holes_``,
    ``n_present_`` (holes with permafrost), ``n_obs_``.
    """

    def __init__(self, n_boot: int = 500, random_state: int = 0):
        self.n_boot = n_boot
        self.random_state = random_state

    def fit(self, frost_number, present, groups=None) -> FrostNumberThreshold:
        f = np.asarray(frost_number, "float64").ravel()
        y = np.asarray(present, bool).ravel()
        g = np.arange(f.size) if groups is None else np.asarray(groups).ravel()
        ok = np.isfinite(f)
        f, y, g = f[ok], y[ok], g[ok]
        holes, inv = np.unique(g, return_inverse=True)
        hole_present = np.zeros(len(holes), bool)
        hole_present[inv[y]] = True
        n_pres = int(hole_present.sum())
        if n_pres < MIN_HOLES_EACH or len(holes) - n_pres < MIN_HOLES_EACH:
            raise GeeAltError(
                f"the permafrost threshold needs at least {MIN_HOLES_EACH} drill holes with and "
                f"{MIN_HOLES_EACH} without permafrost that have a frost number; have {n_pres} and "
                f"{len(holes) - n_pres}"
            )
        self.f50_, self.slope_ = _fit_logistic(f, y)
        if not (np.isfinite(self.f50_) and 0 < self.f50_ < 1):
            raise GeeAltError(
                "permafrost is not more frequent at higher frost numbers in the drill holes: no threshold can be fitted"
            )
        rng = np.random.default_rng(self.random_state)
        members = [np.nonzero(inv == k)[0] for k in range(len(holes))]
        boot = []
        for _ in range(self.n_boot):
            pick = np.concatenate([members[k] for k in rng.integers(0, len(holes), len(holes))])
            if y[pick].all() or not y[pick].any():
                continue
            b, s = _fit_logistic(f[pick], y[pick])
            if np.isfinite(b) and s > 0:
                boot.append(b)
        lo, hi = np.percentile(boot, [2.5, 97.5]) if len(boot) >= 20 else (np.nan, np.nan)
        self.f50_ci95_ = [float(lo), float(hi)]
        self.n_holes_, self.n_present_, self.n_obs_ = len(holes), n_pres, int(f.size)
        return self

    def predict(self, frost_number) -> np.ndarray:
        """1.0 permafrost (F ≥ F₅₀), 0.0 none, NaN where F is unknown (float32)."""
        f = np.asarray(frost_number, "float32")
        return np.where(np.isfinite(f), (f >= self.f50_).astype("float32"), np.nan).astype("float32")

    def to_dict(self) -> dict:
        return {
            "rule": "frost number >= F50, logistic regression of drill-hole permafrost presence on the skin "
            "frost number",
            "frost_number_min": float(self.f50_),
            "frost_number_min_ci95": self.f50_ci95_,
            # None: the holes are separated at F50 (a step, no overlap)
            "logistic_slope_per_unit_f": float(self.slope_) if np.isfinite(self.slope_) else None,
            "n_holes": int(self.n_holes_),
            "n_holes_with_permafrost": int(self.n_present_),
            "n_hole_years": int(self.n_obs_),
        }


def frost_number_at_holes(frost: np.ndarray, years: list[int], grid, holes: Boreholes) -> tuple[np.ndarray, ...]:
    """The run's frost number at each hole in every year (the hole's pixel; holes off the grid
    dropped): flat ``(F, present, hole index)`` over hole-years. ``frost`` is a ``(year, y, x)``
    array, a (lazy) xarray DataArray or a :class:`~gee_alt.science.frost_climate.PixelFrost`:
    then only the holes' pixels are read."""
    from gee_alt.grid import lonlat_to_rowcol
    from gee_alt.science.frost_climate import frost_at_pixels

    r, c = lonlat_to_rowcol(grid, holes.lon, holes.lat)
    h, w = frost.shape[1:]
    on = np.isfinite(r) & np.isfinite(c) & (r >= 0) & (c >= 0) & (r < h) & (c < w)
    idx = np.nonzero(on)[0]
    rows, cols = r[on].astype(int), c[on].astype(int)
    f = frost_at_pixels(frost, rows, cols)  # (year, hole)
    return (
        f.T.ravel(),
        np.repeat(holes.present[idx], len(years)),
        np.repeat(idx, len(years)),
    )


def fit_criterion(
    frost: np.ndarray, years: list[int], grid, path: str | Path, *, n_boot: int = 500, seed: int = 0
) -> FrostNumberThreshold:
    """Fit the frost-number threshold on the drill holes of ``path`` (see the module docstring)."""
    holes = read_boreholes(path)
    f, y, g = frost_number_at_holes(frost, years, grid, holes)
    try:
        return FrostNumberThreshold(n_boot=n_boot, random_state=seed).fit(f, y, g)
    except GeeAltError as exc:
        raise GeeAltError(f"{Path(path).name}: {exc}") from None
