"""Scoring a demo run against its synthetic truth: every stage, and where the method fails.

:class:`DemoScorer` is handed the engine's intermediate products year by year
(:meth:`DemoScorer.score_year`, at a fixed sample of pixels) and the finished run
(:meth:`DemoScorer.finish`, the run's products in memory); it writes the scores to
``validation.json`` (``truth``, ``truth_table``, which the report shows). The truth is read
from ``RUN/truth`` (written by the world, :mod:`gee_alt.demo.worlds`); nothing of the run is read back.

Breakdowns: LST per composite, per season and per MODIS era (Terra only until 2002, Terra+Aqua
after); DDT per era; ALT on the pixels that have permafrost in the truth, by true land-cover
class, elevation band, mine vs undisturbed and era; how often the truth falls inside the ALT
uncertainty (nominal 68 % and 95 %); permafrost extent; the ALT trend and how many undisturbed
pixels show a significant trend (a false-positive rate when the world has no trend); the mine's
effect on ALT against a before-after/control-impact estimate from the maps.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.errors import GeeAltError
from gee_alt.grid import lonlat_to_rowcol, pixel_size
from gee_alt.io import LastYear, RasterStack, YearMaps, read_raster, write_json_atomic

AQUA_FULL_YEAR = 2003  # first year whose whole thaw season has Aqua as well as Terra
ELEVATION_BANDS_M = (3700.0, 4000.0, 4300.0)
SEASONS = {"DJF": (12, 1, 2), "MAM": (3, 4, 5), "JJA": (6, 7, 8), "SON": (9, 10, 11)}
LANDCOVER_NAMES = {1: "alpine meadow", 2: "swamp meadow", 3: "alpine steppe", 4: "bare rock and scree", 5: "mine"}
MINE_BEFORE_LAST, MINE_AFTER_FIRST = 2002, 2015  # BACI periods (the mine opens 2003, is full by 2014)


def metrics(err: np.ndarray) -> dict:
    """``{rmse, bias, n}`` of the finite errors (float64)."""
    err = np.asarray(err, "float64")
    err = err[np.isfinite(err)]
    if err.size == 0:
        return {"rmse": float("nan"), "bias": float("nan"), "n": 0}
    return {"rmse": float(np.sqrt(np.mean(err**2))), "bias": float(np.mean(err)), "n": int(err.size)}


def era(year: int) -> str:
    """``terra_only`` (2000-2002) or ``terra_aqua``."""
    return "terra_only" if year < AQUA_FULL_YEAR else "terra_aqua"


def season_of(start: str) -> str:
    month = dt.date.fromisoformat(start[:10]).month
    return next(k for k, months in SEASONS.items() if month in months)


class DemoScorer:
    """Scores of one demo run (``run`` directory, its ``scene`` and the truth ``sample``)."""

    def __init__(self, run: str | Path, scene, sample):
        self.run, self.scene, self.sample = Path(run), scene, sample
        self.lst: dict[int, dict] = {}
        self.ndvi_sharp: list[np.ndarray] = []
        self.ndvi_bilinear: list[np.ndarray] = []

    def score_year(self, year: int, p: dict) -> None:
        """Errors of the year's sharpened 30 m LST (every composite) and NDVI, and of bilinear
        interpolation of the coarse inputs, at the sampled pixels."""
        from gee_alt.science.resample import interpolate

        idx, scene, truth = self.sample.index, self.scene, self.sample
        lst = at_pixels(p["lst_30m_degc"], idx)
        bil = interpolate(p["lst_coarse"].values, scene.lst_grid, scene.grid, "bilinear", index=idx)
        starts = [str(b) for b in p["lst_coarse"]["band"].values]
        # kept as exact sums per composite (not the errors): the scorer's memory does not grow with the years
        self.lst[year] = {
            "sharp": [_Moments.of(row) for row in lst - truth.lst_degc[year]],
            "bilinear": _Moments.of(bil - truth.lst_degc[year]),
            "starts": starts,
        }
        nd_b = interpolate(p["ndvi_coarse"].values, scene.ndvi_grid, scene.grid, "bilinear", index=idx)[0]
        self.ndvi_sharp.append(at_pixels(p["ndvi_30m"], idx)[0] - truth.ndvi[year])
        self.ndvi_bilinear.append(nd_b - truth.ndvi[year])

    # ------------------------------------------------------------------ the finished run
    def finish(self, result) -> None:
        """Score the finished run (a :class:`gee_alt.pipeline.RunResult`) and write the scores
        into ``validation.json`` (the report shows its ``truth_table``)."""
        years = result.years
        validation = runs.read_json(self.run, runs.VALIDATION) or {}
        spec = self.scene.spec
        validation.update(
            {
                "synthetic": True,
                "scene": {
                    "world": self.scene.world,
                    "seed": spec.seed,
                    "size_px": spec.size_px,
                    "grid": self.scene.grid,
                    "years": [years[0], years[-1]],
                    **self.sample.world,
                },
            }
        )
        truth = self._truth_scores(result)
        if len(years) >= 5 and result.trend is not None:
            truth["alt_trend"] = self._trend_vs_truth(result, self._always_permafrost)
        mine = self._mine_effect(result)
        if mine:
            truth["mine_effect"] = mine
        app = self._applicability(truth, result)
        if app:
            truth["applicability"] = app
        validation["truth"] = truth
        validation["truth_table"] = truth_table(truth)
        write_json_atomic(self.run / runs.VALIDATION, validation)
        result.validation = validation

    def _strata(self) -> dict[str, np.ndarray]:
        """Flat per-pixel strata of the window: true land cover, elevation band, mine."""
        lc = read_raster(runs.truth_path(self.run, "landcover")).data[0].ravel()
        mine = read_raster(runs.truth_path(self.run, "mine")).data[0].ravel()
        dem = read_raster(runs.dem_path(runs.inputs_dir(self.run))).data[0].ravel()
        return {"landcover": np.nan_to_num(lc).astype(int), "mine": np.nan_to_num(mine).astype(int), "dem_m": dem}

    def _truth_scores(self, result) -> dict:
        """Every stage against the synthetic truth (NDVI, LST, DDT, E, ALT, extent), read one year
        at a time: the errors are summed per year (exact sums, :class:`_Moments`), never stacked."""
        cube, maps, cal = result.engine.cube, result.alt, result.calibration
        strata = self._strata()
        self._strata_cache = strata
        out = {
            "ndvi": _ratio(np.concatenate(self.ndvi_sharp), np.concatenate(self.ndvi_bilinear)),
            "lst_degc": self._lst_scores(),
        }
        n_pix = strata["dem_m"].size
        band = np.digitize(strata["dem_m"], ELEVATION_BANDS_M)
        band_names = _band_names()
        lc = strata["landcover"]
        mine = strata["mine"] > 0
        ddt_err = {"terra_only": _Moments(), "terra_aqua": _Moments()}
        alt_all, alt_era = _Moments(), {"terra_only": _Moments(), "terra_aqua": _Moments()}
        by_lc: dict[int, _Moments] = {}
        by_band = [_Moments() for _ in band_names]
        alt_mine, alt_undisturbed = _Moments(), _Moments()
        cov = {"n1": 0, "n196": 0, "n": 0}
        cov_lc: dict[int, list[int]] = {}
        pf_truth, pf_engine, mapped_no_pf = [], [], []
        accuracy, area_err, kappa = [], [], []
        prob_err, prob_in_ci, thr_acc, thr_err = [], [], [], []
        px_km2 = pixel_size(maps.grid) ** 2 / 1e6
        n_kept = 0
        self._always_permafrost = np.ones(n_pix, bool)
        for i, y in enumerate(maps.years):
            t_ddt = read_raster(runs.truth_path(self.run, "ddt", y)).data[0].ravel()
            t_alt = read_raster(runs.truth_path(self.run, "alt", y)).data[0].ravel()
            ddt_err[era(y)].add(_year_of(cube["ddt_degc_days"], i).ravel() - t_ddt)
            del t_ddt
            pf = np.isfinite(t_alt)
            self._always_permafrost &= pf
            ours = np.asarray(maps.alt_m[i]).ravel()
            pf_truth.append(float(pf.mean()))
            pf_engine.append(float(np.isfinite(ours).mean()))
            mapped_no_pf.append(np.isfinite(ours[~pf]).sum())
            e = maps.permafrost_year(i)
            if e is not None:
                e = e.ravel()
                ok = np.isfinite(e)
                agree = (e[ok] > 0.5) == pf[ok]
                accuracy.append(float(agree.mean()) if ok.any() else float("nan"))
                n_t, n_e = float(pf.sum()), float(np.nansum(e))
                area_err.append((n_e - n_t) / n_t if n_t else float("nan"))
                po, pe = accuracy[-1], (pf[ok].mean() * (e[ok] > 0.5).mean() + (~pf[ok]).mean() * (e[ok] <= 0.5).mean())
                kappa.append(float((po - pe) / (1 - pe)) if pe < 1 else float("nan"))
                if maps.presence_probability is not None:  # the probabilistic area (sum of probabilities)
                    n_t = float(pf.sum())
                    n_p = float(np.nansum(np.asarray(maps.presence_probability[i])))
                    prob_err.append((n_p - n_t) / n_t if n_t else float("nan"))
                    ci = (maps.presence_area or {}).get("area_km2_ci95")
                    if ci:
                        prob_in_ci.append(bool(ci[i][0] <= n_t * px_km2 <= ci[i][1]))
                    if maps.frost_number is not None:  # the frost-number threshold F >= F50 beside it (before)
                        f = np.asarray(maps.frost_number[i]).ravel()
                        okf = np.isfinite(f)
                        thr = f[okf] >= maps.frost_number_min
                        thr_acc.append(float((thr == pf[okf]).mean()) if okf.any() else float("nan"))
                        thr_err.append((float(thr.sum()) - n_t) / n_t if n_t else float("nan"))
                        del f
            del e
            err = (ours - t_alt)[pf]
            sd = np.asarray(maps.alt_sd_m[i]).ravel()[pf]
            del ours, t_alt
            n_kept += int(pf.sum())
            lc_p, band_p, mine_p = lc[pf], band[pf], mine[pf]
            # the finest strata (land cover x elevation band x mine): each pixel-year's error is summed
            # once, into its cell; the cells' exact sums add up to every breakdown
            cell = (lc_p.astype(np.int64) * len(band_names) + band_p) * 2 + mine_p
            order = np.argsort(cell, kind="stable")
            keys, starts = np.unique(cell[order], return_index=True)
            for key, part in zip(keys, np.split(err[order], starts[1:]), strict=True):
                k_lc, rest = divmod(int(key), 2 * len(band_names))
                k_band, k_mine = divmod(rest, 2)
                m = _Moments.of(part)
                for acc in (
                    alt_all,
                    alt_era["terra_only" if y < AQUA_FULL_YEAR else "terra_aqua"],
                    by_band[k_band],
                    alt_mine if k_mine else alt_undisturbed,
                ):
                    acc.merge(m)
                if k_lc > 0:
                    by_lc.setdefault(k_lc, _Moments()).merge(m)
            del order, cell
            ok = np.isfinite(err) & np.isfinite(sd) & (sd > 0)
            z = np.abs(err[ok]) / sd[ok]
            lc_ok = lc_p[ok]
            cov["n1"] += int(np.sum(z <= 1.0))
            cov["n196"] += int(np.sum(z <= 1.959964))
            cov["n"] += int(z.size)
            for k in np.unique(lc_ok):
                if k > 0:
                    zk = z[lc_ok == k]
                    c = cov_lc.setdefault(int(k), [0, 0, 0])
                    c[0] += int(np.sum(zk <= 1.0))
                    c[1] += int(np.sum(zk <= 1.959964))
                    c[2] += int(zk.size)
            del err, sd, z, lc_p, band_p, mine_p, ok, lc_ok
        out["ddt_degc_days"] = {
            **_Moments.merged(ddt_err.values()).metrics(),
            "by_era": {k: v.metrics() for k, v in ddt_err.items() if v.chunks},
        }
        out["E"] = self._e_scores(cal, maps.years)
        out["alt_m"] = {
            **alt_all.metrics(),
            "on": "pixels with permafrost in the truth (where the engine maps ALT: its permafrost)",
            "by_landcover": {LANDCOVER_NAMES.get(k, str(k)): by_lc[k].metrics() for k in sorted(by_lc)},
            "by_elevation_band": {band_names[b]: by_band[b].metrics() for b in range(len(band_names))},
            "mine": alt_mine.metrics(),
            "undisturbed": alt_undisturbed.metrics(),
        }
        out["alt_m"]["by_era"] = {k: v.metrics() for k, v in alt_era.items()}
        n = cov["n"]
        out["alt_sd_coverage"] = {
            "within_1sd": cov["n1"] / n if n else float("nan"),
            "nominal_1sd": 0.6827,
            "within_1.96sd": cov["n196"] / n if n else float("nan"),
            "nominal_1.96sd": 0.95,
            "n": n,
        }
        out["alt_sd_coverage"]["by_landcover"] = {
            LANDCOVER_NAMES.get(k, str(k)): {"within_1sd": c[0] / c[2], "within_1.96sd": c[1] / c[2], "n": c[2]}
            for k, c in sorted(cov_lc.items())
            if c[2]
        }
        no_pf = n_pix * len(maps.years) - n_kept
        out["permafrost"] = {
            "years": list(maps.years),
            "truth_fraction": pf_truth,
            "engine_fraction": pf_engine,
            "engine_maps_extent": bool(np.any(np.array(pf_engine) < 1.0)),
            "alt_mapped_without_permafrost_fraction": float(sum(mapped_no_pf) / no_pf) if no_pf else 0.0,
        }
        if maps.permafrost_map is not None or maps.frost_number is not None:
            from gee_alt.science.frost_climate import band_label

            out["permafrost"].update(
                {
                    "engine_rule": "user permafrost map"
                    if maps.permafrost_map is not None
                    else f"{band_label(*maps.frost_setting)} >= {maps.frost_number_min:.4g}",
                    "frost_number_min": float(maps.frost_number_min),
                    "accuracy": accuracy,
                    "kappa": kappa,
                    "area_error_fraction": area_err,
                    "accuracy_mean": float(np.nanmean(accuracy)),
                    "area_error_mean_fraction": float(np.nanmean(area_err)),
                    "area_error_max_abs_fraction": float(np.nanmax(np.abs(area_err))),
                    # ALT error on the pixels with permafrost in the truth that the engine maps
                    "alt_bias_m_on_permafrost": out["alt_m"]["bias"],
                    "alt_rmse_m_on_permafrost": out["alt_m"]["rmse"],
                }
            )
            if maps.permafrost_class is not None:
                out["permafrost"]["engine_rule"] = "presence probability >= 0.5 (class map)"
                out["permafrost"]["area_error_note"] = (
                    "area_error_*: the class map's area (count of class pixels); probabilistic: the expected "
                    "area (sum of presence probabilities), the number to quote; frost_number_threshold: the "
                    "frost number >= F50 map the presence model replaced (before)"
                )
            if prob_err:
                out["permafrost"]["probabilistic"] = {
                    "rule": "sum of presence probabilities x pixel area",
                    "area_error_fraction": prob_err,
                    "area_error_mean_fraction": float(np.nanmean(prob_err)),
                    "area_error_max_abs_fraction": float(np.nanmax(np.abs(prob_err))),
                    "truth_in_ci95_fraction_of_years": float(np.mean(prob_in_ci)) if prob_in_ci else None,
                }
            if thr_err:
                out["permafrost"]["frost_number_threshold"] = {
                    "rule": f"{band_label(*maps.frost_setting)} >= {maps.frost_number_min:.4g}",
                    "accuracy": thr_acc,
                    "accuracy_mean": float(np.nanmean(thr_acc)),
                    "area_error_fraction": thr_err,
                    "area_error_mean_fraction": float(np.nanmean(thr_err)),
                    "area_error_max_abs_fraction": float(np.nanmax(np.abs(thr_err))),
                }
        return out

    def _lst_scores(self) -> dict:
        sharp = _Moments.merged(m for v in self.lst.values() for m in v["sharp"]).metrics()
        bil = _Moments.merged(v["bilinear"] for v in self.lst.values()).metrics()
        out = {"sharpened": sharp, "bilinear": bil, "rmse_ratio": sharp["rmse"] / bil["rmse"]}
        by_season: dict[str, list] = {k: [] for k in SEASONS}
        by_era: dict[str, list] = {"terra_only": [], "terra_aqua": []}
        per_comp: dict[str, list] = {}
        for y, v in self.lst.items():
            by_era[era(y)] += v["sharp"]
            for b, start in enumerate(v["starts"]):
                by_season[season_of(start)].append(v["sharp"][b])
                doy = dt.date.fromisoformat(start[:10]).timetuple().tm_yday
                per_comp.setdefault(f"doy {doy:03d}", []).append(v["sharp"][b])
        out["by_season"] = {k: _Moments.merged(v).metrics() for k, v in by_season.items() if v}
        out["by_era"] = {k: _Moments.merged(v).metrics() for k, v in by_era.items() if v}
        out["per_composite"] = {k: _Moments.merged(v).metrics() for k, v in sorted(per_comp.items())}
        return out

    def _e_scores(self, cal, years) -> dict:
        """The fitted E against the effective E of the truth: the least-squares E of true ALT on
        √(true DDT) at the site-years the calibration used, and over all permafrost pixels."""
        pairs = {(p["site_id"], p["year"]) for p in cal.summary["pairs"]}
        table = cal.table
        used = np.array([(s, int(yy)) in pairs for s, yy in zip(table.site_id, table.year, strict=True)])
        num = den = num_a = den_a = 0.0
        for y in years:
            t_ddt = read_raster(runs.truth_path(self.run, "ddt", y)).data[0]
            t_alt = read_raster(runs.truth_path(self.run, "alt", y)).data[0]
            x = np.sqrt(np.clip(t_ddt, 0, None))
            ok = np.isfinite(t_alt) & np.isfinite(x)
            num_a += float(np.sum(x[ok] * t_alt[ok]))
            den_a += float(np.sum(x[ok] ** 2))
            sel = used & (table.year == y)
            if sel.any():
                r, c = lonlat_to_rowcol(self.scene.grid, table.lon[sel], table.lat[sel])
                r, c = r.astype(int), c.astype(int)
                xs, a = x[r, c], t_alt[r, c]
                good = np.isfinite(a)
                num += float(np.sum(xs[good] * a[good]))
                den += float(np.sum(xs[good] ** 2))
        e_sites = num / den if den else float("nan")
        e_area = num_a / den_a if den_a else float("nan")
        e_hat = float(cal.summary["E"])
        return {
            "estimated": e_hat,
            "ci95": cal.summary["E_ci95"],
            "truth_at_sites": e_sites,
            "truth_area_mean": e_area,
            "rel_error_vs_sites": e_hat / e_sites - 1.0,
            "rel_error_vs_area_mean": e_hat / e_area - 1.0,
            "definition": "least-squares E of true ALT on sqrt(true DDT)",
        }

    def _trend_vs_truth(self, result, always: np.ndarray) -> dict:
        """The run's ALT trend against the trend of the true ALT maps (cm/yr), on pixels with
        permafrost in every year; and the share of undisturbed such pixels with p < 0.05."""
        from gee_alt.science.trend import series_trend, theil_sen_mk

        years = result.years
        undisturbed = always & (self._strata_cache["mine"] == 0)
        cand = np.nonzero(always)[0]
        pick = np.sort(np.random.default_rng(0).choice(cand, size=min(20000, cand.size), replace=False))
        truth_pick, t_mean, o_mean = [], [], []
        for i, y in enumerate(years):  # a year at a time: the sampled pixels and the area means
            t = read_raster(runs.truth_path(self.run, "alt", y)).data[0].ravel()
            truth_pick.append(t[pick])
            t_mean.append(_pixel_order_nanmean(t[always]))
            del t
            o_mean.append(_pixel_order_nanmean(np.asarray(result.alt.alt_m[i]).ravel()[always]))
        t_fit = theil_sen_mk(np.stack(truth_pick), years, min_valid_years=len(years))
        t_px = t_fit["slope"] * 100.0
        o_px = result.trend.slope_cm_per_yr.reshape(-1)[pick]
        o_p = result.trend.p_value.reshape(-1)[pick]
        und = undisturbed[pick]
        t_area = series_trend(years, np.array(t_mean))
        o_area = series_trend(years, np.array(o_mean))
        warming = self.sample.world.get("warming_degc_per_yr")
        sig_key = "false_positive_rate" if warming == 0 else "significant_fraction"
        return {
            "on": "pixels with permafrost in every year",
            "truth_median_cm_per_yr": float(np.nanmedian(t_px)),
            "median_cm_per_yr": float(np.nanmedian(o_px)),
            "truth_area_mean_cm_per_yr": 100.0 * float(t_area["slope"]),
            "area_mean_cm_per_yr": 100.0 * float(o_area["slope"]),
            "rel_error_area_mean": float(o_area["slope"] / t_area["slope"] - 1.0) if t_area["slope"] else float("nan"),
            "pixel_rmse_cm_per_yr": float(np.sqrt(np.nanmean((o_px - t_px) ** 2))),
            sig_key: float(np.mean(o_p[und] < 0.05)) if und.any() else float("nan"),
            "truth_" + sig_key: float(np.mean(np.asarray(t_fit["p_value"])[und] < 0.05)) if und.any() else float("nan"),
            "world_warming_degc_per_yr": warming,
        }

    def _mine_effect(self, result) -> dict | None:
        """The mine's effect on ALT: truth (the world recomputed without the mine) against a
        before-after/control-impact estimate on the engine's maps and on the true maps. Impact:
        pixels dug by 2014 that had permafrost before; control: undisturbed pixels in the same
        elevation range with permafrost in every year. Impact pixels whose permafrost the mine
        removed have no true ALT after (counted in ``impact_permafrost_lost_fraction_after``)."""
        facts = self.sample.facts
        years = result.years
        before = [i for i, y in enumerate(years) if y <= MINE_BEFORE_LAST]
        after = [i for i, y in enumerate(years) if y >= MINE_AFTER_FIRST]
        true_eff = [
            facts[y]["mine_effect_alt_m"]
            for y in years
            if y >= MINE_AFTER_FIRST and "mine_effect_alt_m" in facts.get(y, {})
        ]
        if not before or not after or not true_eff:
            return None
        s = self._strata_cache
        dem = s["dem_m"]
        # the truth's ALT a year at a time (a RasterStack): masks in one pass, values only at the
        # impact and control pixels in a second; no (year, pixel) stack is held
        truth = RasterStack([runs.truth_path(self.run, "alt", y) for y in years], result.alt.alt_m.shape[1:])
        had_pf = np.ones(dem.size, bool)  # permafrost before the mine opened
        always = np.ones(dem.size, bool)
        for i in range(len(years)):
            fin = np.isfinite(truth[i]).ravel()
            always &= fin
            if i in before:
                had_pf &= fin
        impact = (s["mine"] > 0) & (s["mine"] <= MINE_AFTER_FIRST - 1) & had_pf
        if not impact.any():
            return None
        lo, hi = np.percentile(dem[impact], [5, 95])
        control = (s["mine"] == 0) & (dem >= lo) & (dem <= hi) & always
        del had_pf, always

        def at(maps, idx, pix):  # (len(idx), n) values of year indices idx at the pixels pix, float64
            return np.stack([np.asarray(maps[i], "float64").ravel()[pix] for i in idx])

        lost = float(np.mean(~np.isfinite(at(truth, after, impact))))

        def baci(maps):
            d_imp = np.nanmean(at(maps, after, impact)) - np.nanmean(at(maps, before, impact))
            d_con = np.nanmean(at(maps, after, control)) - np.nanmean(at(maps, before, control))
            return float(d_imp - d_con)

        design = self._disturbance_analysis(result, truth, before, after)
        return {
            **design,
            "truth_m": float(np.mean(true_eff)),
            "baci_engine_m": baci(result.alt.alt_m),
            "baci_truth_maps_m": baci(truth),
            "impact_permafrost_lost_fraction_after": lost,
            "impact_pixels": int(impact.sum()),
            "control_pixels": int(control.sum()),
            "periods": f"before <= {MINE_BEFORE_LAST}, after >= {MINE_AFTER_FIRST}",
        }

    def _applicability(self, truth: dict, result) -> dict | None:
        """The run's map-error estimate (``applicability.json``) against the true map RMSE, and the
        share of each true land-cover class outside the area of applicability. The estimate is
        re-aggregated over the pixel-years the truth scores (permafrost in the truth, ALT mapped)."""

        app = (
            runs.read_json(self.run, runs.APPLICABILITY_JSON) if (self.run / runs.APPLICABILITY_JSON).exists() else None
        )
        if not app or "alt_m" not in truth:
            return None
        me = app["map_error"]
        aoa_bands = read_raster(self.run / runs.AOA_TIF).data
        aoa2 = aoa_bands[1]
        inside = aoa2 > 0.5
        sampled = None
        # band 3 (when written): the pixel's map-error mean square in E units (the reported estimate)
        rms_e_px = aoa_bands[2].astype(float) if aoa_bands.shape[0] >= 3 else None
        del aoa_bands
        if "mse_e_map_sampled_classes" in me:  # NNDM estimate by class stratum (gee_alt.applicability_run)
            lc_run = read_raster(self.run / runs.LANDCOVER).data[0] if (self.run / runs.LANDCOVER).exists() else None
            sites_cls = app.get("site_classes") or []
            sampled = (
                np.isin(np.nan_to_num(lc_run, nan=-1).astype(int), sites_cls)
                if lc_run is not None
                else np.ones(aoa2.shape, bool)
            )
            del lc_run
        # a year at a time: exact sums (math.fsum) of the DDT in each stratum over the pixel-years the
        # truth scores (permafrost in the truth, ALT mapped), and of the squared ALT error inside the AOA
        aoa_sums, samp_sums, sq_in = _StratumSums(inside), _StratumSums(sampled), []
        n_in, px_all, px_in, n_px, n_px_in = 0, [], [], 0, 0
        for i, y in enumerate(result.years):
            t_alt = read_raster(runs.truth_path(self.run, "alt", y)).data[0]
            e_alt = np.asarray(result.alt.alt_m[i], float)
            ddt = np.asarray(_year_of(result.engine.cube["ddt_degc_days"], i), float)
            ddt = np.where(np.isfinite(t_alt) & np.isfinite(e_alt), ddt, np.nan)
            aoa_sums.add(ddt)
            if sampled is not None:
                samp_sums.add(ddt)
            ins = inside & np.isfinite(t_alt) & np.isfinite(e_alt)
            if rms_e_px is not None:
                fin = np.isfinite(ddt)
                mse_px = np.clip(ddt, 0, None) * rms_e_px**2
                n_px += int(fin.sum())
                px_all += _exact_parts(mse_px[fin])
                px_in += _exact_parts(mse_px[ins & fin])
                n_px_in += int((ins & fin).sum())
                del fin, mse_px
            del ddt
            n_in += int(ins.sum())
            sq_in += _exact_parts((e_alt[ins] - t_alt[ins]) ** 2)
            del t_alt, e_alt, ins
        err = aoa_sums.map_error(me["mse_e_inside"], me["mse_e_outside"])
        aoa_strat = err["rmse_m"]
        est = aoa_strat
        if sampled is not None:
            est = samp_sums.map_error(me["mse_e_map_sampled_classes"], me["mse_e_map_unsampled_classes"])["rmse_m"]
        nndm_strat = est
        est_in = err["rmse_inside_m"]
        if rms_e_px is not None:
            est = float(np.sqrt(math.fsum(px_all) / n_px)) if n_px else float("nan")
            est_in = float(np.sqrt(math.fsum(px_in) / n_px_in)) if n_px_in else float("nan")
        true = truth["alt_m"]["rmse"]
        true_in = float(np.sqrt(math.fsum(sq_in) / n_in)) if n_in else float("nan")
        aoa = aoa2.ravel()
        lc = self._strata_cache["landcover"]
        out_by = {
            LANDCOVER_NAMES.get(int(k), str(k)): float(np.mean(aoa[(lc == k) & np.isfinite(aoa)] < 0.5))
            for k in np.unique(lc)
            if ((lc == k) & np.isfinite(aoa)).any()
        }
        return {
            "map_rmse_estimate_m": est,
            "method": me.get("method"),
            "aoa_stratified_estimate_m": aoa_strat,
            "nndm_class_stratified_estimate_m": nndm_strat,
            "map_rmse_estimate_all_mapped_m": me["rmse_m"],
            "map_rmse_true_m": true,
            "rel_error": float(est / true - 1.0) if true else float("nan"),
            "lower_bound": bool(me.get("lower_bound")),
            "unsampled_fraction": me.get("unsampled_fraction"),
            "inside_aoa_estimate_m": est_in,
            "inside_aoa_true_m": true_in,
            "site_classes": app.get("site_classes"),
            "outside_aoa_by_true_class": out_by,
        }

    def _disturbance_analysis(self, result, truth, before, after) -> dict:
        """``gee-alt disturbance`` run on the demo (the truth's mine.tif as MINES, as a user would
        have the mine's opening years): writes ``disturbance.json`` for the report, and scores each
        quantity against the world's own counterfactual effect (``facts``, the mine pixels
        recomputed without the mine), averaged over the after years:

        - thaw index: truth = mean over every dug pixel of skin DDT with − without the mine;
          estimate = the BACI on the engine's DDT over every dug pixel;
        - permafrost presence: truth = share of dug pixels with permafrost with − without the mine;
          estimate = the BACI on the engine's permafrost map;
        - ALT: truth = mean over the dug pixels with permafrost both with and without the mine;
          the comparable estimate is the BACI on the engine's ALT restricted to the dug pixels with
          permafrost in the truth in every year of both periods (``same_pixels``; the user's run
          uses the pixels with the *engine's* permafrost, a different set). The BACI's contrast
          (after 2015-2024 minus before 2000-2002, where the true effect is 0) equals the truth's
          mean effect over the after years when the controls carry the counterfactual.

        Each is also run on the true maps (the design's own error, separate from the engine's)."""
        from gee_alt.disturbance_run import control_strata_of_run, disturbance_runs, write_result

        facts = self.sample.facts
        mines = runs.truth_path(self.run, "mine")
        shape = result.alt.alt_m.shape
        n = len(result.years)
        kw = dict(before_last=MINE_BEFORE_LAST, after_first=MINE_AFTER_FIRST)
        # every stack a year at a time (``truth``: the truth's ALT RasterStack)
        cube_ddt = result.engine.cube["ddt_degc_days"]
        ddt = YearMaps(lambda i: _year_of(cube_ddt, i), n, shape[1:])
        t_ddt = RasterStack([runs.truth_path(self.run, "ddt", y) for y in result.years], shape[1:])
        t_alt = LastYear(truth)  # presence and ALT from one read of each year
        t_pf = YearMaps(lambda i: np.isfinite(t_alt[i]).astype("float32"), n, shape[1:])
        tmaps = type(result.alt)(result.years, t_alt, t_alt, result.alt.grid)
        tmaps.frost_number = t_pf  # presence 1/0 read as F >= 0.5
        panel = np.ones(shape[1:], bool)
        for i in before + after:
            panel &= np.isfinite(truth[i])
        names = ("ddt_degc_days", "permafrost_fraction", "stefan_depth_m", "alt_m")
        # the engine's maps on every dug pixel (the user's run) and on ``panel``, then the true maps on
        # both: one pass over each set of maps, one set of control strata for all four
        try:
            strata = control_strata_of_run(self.run, mines, result.alt.grid)
            user, same = disturbance_runs(
                self.run, mines, [None, panel], maps=result.alt, ddt_degc_days=ddt, strata=strata, **kw
            )
        except GeeAltError as exc:
            return {"disturbance_error": str(exc)}
        if isinstance(user, GeeAltError):
            return {"disturbance_error": str(user)}
        write_result(self.run, user)
        out = {"disturbance": {}}

        def failed(exc):  # e.g. too few impact pixels with permafrost in the truth
            return {"quantities": {}, "quantity_errors": dict.fromkeys(names, str(exc))}

        try:
            on_truth, on_truth_same = disturbance_runs(
                self.run, mines, [None, panel], maps=tmaps, ddt_degc_days=t_ddt, strata=strata, **kw
            )
        except GeeAltError as exc:
            on_truth = on_truth_same = exc
        same, on_truth, on_truth_same = (
            failed(r) if isinstance(r, GeeAltError) else r for r in (same, on_truth, on_truth_same)
        )
        after_years = [y for y in result.years if y >= MINE_AFTER_FIRST]

        def truth_mean(key):
            v = [facts[y][key] for y in after_years if key in facts.get(y, {})]
            v = [x for x in v if np.isfinite(x)]
            return float(np.mean(v)) if v else None

        for name, fact, est, ref in (
            ("ddt_degc_days", "mine_effect_ddt_degc_days", user, on_truth),
            ("permafrost_fraction", "mine_effect_permafrost_fraction", user, on_truth),
            ("alt_m", "mine_effect_alt_m", same, on_truth_same),
            ("stefan_depth_m", "mine_effect_alt_m", same, on_truth_same),
        ):
            q = (est.get("quantities") or {}).get(name)
            r = (ref.get("quantities") or {}).get(name)
            t = truth_mean(fact)
            row = {"truth": t, "truth_definition": fact}
            if q is not None:
                lo, hi = q["effect_ci95"]
                row.update(
                    {
                        "estimate": q["effect"],
                        "ci95": q["effect_ci95"],
                        "impact_pixels_used": q["impact_pixels_used"],
                        "control_pixels": q["control_pixels"],
                        "truth_within_ci": bool(t is not None and lo <= t <= hi),
                    }
                )
            else:
                row["error"] = (est.get("quantity_errors") or {}).get(name)
            if r is not None:
                row["estimate_on_true_maps"] = r["effect"]
                row["ci95_on_true_maps"] = r["effect_ci95"]
            out["disturbance"][name] = row
        ua = (user.get("quantities") or {}).get("alt_m")
        out["disturbance"]["alt_m_engine_permafrost_pixels"] = (
            {"estimate": ua["effect"], "ci95": ua["effect_ci95"], "impact_pixels_used": ua["impact_pixels_used"]}
            if ua
            else {"error": (user.get("quantity_errors") or {}).get("alt_m")}
        )
        a = out["disturbance"]["alt_m"]
        if "estimate" in a:  # the keys the summary line reads since issue 17
            out.update(
                {
                    "disturbance_engine_same_pixels_m": a["estimate"],
                    "disturbance_engine_same_pixels_ci95_m": a["ci95"],
                    "disturbance_same_pixels_n": a["impact_pixels_used"],
                }
            )
        out["disturbance_engine_trend_cm_per_yr"] = user.get("effect_trend_cm_per_yr")
        return out


def _exact_parts(values: np.ndarray) -> list[float]:
    """The exact sum of float64 ``values`` as two floats ``[s, r]``: ``s`` = ``math.fsum`` (the sum
    correctly rounded), ``r`` = the remainder, also by ``math.fsum``; sums of such parts do not
    depend on how the values were grouped."""
    v = np.asarray(values, "float64").ravel().tolist()
    s = math.fsum(v)
    v.append(-s)
    return [s, math.fsum(v)]


class _Moments:
    """Count, sum and sum of squares of errors added in pieces (e.g. a year at a time), kept as
    exact sums (:func:`_exact_parts`), so :meth:`metrics` is the same however the pixel-years are
    grouped. Squares of float32 errors are exact in float64."""

    def __init__(self):
        self.n, self.s, self.s2, self.chunks = 0, [], [], 0

    @classmethod
    def of(cls, err: np.ndarray) -> _Moments:
        m = cls()
        m.add(err)
        return m

    def add(self, err: np.ndarray) -> None:
        e = np.asarray(err, "float64").ravel()
        e = e[np.isfinite(e)]
        self.chunks += 1
        if e.size:
            self.n += int(e.size)
            self.s += _exact_parts(e)
            self.s2 += _exact_parts(e * e)

    def merge(self, other: _Moments) -> None:
        self.n += other.n
        self.s += other.s
        self.s2 += other.s2
        self.chunks += other.chunks

    @classmethod
    def merged(cls, parts) -> _Moments:
        m = cls()
        for p in parts:
            m.merge(p)
        return m

    def metrics(self) -> dict:
        """``{rmse, bias, n}`` as :func:`metrics` of all the errors added."""
        if not self.n:
            return {"rmse": float("nan"), "bias": float("nan"), "n": 0}
        return {
            "rmse": float(np.sqrt(math.fsum(self.s2) / self.n)),
            "bias": float(math.fsum(self.s) / self.n),
            "n": self.n,
        }


class _StratumSums:
    """:func:`gee_alt.science.applicability.map_error_estimate` accumulated over ``(y, x)`` DDT maps
    added a year at a time: counts and exact sums (:func:`_exact_parts`) of the clipped DDT of the
    finite pixel-years inside and outside ``inside`` ((y, x) bool)."""

    def __init__(self, inside: np.ndarray | None):
        self.inside = inside
        self.n_in = self.n_out = 0
        self.s_in, self.s_out = [], []

    def add(self, ddt: np.ndarray) -> None:
        fin = np.isfinite(ddt)
        dd = np.clip(ddt[fin], 0, None)
        ins = self.inside[fin]
        self.n_in += int(ins.sum())
        self.n_out += int((~ins).sum())
        self.s_in += _exact_parts(dd[ins])
        self.s_out += _exact_parts(dd[~ins])

    def map_error(self, mse_e_in: float, mse_e_out: float) -> dict:
        n = self.n_in + self.n_out
        s_in = math.fsum(self.s_in) * mse_e_in
        s_out = math.fsum(self.s_out) * mse_e_out
        return {
            "rmse_m": float(np.sqrt((s_in + s_out) / n)) if n else float("nan"),
            "rmse_inside_m": float(np.sqrt(s_in / self.n_in)) if self.n_in else float("nan"),
            "rmse_outside_m": float(np.sqrt(s_out / self.n_out)) if self.n_out else float("nan"),
            "outside_fraction": float(self.n_out / n) if n else float("nan"),
        }


def _pixel_order_nanmean(x: np.ndarray) -> np.float32:
    """NaN-skipping mean of float32 ``x`` summed in float32 in pixel order, as ``np.nanmean(stack[:,
    mask], axis=1)`` gives it for each year of a whole ``(year, pixel)`` stack (the fancy-indexed
    stack is not C-contiguous, so NumPy sums each row sequentially, not pairwise): the scores read a
    year at a time keep the figures they had."""
    x = np.asarray(x, "float32")
    ok = ~np.isnan(x)
    total = np.cumsum(np.where(ok, x, np.float32(0)), dtype="float32")[-1] if x.size else np.float32(0)
    return np.float32(total / np.float32(ok.sum()))


def _year_of(da, i: int) -> np.ndarray:
    """Year index ``i`` of a ``(year, y, x)`` DataArray (lazily backed or not), only that year read."""
    return np.asarray(da.isel(year=i).values)


def at_pixels(a, flat: np.ndarray) -> np.ndarray:
    """``(band, n)`` values of a ``(band, y, x)`` or ``(y, x)`` layer at flat pixel indices; a layer
    that reads its own pixels (``at_pixels``, e.g. the local engine's tile files) is not assembled."""
    if hasattr(a, "at_pixels"):
        return a.at_pixels(flat)
    a = np.asarray(a)
    return a.reshape(-1 if a.ndim > 2 else 1, a.shape[-2] * a.shape[-1])[:, flat]


def _ratio(sharp: np.ndarray, bilinear: np.ndarray) -> dict:
    s, b = metrics(sharp), metrics(bilinear)
    return {"sharpened": s, "bilinear": b, "rmse_ratio": s["rmse"] / b["rmse"]}


def _band_names() -> list[str]:
    edges = [int(e) for e in ELEVATION_BANDS_M]
    inner = [f"{a}-{b} m" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [f"< {edges[0]} m", *inner, f">= {edges[-1]} m"]


def _extent_row(scores: dict, rule: str) -> dict:
    """A truth-table row for a permafrost extent map: accuracy and area error (mean, worst year)."""
    return {
        "gee-alt": f"accuracy {100 * scores['accuracy_mean']:.1f} %",
        "reference": "truth (MAGT < 0 °C)",
        "comparison": f"area error mean {100 * scores['area_error_mean_fraction']:+.1f} %, "
        f"worst year {100 * scores['area_error_max_abs_fraction']:.1f} %{rule}",
        "units": "%",
    }


def truth_table(t: dict) -> dict:
    """The demo's scores as one readable table (numbers for machines are in ``truth``):
    stage -> {gee-alt, reference, comparison, units}."""
    e, tr = t["E"], t.get("alt_trend")
    lst = t["lst_degc"]
    rows = {
        "NDVI 30 m, RMSE": {
            "gee-alt": f"{t['ndvi']['sharpened']['rmse']:.4f}",
            "reference": f"bilinear {t['ndvi']['bilinear']['rmse']:.4f}",
            "comparison": f"ratio {t['ndvi']['rmse_ratio']:.2f}",
            "units": "1",
        },
        "LST 30 m, RMSE": {
            "gee-alt": f"{lst['sharpened']['rmse']:.3f}",
            "reference": f"bilinear {lst['bilinear']['rmse']:.3f}",
            "comparison": f"ratio {lst['rmse_ratio']:.2f}; bias {lst['sharpened']['bias']:+.2f}",
            "units": "degC",
        },
    }
    for k, m in lst.get("by_era", {}).items():
        rows[f"LST 30 m, RMSE, {k.replace('_', '+' if k == 'terra_aqua' else ' ')}"] = _row(m, "truth", 3, "degC")
    for k, m in lst.get("by_season", {}).items():
        rows[f"LST 30 m, RMSE, {k}"] = _row(m, "truth", 3, "degC")
    ddt = t["ddt_degc_days"]
    rows["DDT, RMSE"] = _row(ddt, "truth", 1, "degC day")
    for k, m in ddt.get("by_era", {}).items():
        rows[f"DDT, RMSE, {k.replace('_', '+' if k == 'terra_aqua' else ' ')}"] = _row(m, "truth", 1, "degC day")
    rows["E (Stefan)"] = {
        "gee-alt": f"{e['estimated']:.5f}",
        "reference": f"effective E at sites {e['truth_at_sites']:.5f}",
        "comparison": f"error {100 * e['rel_error_vs_sites']:+.1f} %",
        "units": "m (degC day)^-0.5",
    }
    alt = t["alt_m"]
    rows["ALT, RMSE"] = _row(alt, "truth (permafrost pixels)", 3, "m")
    for k, m in alt.get("by_landcover", {}).items():
        rows[f"ALT, RMSE, {k}"] = _row(m, "truth", 3, "m")
    for k, m in alt.get("by_elevation_band", {}).items():
        rows[f"ALT, RMSE, elevation {k}"] = _row(m, "truth", 3, "m")
    if "mine" in alt:
        rows["ALT, RMSE, mine"] = _row(alt["mine"], "truth", 3, "m")
        rows["ALT, RMSE, undisturbed"] = _row(alt["undisturbed"], "truth", 3, "m")
    for k, m in alt.get("by_era", {}).items():
        rows[f"ALT, RMSE, {k.replace('_', '+' if k == 'terra_aqua' else ' ')}"] = _row(m, "truth", 3, "m")
    cov = t.get("alt_sd_coverage")
    if cov:
        rows["ALT sd, coverage"] = {
            "gee-alt": f"{100 * cov['within_1sd']:.0f} % / {100 * cov['within_1.96sd']:.0f} %",
            "reference": "nominal 68 % / 95 %",
            "comparison": "truth within 1 sd / 1.96 sd",
            "units": "%",
        }
    pf = t.get("permafrost")
    if pf:
        rows[f"Permafrost extent {pf['years'][-1]}"] = {
            "gee-alt": f"{100 * pf['engine_fraction'][-1]:.0f} %"
            + ("" if pf["engine_maps_extent"] else " (not mapped)"),
            "reference": f"truth {100 * pf['truth_fraction'][-1]:.0f} %",
            "comparison": f"ALT mapped without permafrost: {100 * pf['alt_mapped_without_permafrost_fraction']:.0f} %",
            "units": "% of area",
        }
        if "accuracy" in pf:
            rows["Permafrost extent, all years"] = _extent_row(pf, f" ({pf.get('engine_rule', '')})")
        prob = pf.get("probabilistic")
        if prob:
            rows["Permafrost area, sum of probabilities"] = {
                "gee-alt": f"area error mean {100 * prob['area_error_mean_fraction']:+.1f} %",
                "reference": "truth (MAGT < 0 °C)",
                "comparison": f"worst year {100 * prob['area_error_max_abs_fraction']:.1f} %"
                + (
                    f"; truth in the 95 % CI in {100 * prob['truth_in_ci95_fraction_of_years']:.0f} % of years"
                    if prob.get("truth_in_ci95_fraction_of_years") is not None
                    else ""
                ),
                "units": "%",
            }
        thr = pf.get("frost_number_threshold")
        if thr:
            rows["Permafrost extent, frost number >= F50 (before)"] = _extent_row(thr, "")
    if tr:
        rows["ALT trend, area mean"] = {
            "gee-alt": f"{tr['area_mean_cm_per_yr']:+.2f}",
            "reference": f"truth {tr['truth_area_mean_cm_per_yr']:+.2f}",
            "comparison": f"error {100 * tr['rel_error_area_mean']:+.0f} %",
            "units": "cm/yr",
        }
        key = "false_positive_rate" if "false_positive_rate" in tr else "significant_fraction"
        fpr = key == "false_positive_rate"
        label = "false-positive rate (no trend in the world)" if fpr else "significant (p<0.05)"
        rows[f"ALT trend, {label}"] = {
            "gee-alt": f"{100 * tr[key]:.0f} %",
            "reference": f"truth maps {100 * tr['truth_' + key]:.0f} %",
            "comparison": "undisturbed pixels" + (", nominal 5 %" if fpr else ""),
            "units": "% of pixels",
        }
    mine = t.get("mine_effect")
    if mine:
        rows["Mine effect on ALT"] = {
            "gee-alt": f"{mine['baci_engine_m']:+.2f}",
            "reference": f"truth {mine['truth_m']:+.2f}",
            "comparison": f"plain before/after contrast; on true maps {mine['baci_truth_maps_m']:+.2f}",
            "units": "m",
        }
        for name, label, units, dig in (
            ("ddt_degc_days", "thaw index", "degC day", 0),
            ("permafrost_fraction", "permafrost presence", "fraction", 3),
            ("alt_m", "ALT (truth's permafrost pixels)", "m", 2),
            ("stefan_depth_m", "E·√DDT (truth's permafrost pixels)", "m", 2),
        ):
            q = (mine.get("disturbance") or {}).get(name)
            if not q or q.get("truth") is None:
                continue
            ci = q.get("ci95")
            rows[f"Mine effect on {label}, BACI"] = {
                "gee-alt": f"{q['estimate']:+.{dig}f} [{ci[0]:+.{dig}f}, {ci[1]:+.{dig}f}]" if ci else "none",
                "reference": f"truth {q['truth']:+.{dig}f}",
                "comparison": (
                    ("truth inside the CI" if q.get("truth_within_ci") else "truth outside the CI")
                    + (
                        f"; BACI on true maps {q['estimate_on_true_maps']:+.{dig}f}"
                        if "estimate_on_true_maps" in q
                        else ""
                    )
                )
                if ci
                else str(q.get("error")),
                "units": units,
            }
    return rows


def _row(m: dict, reference: str, digits: int, units: str) -> dict:
    return {
        "gee-alt": f"{m['rmse']:.{digits}f}",
        "reference": reference,
        "comparison": f"bias {m['bias']:+.{digits}f}",
        "units": units,
    }
