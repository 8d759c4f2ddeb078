"""Spatial-autocorrelation range of calibration residuals, to size the block cross-validation.

:func:`residual_range_m` fits an exponential semivariogram ``γ(h) = c0 + c1 (1 − exp(−3h/r))``
(``r`` the practical range: 95 % of the sill) to the empirical semivariogram of the sites' mean
residuals (in E units, ``(ALT − E·√DDT)/√DDT`` averaged over a site's years, so deep and shallow
sites weigh alike), by weighted least squares over distance bins (weights = pairs per bin,
Cressie 1985), once a permutation test finds spatial structure at short distances (p < 0.05).
Blocks at least as wide as ``r`` make held-out sites roughly independent of the
training sites (Roberts et al. 2017, *Ecography* 40:913). :func:`block_size_m` turns it into a
block size with a documented fallback.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy.spatial.distance import pdist

__all__ = ["empirical_semivariogram", "residual_range_m", "block_size_m", "DEFAULT_BLOCK_M"]

DEFAULT_BLOCK_M = 5000.0  # fallback: a range the residuals cannot show (too few sites, no structure)


def empirical_semivariogram(x_m, y_m, values, n_bins: int = 10, max_frac: float = 0.5) -> dict:
    """Binned ``γ(h) = mean((v_i − v_j)² / 2)`` over pairs up to ``max_frac`` of the largest distance."""
    pts = np.column_stack([np.asarray(x_m, float), np.asarray(y_m, float)])
    v = np.asarray(values, float)
    h = pdist(pts)
    g = 0.5 * pdist(v[:, None], "sqeuclidean")
    hmax = h.max() * max_frac if h.size else 0.0
    edges = np.linspace(0, hmax, n_bins + 1)
    idx = np.digitize(h, edges) - 1
    mid, gam, n = [], [], []
    for b in range(n_bins):
        m = idx == b
        if m.sum() >= 3:
            mid.append(h[m].mean())
            gam.append(g[m].mean())
            n.append(int(m.sum()))
    return {"h_m": np.array(mid), "gamma": np.array(gam), "n_pairs": np.array(n)}


def residual_range_m(x_m, y_m, values) -> dict:
    """Practical range (m) of an exponential semivariogram fitted to ``values`` at sites:
    ``{range_m, nugget, psill, n_sites}``; ``range_m`` NaN when it cannot be fitted (fewer than
    8 sites or 4 distance bins, or no spatial structure the sites resolve: partial sill under 5 % of
    the sill, or a range outside the binned distances)."""
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    x, y, v = np.asarray(x_m, float)[ok], np.asarray(y_m, float)[ok], v[ok]
    out = {"range_m": float("nan"), "nugget": float("nan"), "psill": float("nan"), "n_sites": int(v.size)}
    if v.size < 8:
        return out
    ev = empirical_semivariogram(x, y, v)
    if ev["h_m"].size < 4:
        return out
    h, gam, w = ev["h_m"], ev["gamma"], ev["n_pairs"]
    p_struct = _structure_p(x, y, v, ev)
    out["structure_p"] = p_struct
    if p_struct >= 0.05:  # no spatial structure beyond chance: no range to fit
        return out

    def model(p, hh):
        c0, c1, r = p
        return c0 + c1 * (1 - np.exp(-3 * hh / r))

    var = float(np.var(v))
    res = optimize.least_squares(
        lambda p: np.sqrt(w) * (model(p, h) - gam),
        x0=[0.2 * var, 0.8 * var, h.max() / 2],
        bounds=([0, 0, h.min() / 3], [10 * var + 1e-30, 10 * var + 1e-30, 3 * h.max()]),
    )
    c0, c1, r = (float(t) for t in res.x)
    # a range below the first distance bin is indistinguishable from a nugget (no structure the
    # sites resolve), one beyond the last bin is not seen by them either
    if not res.success or c1 <= 0.05 * (c0 + c1) or not h.min() <= r <= h.max():
        return {**out, "nugget": c0, "psill": c1}
    return {"range_m": r, "nugget": c0, "psill": c1, "n_sites": int(v.size), "structure_p": p_struct}


def _structure_p(x, y, v, ev, n_perm: int = 199, seed: int = 0) -> float:
    """Permutation p-value of spatial structure: the semivariance of the two shortest distance
    bins is lower than with the values shuffled among the sites (no structure)."""
    h = pdist(np.column_stack([x, y]))
    edges_hi = np.sort(ev["h_m"])[1] if ev["h_m"].size > 1 else h.max()
    near = h <= edges_hi

    def stat(vals):
        return float(np.mean(0.5 * pdist(vals[:, None], "sqeuclidean")[near]))

    obs = stat(v)
    rng = np.random.default_rng(seed)
    null = np.array([stat(rng.permutation(v)) for _ in range(n_perm)])
    return float((1 + np.sum(null <= obs)) / (n_perm + 1))


def block_size_m(x_m, y_m, values, default_m: float = DEFAULT_BLOCK_M, min_m: float = 1000.0) -> dict:
    """Block size for spatial CV: the residuals' practical range, at least ``min_m``; ``default_m``
    when no range can be fitted. ``{block_m, source, ...}`` (the fit's numbers included)."""
    fit = residual_range_m(x_m, y_m, values)
    if np.isfinite(fit["range_m"]):
        return {
            **fit,
            "block_m": max(min_m, fit["range_m"]),
            "source": "practical range of the residuals' semivariogram",
        }
    return {**fit, "block_m": default_m, "source": f"default {default_m:.0f} m (no spatial structure fitted)"}
