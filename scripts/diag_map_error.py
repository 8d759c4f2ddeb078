"""Where a demo run's ALT map error comes from (issue 17): per true land-cover class and inside /
outside the area of applicability, the true ALT RMSE and bias, split into the E part and the DDT
part of ``ALT_eng − ALT_true = E_eng (√DDT_eng − √DDT_true) + (E_eng − E_true) √DDT_true``
(``E_true`` = true ALT / √true DDT), the run's ALT sd coverage, and the run's own estimate.

Reads a finished demo run (its products and its ``truth/``: a diagnostic, not engine code).
Usage: python scripts/diag_map_error.py RUN
"""

import json
import sys
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.demo.scoring import LANDCOVER_NAMES
from gee_alt.io import read_raster

run = Path(sys.argv[1])
years = runs.years_of(run, "alt")
lc = np.nan_to_num(read_raster(runs.truth_path(run, "landcover")).data[0]).astype(int)
aoa = read_raster(run / runs.AOA_TIF).data
inside = aoa[1] > 0.5
cal = json.loads((run / "calibration.json").read_text()) if (run / "calibration.json").exists() else {}
app = json.loads((run / runs.APPLICABILITY_JSON).read_text())

rows = {}  # (class, inside) -> lists
for y in years:
    t_alt = read_raster(runs.truth_path(run, "alt", y)).data[0]
    t_ddt = read_raster(runs.truth_path(run, "ddt", y)).data[0]
    e_alt = read_raster(runs.alt_path(run, y)).data[0]
    e_sd = read_raster(runs.alt_sd_path(run, y)).data[0]
    e_ddt = read_raster(runs.ddt_path(run, y)).data[0]
    ok = np.isfinite(t_alt) & np.isfinite(e_alt) & (t_ddt > 0) & (e_ddt > 0)
    xt, xe = np.sqrt(np.clip(t_ddt, 0, None)), np.sqrt(np.clip(e_ddt, 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        e_eng = e_alt / xe
        e_true = t_alt / xt
    for k in np.unique(lc[ok]):
        for ins in (True, False):
            m = ok & (lc == k) & (inside == ins)
            if not m.any():
                continue
            r = rows.setdefault(
                (int(k), ins), {"err": [], "ddt_part": [], "e_part": [], "z": [], "e_eng": [], "e_t": []}
            )
            r["err"].append((e_alt - t_alt)[m])
            r["ddt_part"].append((e_eng * (xe - xt))[m])
            r["e_part"].append(((e_eng - e_true) * xt)[m])
            r["z"].append((np.abs(e_alt - t_alt) / e_sd)[m])
            r["e_eng"].append(e_eng[m])
            r["e_t"].append(e_true[m])

tot = sum(np.concatenate(r["err"]).size for r in rows.values())
all_err = np.concatenate([np.concatenate(r["err"]) for r in rows.values()])
print(f"run {run}: {len(years)} years, true map RMSE {np.sqrt(np.mean(all_err**2)):.3f} m, bias {all_err.mean():+.3f}")
print(
    f"{'class':22s} {'AOA':4s} {'share':>6s} {'RMSE':>6s} {'bias':>7s} {'DDTpart':>8s} {'Epart':>7s} "
    f"{'E_eng':>7s} {'E_true':>7s} {'sdE_t':>6s} {'cov95':>6s} {'MSEcontrib':>10s}"
)
for (k, ins), r in sorted(rows.items()):
    err = np.concatenate(r["err"])
    z = np.concatenate(r["z"])
    et = np.concatenate(r["e_t"])
    print(
        f"{LANDCOVER_NAMES.get(k, str(k)):22s} {'in' if ins else 'out':4s} {err.size / tot:6.3f} "
        f"{np.sqrt(np.mean(err**2)):6.3f} {err.mean():+7.3f} {np.concatenate(r['ddt_part']).mean():+8.3f} "
        f"{np.concatenate(r['e_part']).mean():+7.3f} {np.nanmean(np.concatenate(r['e_eng'])):7.4f} "
        f"{np.nanmean(et):7.4f} {np.nanstd(et):6.4f} {np.mean(z <= 1.96):6.2f} "
        f"{np.sum(err**2) / np.sum(all_err**2):10.3f}"
    )
me = app["map_error"]
print(
    "estimate rmse_m", me.get("rmse_m"), "lower_bound", me.get("lower_bound"), "site classes", app.get("site_classes")
)
cc = cal.get("class_choice") or cal.get("calibration", {}).get("class_choice")
print("E", cal.get("E"), "E_by_class", cal.get("E_by_class"), "resid_E_sd", cal.get("resid_E_sd"))
if cc:
    print("class_choice tau2", cc.get("tau2"), "used", cc.get("used"))
    for k, v in cc["by_class"].items():
        print("  ", k, {a: (round(b, 5) if isinstance(b, float) else b) for a, b in v.items()})
