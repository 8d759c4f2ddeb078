"""Where does a realistic-world demo's warming go? Stage-by-stage window means and Theil-Sen slopes.

usage: PYTHONPATH=$PWD python scripts/diag_warming_stages.py RUN_DIR [--json OUT.json]

For a finished ``gee-alt demo`` run (realistic world), one row per stage with the Theil-Sen slope
of the per-year window mean (per decade, 95 % CI) and the first/last year:

- the world's realized regional weather (``t_ref`` at 4000 m: annual, thaw season, cold season)
  and its regional all-sky skin DDT, DDF (July of Y-1 to June of Y) and frost number: what any
  sensor could see, rebuilt from the seed (the world's own code, no engine science);
- the raw MODIS looks (mean of valid composites: Terra/Aqua, day/night, thaw/cold windows);
- the engine's coarse record after each step, with the engine's own functions: per-sensor daily
  mean from the diurnal model, Terra-referenced (Aqua offset, cold screen), gap-filled from the
  climatology anomaly, coarse DDT (sparse-season mask) / DDF / single-year F;
- the run's 30 m DDT, DDF, single-year F, the product's multi-year F, class and presence
  probability; the truth's DDT and permafrost fraction (``truth/alt_YYYY.tif`` finite).

Coarse means are weighted by the 30 m pixels each 1 km pixel covers (nearest), so every row is a
mean over the same window. Diagnosis only: writes nothing into RUN_DIR.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import rasterio
from scipy.stats import theilslopes

from gee_alt.engines.local.engine import LocalEngineParams
from gee_alt.engines.local.layout import InputLayout, _band_tags, _day_night_looks
from gee_alt.engines.local.season import composite_key, lst_climatology, plan_season
from gee_alt.io import read_raster
from gee_alt.science.daily_lst import daily_mean_from_pair
from gee_alt.science.resample import interpolate
from gee_alt.science.thaw import ddf_from_composites, ddt_from_composites, frost_number


def world_rows(seed: int, warming: float, years: list[int]) -> dict[str, dict[int, float]]:
    """The world's realized regional weather and regional all-sky skin indices at 4000 m."""
    from gee_alt.demo.fields import rng_for
    from gee_alt.demo.realistic import climate, ground
    from gee_alt.demo.realistic.scene import N_WETTING

    rows: dict[str, dict[int, float]] = {}
    skin = {}
    for y in [years[0] - 1, *years]:
        w = climate.year_weather(seed, y, warming, N_WETTING)
        thaw = (w.doy >= 60) & (w.doy <= 334)
        t = w.t_ref_degc + ground.CLIMATE_OFFSET_DEGC - ground.cloud_cooling(w.doy) * w.cloud
        rng = rng_for(seed, 603, y)  # the regional snow season as RealisticScene.snow draws it
        d_warm = warming * (y - 2000)
        melt = 118.0 + 7.0 * rng.standard_normal() - 6.0 * d_warm
        onset = 290.0 + 6.0 * rng.standard_normal() + 6.0 * d_warm
        snowy = (w.doy < melt) | (w.doy >= onset)
        skin[y] = (np.where(snowy, np.minimum(t, ground.SNOW_SKIN_MAX_DEGC), t), w.doy)
        if y in years:
            rows.setdefault("world t_ref annual (degC)", {})[y] = w.t_ref_degc.mean()
            rows.setdefault("world t_ref Mar-Nov (degC)", {})[y] = w.t_ref_degc[thaw].mean()
            rows.setdefault("world t_ref Dec-Feb (degC)", {})[y] = w.t_ref_degc[~thaw].mean()
    for y in years:
        (t, doy), (tp, dp) = skin[y], skin[y - 1]
        ddt = np.clip(t, 0, None).sum()
        ddf = np.clip(-tp[dp >= 182], 0, None).sum() + np.clip(-t[doy < 182], 0, None).sum()
        rows.setdefault("world skin DDT 4000 m", {})[y] = ddt
        rows.setdefault("world skin DDF 4000 m", {})[y] = ddf
        rows.setdefault("world skin F 4000 m", {})[y] = float(frost_number(ddf, ddt))
    return rows


def engine_rows(run: Path, years: list[int]) -> dict[str, dict[int, float]]:
    layout = InputLayout(run / "inputs")
    params = LocalEngineParams()
    clim = lst_climatology(layout, years)
    comp0 = layout.modis_lst(years[0])
    cgrid, (cy, cx) = comp0.raster.grid, comp0.raster.data.shape[1:]
    nearest = interpolate(np.arange(cy * cx, dtype="float64").reshape(1, cy, cx), cgrid, layout.grid, "nearest")[0]
    weights = np.bincount(nearest[np.isfinite(nearest)].astype(int), minlength=cy * cx).reshape(cy, cx).astype(float)

    def wmean(a):
        a = np.asarray(a, float)
        w = np.where(np.isfinite(a), weights, 0.0)
        with np.errstate(invalid="ignore"):
            return (np.nan_to_num(a) * w).sum(axis=(-2, -1)) / w.sum(axis=(-2, -1))

    rows: dict[str, dict[int, float]] = {}

    def put(name, y, v):
        rows.setdefault(name, {})[y] = float(v)

    halves = {}
    for y in years:
        path = layout.modis_lst_path(y)
        r = read_raster(path)
        tags = _band_tags(path, r.data.shape[0])
        starts = [dt.date.fromisoformat(d.strip()[:10]) for d in r.descriptions]
        looks = _day_night_looks(path, r, tags, starts, np.asarray([float(t.get("days", 8)) for t in tags]))
        comp = layout.modis_lst(y)
        plan = plan_season(comp, clim.get(composite_key(comp)), params, path.name)
        parts = (("thaw", plan.season), ("cold", ~plan.season))
        doy = np.array(
            [s.timetuple().tm_yday + (n - 1) / 2 for s, n in zip(looks["starts"], looks["days"], strict=True)]
        )
        for s in ("terra", "aqua"):
            b = looks[s]
            m = daily_mean_from_pair(
                b["day"], b["night"], b["day_view_time"], b["night_view_time"], doy[:, None, None], layout._latitude()
            )
            for nm, sel in parts:
                for look in ("day", "night"):
                    if np.isfinite(b[look][sel]).any():
                        put(f"raw {s} {look} {nm} (degC)", y, np.nanmean(wmean(b[look][sel])))
                if np.isfinite(m[sel]).any():
                    put(f"1 {s} daily mean {nm} (degC)", y, np.nanmean(wmean(m[sel])))
        for nm, sel in parts:
            put(f"2 Terra-referenced {nm} (degC)", y, np.nanmean(wmean(comp.raster.data[sel])))
            put(f"3 gap-filled {nm} (degC)", y, np.mean(wmean(plan.filled[sel])))
        f, d = plan.filled, plan.days
        ddt = np.where(plan.ok_thaw, ddt_from_composites(f[plan.season], d[plan.season]), np.nan)
        put("4 coarse DDT (masked)", y, wmean(ddt))
        put("4 coarse share with enough composites", y, wmean(plan.ok_thaw.astype(float)))
        spring = np.where(plan.ok_spring, ddf_from_composites(f[plan.spring], d[plan.spring]), np.nan)
        autumn = np.where(plan.ok_autumn, ddf_from_composites(f[~plan.spring], d[~plan.spring]), np.nan)
        halves[y] = (spring, autumn, ddt)
    for y in years:
        spring, autumn, ddt = halves[y]
        ddf = (halves[y - 1][1] if y - 1 in halves else autumn) + spring
        put("4 coarse DDF", y, wmean(ddf))
        put("4 coarse F (single year)", y, wmean(frost_number(ddf, ddt)))
    for y in years:
        with rasterio.open(run / "ddt" / f"ddt_{y}.tif") as s:
            ddt30, ddf30 = s.read(1), s.read(4)
        put("5 30 m DDT", y, np.nanmean(ddt30))
        put("5 30 m DDF", y, np.nanmean(ddf30))
        put("5 30 m F (single year)", y, np.nanmean(frost_number(ddf30, ddt30)))
        with rasterio.open(run / "permafrost" / f"permafrost_{y}.tif") as s:
            cls, f_multi = s.read(1), s.read(2)
            prob = s.read(3) if s.count >= 3 else None
        put("6 product F (multi-year)", y, np.nanmean(f_multi))
        put("6 product permafrost class fraction", y, np.nanmean(cls == 1))
        if prob is not None:
            put("6 product presence probability mean", y, np.nanmean(prob))
        with rasterio.open(run / "truth" / f"ddt_{y}.tif") as s:
            put("truth DDT", y, np.nanmean(s.read(1)))
        with rasterio.open(run / "truth" / f"alt_{y}.tif") as s:
            put("truth permafrost fraction", y, np.mean(np.isfinite(s.read(1))))
    return rows


def summarise(rows: dict[str, dict[int, float]]) -> dict[str, dict]:
    out = {}
    for name, d in rows.items():
        ys = np.array(sorted(d))
        v = np.array([d[y] for y in ys])
        ok = np.isfinite(v)
        s = theilslopes(v[ok], ys[ok]) if ok.sum() > 2 else (np.nan,) * 4
        out[name] = {
            "slope_per_decade": 10 * float(s[0]),
            "ci95_per_decade": [10 * float(s[2]), 10 * float(s[3])],
            "first": float(v[0]),
            "last": float(v[-1]),
            "values": {int(y): float(x) for y, x in zip(ys, v, strict=True)},
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    scene = json.loads((a.run / "validation.json").read_text())["scene"]
    years = list(range(scene["years"][0], scene["years"][1] + 1))
    warnings.simplefilter("ignore", RuntimeWarning)
    rows = world_rows(int(scene["seed"]), float(scene["warming_degc_per_yr"]), years)
    rows.update(engine_rows(a.run, years))
    table = summarise(rows)
    print(f"{a.run}: seed {scene['seed']}, {scene['size_px']} px, warming {scene['warming_degc_per_yr']} degC/yr")
    for name, r in table.items():
        lo, hi = r["ci95_per_decade"]
        slope = f"{r['slope_per_decade']:+10.4f} /decade [{lo:+.4f}, {hi:+.4f}]"
        print(f"  {name:40s} {slope}  {r['first']:9.3f} -> {r['last']:9.3f}")
    if a.json:
        a.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
