"""The Stefan E of disturbed ground (issue 17 item 5): mines, spoil, dug pixels.

Digging changes the ground (spoil loses its peat and organic mat), so the Stefan coefficient
``E`` of a pixel changes at the year it is disturbed. Given which in-situ site-years are on
disturbed ground (the site's pixel has a disturbance start year and the record's year is at or
after it), this module fits one E of disturbed ground and decides whether to use it:

- **Estimator** (:func:`fit_disturbed_e`): the Tobit/least-squares E of the disturbed site-years,
  partially pooled toward the pooled E of all site-years exactly as the per-class E's are
  (:func:`gee_alt.science.stefan.partial_pool`: two groups, undisturbed and disturbed, τ² by
  DerSimonian–Laird on their site-level E's). Interval: Student-t on the disturbed sites'
  site-level E (n − 1 dof) with the sd of the partially pooled estimate
  ``sqrt(B se² + (1 − B)² sd(E_pool)²)``; below 15 disturbed sites a one-line warning says so.
- **Undisturbed ground** (before the start year, and every pixel never disturbed) uses the model
  fitted on the undisturbed site-years only: the pooled E, or its class E where per-class E is
  chosen (:class:`~gee_alt.science.stefan.StefanCalibration`'s own class choice).
- **Choice** (:func:`fit_with_disturbance`): leave-one-site-out, like the class choice. Model A
  (today's): one calibration on all site-years, disturbed or not. Model B: the undisturbed model +
  the disturbed-ground E. Each site is held out in turn from every part that is refitted; B is
  kept only when its LOO RMSE over all exact site-years is lower. Both numbers are reported
  (``disturbance_choice`` in ``calibration.json``).

A restoration year does not switch the E back: restored spoil is still not the original ground.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from gee_alt.errors import GeeAltError

#: the warning when a disturbance map is given but no in-situ site-year lies on disturbed ground
NO_DISTURBED_ROWS = (
    "no in-situ site-year on disturbed ground (at/after its pixel's disturbance start year): the E of disturbed "
    "ground cannot be fitted, disturbed pixels use the undisturbed E"
)

#: below this many disturbed sites the interval is a t-interval on site-level E and a warning says so
MIN_SITES_FOR_QUIET = 15


def site_years_disturbed(start_year_at_site, years) -> np.ndarray:
    """Bool per in-situ row: its site's pixel has a disturbance start year (> 0) and the row's
    year is at or after it. ``start_year_at_site`` int per row (0 or NaN: never disturbed)."""
    s = np.nan_to_num(np.asarray(start_year_at_site, float), nan=0.0)
    return (s > 0) & (np.asarray(years, float) >= s)


def fit_disturbed_e(x, y, code, sites, disturbed, e_sd_pool: float = float("nan"), level: float = 0.95) -> dict:
    """The partially pooled E of disturbed ground from rows of ``x = √DDT``, ``y = ALT`` (m),
    censor ``code`` (0 exact, 1 ``>``, −1 ``<``), site labels and the ``disturbed`` flags.

    Returns ``E`` (partially pooled), ``E_raw``, ``E_pool`` (all rows), ``se`` (of the disturbed
    sites' mean site-level E), ``shrinkage_B``, ``tau2``, ``n_sites``, ``n_site_years``, ``ci``
    (t-interval, NaN below 2 sites) and ``sd`` (of the estimate). Raises :class:`GeeAltError`
    when the disturbed rows cannot be fitted.
    """
    from gee_alt.science.stefan import _site_e, fit_e_censored, partial_pool

    x, y = np.asarray(x, float), np.asarray(y, float)
    code, sites, dist = np.asarray(code), np.asarray(sites).astype(str), np.asarray(disturbed, bool)
    cflags = np.where(code == 1, ">", np.where(code == -1, "<", ""))
    if not dist.any():
        raise GeeAltError("no disturbed site-year to fit an E of disturbed ground")
    e_pool = fit_e_censored(x, y, cflags)[0]
    raw, se, n = {}, {}, {}
    for name, m in (("undisturbed", ~dist), ("disturbed", dist)):
        if not m.any():
            continue
        raw[name] = fit_e_censored(x[m], y[m], cflags[m])[0]
        _, es = _site_e(x[m], y[m], code[m], sites[m])
        n[name] = int(len(np.unique(sites[m])))
        se[name] = float(np.std(es, ddof=1) / math.sqrt(es.size)) if es.size >= 2 else float("nan")
    pooled, b, tau2 = partial_pool(e_pool, raw, se)
    nd, se_d, bd = n["disturbed"], se["disturbed"], b["disturbed"]
    sd_pool = e_sd_pool if np.isfinite(e_sd_pool) else 0.0
    if nd >= 2 and np.isfinite(se_d):
        sd = math.sqrt(bd * se_d**2 + (1 - bd) ** 2 * sd_pool**2)
        half = float(stats.t.ppf(0.5 + level / 2.0, nd - 1)) * sd
        ci = (pooled["disturbed"] - half, pooled["disturbed"] + half)
    else:
        sd, ci = float("nan"), (float("nan"), float("nan"))
    return {
        "E": float(pooled["disturbed"]),
        "E_raw": float(raw["disturbed"]),
        "E_pool": float(e_pool),
        "se": se_d,
        "shrinkage_B": float(bd),
        "tau2": float(tau2),
        "n_sites": nd,
        "n_site_years": int(dist.sum()),
        "ci": (float(ci[0]), float(ci[1])),
        "sd": float(sd),
    }


def loo_disturbed_pred(x, y, code, sites, disturbed, level: float = 0.95) -> np.ndarray:
    """Leave-one-site-out prediction (m) of every disturbed row (NaN elsewhere): each site's
    disturbed rows predicted by the disturbed-ground E fitted without the site (:func:`disturbed_e_or_pool`)."""
    x, sites, dist = np.asarray(x, float), np.asarray(sites).astype(str), np.asarray(disturbed, bool)
    code = np.asarray(code)
    pred = np.full(x.size, np.nan)
    for s in np.unique(sites[dist]):
        test, train = dist & (sites == s), sites != s
        if not train.any():
            continue
        try:
            e = disturbed_e_or_pool(x[train], y[train], code[train], sites[train], dist[train], level)
        except GeeAltError:
            continue
        pred[test] = e * x[test]
    return pred


def disturbed_e_or_pool(x, y, code, sites, disturbed, level: float = 0.95) -> float:
    """The E a model refitted on these rows gives disturbed ground: the partially pooled E of
    disturbed ground (:func:`fit_disturbed_e`), or, when the rows have no disturbed site-year that
    can be fitted (none, or fewer than two exact values), the pooled E of all rows, as the
    deployed model does without one. Raises :class:`GeeAltError` when neither can be fitted."""
    from gee_alt.science.stefan import fit_e_censored

    code = np.asarray(code)
    if np.asarray(disturbed, bool).any():
        try:
            return float(fit_disturbed_e(x, y, code, sites, disturbed, level=level)["E"])
        except GeeAltError:
            pass
    cf = np.where(code == 1, ">", np.where(code == -1, "<", ""))
    return float(fit_e_censored(np.asarray(x, float), np.asarray(y, float), cf)[0])


def _params(est) -> dict:
    return {k: getattr(est, k) for k in ("n_boot", "level", "random_state", "by_class", "min_sites_per_class")}


def fit_with_disturbance(est, ddt_degc_days, alt_m, site_ids, classes, censored, disturbed):
    """Fit ``est`` (a :class:`~gee_alt.science.stefan.StefanCalibration`) with a disturbed-ground
    E, decided by leave-one-site-out (see the module doc). Returns ``est``."""
    from gee_alt.science.stefan import StefanCalibration, _censor_codes, cv_metrics, residual_e_sd

    d = np.asarray(ddt_degc_days, float).ravel()
    y = np.asarray(alt_m, float).ravel()
    n = d.size
    dist = np.asarray(disturbed, bool).ravel()
    if dist.size != n:
        raise ValueError(f"disturbed has {dist.size} entries, expected {n}")
    sites = np.asarray(site_ids, dtype=object).ravel().astype(str)
    cls = None if classes is None else np.asarray(classes, dtype=object).ravel()
    cens = None if censored is None else np.asarray(censored, dtype=object).ravel()
    code = _censor_codes(cens, n)
    full = StefanCalibration(**_params(est)).fit(d, y, sites, classes=cls, censored=cens)
    und = ~dist
    ok = np.isfinite(d) & np.isfinite(y) & (d > 0) & (y > 0)
    try:
        base = StefanCalibration(**_params(est)).fit(
            d[und],
            y[und],
            sites[und],
            classes=None if cls is None else cls[und],
            censored=None if cens is None else cens[und],
        )
        x = np.sqrt(np.where(ok, d, np.nan))
        m = ok & np.isfinite(x)
        fitted = fit_disturbed_e(x[m], y[m], code[m], sites[m], dist[m], base.e_sd_, est.level)
    except GeeAltError as exc:
        est.__dict__.update(full.__dict__)
        est.warnings_ = [*full.warnings_, f"disturbed-ground E not fitted ({exc}); one E for all ground"]
        est.disturbance_choice_ = {"used": False, "reason": str(exc)}
        return est
    # leave-one-site-out predictions of both models, per row in the caller's order
    pred_b = np.full(n, np.nan)
    pred_b[np.nonzero(und)[0]] = base.loo_pred_m_
    pred_d = np.full(n, np.nan)
    pred_d[np.nonzero(m)[0]] = loo_disturbed_pred(x[m], y[m], code[m], sites[m], dist[m], est.level)
    pred_b[dist] = pred_d[dist]
    pred_a = full.loo_pred_m_
    exact = ok & (code == 0) & np.isfinite(pred_a) & np.isfinite(pred_b)
    a_all, b_all = cv_metrics(pred_a[exact], y[exact]), cv_metrics(pred_b[exact], y[exact])
    ed = exact & dist
    a_d, b_d = cv_metrics(pred_a[ed], y[ed]), cv_metrics(pred_b[ed], y[ed])
    use = bool(b_all["rmse_m"] < a_all["rmse_m"])
    choice = {
        "estimator": "E of disturbed site-years (at/after the pixel's disturbance start year), partially pooled "
        "toward the pooled E (two groups, tau^2 by DerSimonian-Laird on site-level E); interval: Student-t on the "
        "disturbed sites' site-level E; undisturbed ground (before the start year, never-disturbed pixels) uses "
        "the calibration fitted on undisturbed site-years only (pooled E, or class E where per-class E is chosen)",
        "E_raw": fitted["E_raw"],
        "E_partial_pooled": fitted["E"],
        "E_pool_all_rows": fitted["E_pool"],
        "shrinkage_B": fitted["shrinkage_B"],
        "tau2": fitted["tau2"],
        "n_sites": fitted["n_sites"],
        "n_site_years": fitted["n_site_years"],
        "ci95": list(fitted["ci"]),
        "loo_rmse_one_e_m": a_all["rmse_m"],
        "loo_rmse_with_disturbed_e_m": b_all["rmse_m"],
        "loo_rmse_disturbed_rows_one_e_m": a_d["rmse_m"],
        "loo_rmse_disturbed_rows_with_disturbed_e_m": b_d["rmse_m"],
        "loo_n": a_all["n"],
        "loo_n_disturbed": a_d["n"],
        "used": use,
    }
    if not use:
        est.__dict__.update(full.__dict__)
        est.warnings_ = [
            *full.warnings_,
            f"disturbed-ground E not used: leave-one-site-out RMSE {b_all['rmse_m']:.3f} m with it vs "
            f"{a_all['rmse_m']:.3f} m with one E for all ground",
        ]
        est.e_disturbed_ = float("nan")
        est.e_ci_disturbed_ = (float("nan"), float("nan"))
        est.resid_e_sd_disturbed_ = float("nan")
        est.disturbance_choice_ = choice
        return est
    est.__dict__.update(base.__dict__)
    est.e_disturbed_ = fitted["E"]
    est.e_ci_disturbed_ = fitted["ci"]
    cf = np.where(code == 1, ">", np.where(code == -1, "<", ""))
    sd_d = fitted["sd"] if np.isfinite(fitted["sd"]) else base.e_sd_
    dm = dist & ok
    est.resid_e_sd_disturbed_ = residual_e_sd(np.sqrt(d[dm]), y[dm], cf[dm], pred_b[dm], sd_d)
    est.loo_pred_m_ = np.where(ok, pred_b, np.nan)
    loo = cv_metrics(pred_b[ok & (code == 0) & np.isfinite(pred_b)], y[ok & (code == 0) & np.isfinite(pred_b)])
    est.loo_ = {**base.loo_, **loo}
    est.n_used_, est.n_dropped_ = full.n_used_, full.n_dropped_
    est.n_sites_, est.n_censored_, est.drop_reasons_ = full.n_sites_, full.n_censored_, full.drop_reasons_
    est.warnings_ = list(base.warnings_)
    if fitted["n_sites"] < MIN_SITES_FOR_QUIET:
        est.warnings_.append(
            f"disturbed-ground E from {fitted['n_sites']} sites (< {MIN_SITES_FOR_QUIET}): its interval is a "
            "t-interval on site-level E"
        )
    est.disturbance_choice_ = choice
    return est
