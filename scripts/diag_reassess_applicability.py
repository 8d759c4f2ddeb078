# ruff: noqa: E402, E501
"""Re-assess a finished demo run with this checkout's area-of-applicability code (issue 17): the map-error
estimate against the true map RMSE, 95 % coverage by true class with the new ALT sd (the written sd
deflated by the run's old strata inflation, then inflated by the new term), and the ALT if E were shifted
by the covariate drift (E + d̂). Reads the truth: a diagnostic, not engine code.
Usage: python scripts/diag_reassess_applicability.py RUN
"""

import csv
import json
import sys
import types

import numpy as np

from gee_alt import runs
from gee_alt.applicability_run import prepare
from gee_alt.demo.scoring import LANDCOVER_NAMES
from gee_alt.downstream import Calibrated, SiteFields
from gee_alt.io import read_raster

run = sys.argv[1]
summ = json.load(open(f"{run}/calibration.json"))
old = json.load(open(f"{run}/applicability.json"))
rows = list(csv.DictReader(open(f"{run}/insitu_used.csv")))
table = types.SimpleNamespace(
    site_id=np.array([r["site_id"] for r in rows]),
    lon=np.array([float(r["lon"]) for r in rows]),
    lat=np.array([float(r["lat"]) for r in rows]),
)
dem = read_raster(f"{run}/dem.tif")
fields = SiteFields(
    dem.data[0].astype(float),
    read_raster(f"{run}/ndvi_mean.tif").data[0].astype(float),
    read_raster(f"{run}/landcover.tif").data[0].astype(float),
)
ys = runs.years_of(run, "alt")
alt = np.stack([read_raster(runs.alt_path(run, y)).data[0] for y in ys]).astype(float)
sd = np.stack([read_raster(runs.alt_sd_path(run, y)).data[0] for y in ys]).astype(float)
ddt = np.stack([read_raster(runs.ddt_path(run, y)).data[0] for y in ys]).astype(float)
app = prepare(fields, Calibrated(None, summ, table), dem.grid, mapped_years=np.isfinite(alt).sum(0))
# old extra (strata constants) to deflate the written sd
me = old["map_error"]
e_sd = summ["E_sd"]
tau = summ["resid_E_sd"] or 0
oi = read_raster(f"{run}/aoa.tif").data[1] > 0.5
lc = fields.landcover
sc = old["site_classes"] or []
samp = np.isin(np.nan_to_num(lc, nan=-1).astype(int), sc)
mse_in = me["mse_e_inside"]
mse_out = me["mse_e_outside"]
ms = me.get("mse_e_map_sampled_classes", mse_in)
mu = me.get("mse_e_map_unsampled_classes", mse_out)
old_mse = np.where(samp, max(ms, mse_in), max(mu, mse_out))
old_extra = np.clip(old_mse - e_sd**2 - tau**2, 0, None)
base_var = sd**2 - np.where(~oi, old_extra, 0)[None] * np.clip(ddt, 0, None)
new_sd = np.sqrt(base_var + np.where(~app.inside, app.extra, 0)[None] * np.clip(ddt, 0, None))
t_alt = np.stack([read_raster(runs.truth_path(run, "alt", y)).data[0] for y in ys]).astype(float)
tl = np.nan_to_num(read_raster(runs.truth_path(run, "landcover")).data[0]).astype(int)
ok = np.isfinite(t_alt) & np.isfinite(alt)
err = alt - t_alt
true = np.sqrt(np.mean(err[ok] ** 2))
d = np.where(ok, np.clip(ddt, 0, None), np.nan)
est = np.sqrt(np.nanmean(d * app.mse_px[None]))
ins = ok & app.inside[None]
print(
    f"{run}: estimate {est:.3f} vs true {true:.3f} ({100 * (est / true - 1):+.0f} %); inside est {np.sqrt(np.nanmean(np.where(ins, d * app.mse_px[None], np.nan))):.3f} true {np.sqrt(np.mean(err[ins] ** 2)):.3f}"
)
z_old = np.abs(err) / sd
z_new = np.abs(err) / new_sd
print(
    f"coverage95 old {np.mean(z_old[ok] <= 1.96):.3f} new {np.mean(z_new[ok] <= 1.96):.3f}; 68: old {np.mean(z_old[ok] <= 1):.3f} new {np.mean(z_new[ok] <= 1):.3f}"
)
for k in np.unique(tl):
    m = ok & (tl == k)[None]
    if m.any():
        out_m = m & ~app.inside[None]
        print(
            f"  {LANDCOVER_NAMES.get(k)}: true rmse {np.sqrt(np.mean(err[m] ** 2)):.3f} est {np.sqrt(np.nanmean(np.where(m, d * app.mse_px[None], np.nan))):.3f}; cov95 old {np.mean(z_old[m] <= 1.96):.2f} new {np.mean(z_new[m] <= 1.96):.2f}"
        )
x = app.ext
print(json.dumps({k: v for k, v in x.items() if k != "formula"}, indent=0, default=float)[:1500])
# item 3 experiment: E shifted by the covariate drift in the ALT itself (E + d) / E
from gee_alt.applicability_run import _site_e_units, _site_pixels
from gee_alt.grid import pixel_size
from gee_alt.science.applicability import EDrift, predictors

pred = predictors(fields.dem_m, fields.ndvi_mean, pixel_size(dem.grid))
names = list(pred)
px = _site_pixels(dem.grid, table, {q["site_id"] for q in summ["pairs"]})
sites = sorted(px)
xs = np.array([[pred[k][px[s]] for k in names] for s in sites]) / app.aoa.scale_
lcs = fields.landcover
eb = {str(k): v for k, v in (summ.get("E_by_class") or {}).items()}
edep = np.array([eb.get(str(int(lcs[px[s_]])), summ["E"]) if np.isfinite(lcs[px[s_]]) else summ["E"] for s_ in sites])
dr = EDrift().fit(xs, _site_e_units(summ["pairs"], sites) - edep)
if dr.used_:
    X = np.stack([pred[k] for k in names], -1) / app.aoa.scale_
    dpx = dr.predict(X.reshape(-1, len(names))).reshape(X.shape[:2])
    e_dep = np.where(np.isfinite(alt), alt / np.sqrt(np.clip(ddt, 1e-9, None)), np.nan)
    alt2 = np.sqrt(np.clip(ddt, 0, None)) * np.clip(e_dep + dpx[None], 0, None)
    err2 = alt2 - t_alt
    print(
        f"ITEM3 E+drift: map rmse {np.sqrt(np.mean(err2[ok] ** 2)):.3f} bias {err2[ok].mean():+.3f} (before {true:.3f} bias {err[ok].mean():+.3f})"
    )
    for k in np.unique(tl):
        m = ok & (tl == k)[None]
        if m.any():
            print(
                f"   {LANDCOVER_NAMES.get(k)}: rmse {np.sqrt(np.mean(err[m] ** 2)):.3f} -> {np.sqrt(np.mean(err2[m] ** 2)):.3f}, bias {err[m].mean():+.3f} -> {err2[m].mean():+.3f}"
            )
    print("site LOO rmse E: regression", dr.loo_rmse_, "mean", dr.loo_rmse_mean_)
else:
    print("ITEM3: drift not used (LOO)")
