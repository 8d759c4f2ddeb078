"""Where the realistic world's DDT bias comes from (issue 13): DDT over the thaw season at 1 km of
the all-sky truth vs the clear-sky daily mean, the old (day + night)/2 composites and the new
GOT01 daily means (Terra alone, Terra + Aqua), gaps replaced by the truth so only the sampling of
valid composites is compared. Usage: python scripts/diag_ddt_bias.py SEED YEAR
"""

import sys
import warnings

import numpy as np

from gee_alt.demo.realistic import sensors
from gee_alt.demo.realistic.scene import RealisticScene, RealisticSpec
from gee_alt.science.daily_lst import daily_mean_from_pair, screen_cold_outliers

warnings.simplefilter("ignore")
seed = int(sys.argv[1])
year = int(sys.argv[2])
sc = RealisticScene(RealisticSpec(seed=seed, size_px=256))
s = sc.spec
sky = sc.sky_in_year(year)
w, cooling, clear_sky, lst = sky.weather, sky.cooling, sky.clear_sky, sky.lst
ops = sc.lst_footprints
wins = sensors.composite_windows(year, len(w.doy))


def comp(daily):
    px = ops.apply(daily)
    return np.stack([np.nanmean(px[d0 : d0 + nd], axis=0) for d0, nd in wins])


days = np.array([nd for _, nd in wins], float)
mids = np.array([d0 + (nd - 1) / 2 + 1 for d0, nd in wins])
season = (mids >= 60) & (mids <= 334)
allsky_c = comp(clear_sky - cooling)
clear_c = comp(clear_sky)


def ddt(c):
    c = np.where(np.isfinite(c), c, allsky_c)  # gaps: the all-sky truth (isolates the sampling of valid windows)
    return (np.clip(c, 0, None) * days[:, None, None])[season].sum(0)


m = {}
for sen in ("terra", "aqua"):
    m[sen] = screen_cold_outliers(
        daily_mean_from_pair(
            lst.looks[sen + "_day"],
            lst.looks[sen + "_night"],
            lst.view_hours[sen + "_day"],
            lst.view_hours[sen + "_night"],
            mids[:, None, None],
            38.1,
        )
    )
new = np.nanmean(np.stack([m["terra"], m["aqua"]]), axis=0)  # (no offset: one year)
tonly = m["terra"]
A = ddt(allsky_c)
ok = np.isfinite(A)
for name, c in (
    ("clear-sky daily mean (no cloud cooling)", clear_c),
    ("old (day+night)/2 composites", lst.lst_degc),
    ("new GOT01 daily mean T+A", new),
    ("new GOT01 Terra only", tonly),
):
    print(f"{name:45s} DDT bias vs all-sky {np.nanmean((ddt(c) - A)[ok]):+7.1f}  (all-sky DDT {A[ok].mean():.0f})")
print(
    "valid windows old",
    np.isfinite(lst.lst_degc[season]).mean().round(3),
    "new",
    np.isfinite(new[season]).mean().round(3),
)
