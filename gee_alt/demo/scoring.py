"""Scoring a demo run against its synthetic truth: every stage, from NDVI to the ALT trend.

:class:`DemoScorer` is handed the engine's intermediate products year by year
(:meth:`DemoScorer.score_year`, at a fixed sample of pixels) and the finished run
(:meth:`DemoScorer.finish`, the run's products in memory); it writes the scores to
``validation.json`` (``truth``, ``truth_table``, which the report shows). The truth is read
from ``RUN/truth`` (written by :mod:`gee_alt.demo.world`); nothing of the run is read back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.grid import lonlat_to_rowcol
from gee_alt.io import read_raster, write_json_atomic


def metrics(err: np.ndarray) -> dict:
    """``{rmse, bias, n}`` of the finite errors (float64)."""
    err = np.asarray(err, "float64")
    err = err[np.isfinite(err)]
    return {"rmse": float(np.sqrt(np.mean(err**2))), "bias": float(np.mean(err)), "n": int(err.size)}


class DemoScorer:
    """Scores of one demo run (``run`` directory, its ``scene`` and the truth ``sample``)."""

    def __init__(self, run: str | Path, scene, sample):
        self.run, self.scene, self.sample = Path(run), scene, sample
        self.errors: dict[str, list] = {"lst_sharp": [], "lst_bilinear": [], "ndvi_sharp": [], "ndvi_bilinear": []}

    def score_year(self, year: int, p: dict) -> None:
        """Errors of the year's sharpened 30 m LST (all composites) and NDVI, and of bilinear
        interpolation of the coarse inputs, at the sampled pixels."""
        from gee_alt.science.resample import interpolate

        idx, scene, truth = self.sample.index, self.scene, self.sample
        lst = p["lst_30m_degc"].reshape(-1, p["lst_30m_degc"][0].size)[:, idx]
        bil = interpolate(p["lst_coarse"].values, scene.lst_grid, scene.grid, "bilinear", index=idx)
        self.errors["lst_sharp"].append(lst - truth.lst_degc[year])
        self.errors["lst_bilinear"].append(bil - truth.lst_degc[year])
        nd_b = interpolate(p["ndvi_coarse"].values, scene.ndvi_grid, scene.grid, "bilinear", index=idx)[0]
        self.errors["ndvi_sharp"].append(p["ndvi_30m"].reshape(-1)[idx] - truth.ndvi[year])
        self.errors["ndvi_bilinear"].append(nd_b - truth.ndvi[year])

    def finish(self, result) -> None:
        """Score the finished run (a :class:`gee_alt.pipeline.RunResult`) and write the scores
        into ``validation.json`` (the report shows its ``truth_table``)."""
        years = result.years
        validation = runs.read_json(self.run, runs.VALIDATION) or {}
        validation.update(
            {
                "synthetic": True,
                "scene": {
                    "seed": self.scene.spec.seed,
                    "size_px": self.scene.spec.size_px,
                    "grid": self.scene.grid,
                    "years": [years[0], years[-1]],
                },
            }
        )
        validation["truth"] = self._truth_scores(result)
        if len(years) >= 5 and result.trend is not None:
            validation["truth"]["alt_trend"] = self._trend_vs_truth(result)
        validation["truth_table"] = truth_table(validation["truth"])
        write_json_atomic(self.run / runs.VALIDATION, validation)
        result.validation = validation

    def _truth_scores(self, result) -> dict:
        """Every stage against the synthetic truth (NDVI, LST, DDT, E, ALT)."""
        e = self.errors
        lst_s = metrics(np.concatenate([x.ravel() for x in e["lst_sharp"]]))
        lst_b = metrics(np.concatenate([x.ravel() for x in e["lst_bilinear"]]))
        nd_s, nd_b = metrics(np.concatenate(e["ndvi_sharp"])), metrics(np.concatenate(e["ndvi_bilinear"]))
        cube, maps, cal = result.engine.cube, result.alt, result.calibration
        ddt_err, alt_err = [], []
        e_true = read_raster(runs.truth_path(self.run, "e")).data[0]
        num = den = 0.0
        pairs = {(p["site_id"], p["year"]) for p in cal.summary["pairs"]}
        table = cal.table
        for i, y in enumerate(maps.years):
            t_ddt = read_raster(runs.truth_path(self.run, "ddt", y)).data[0]
            t_alt = read_raster(runs.truth_path(self.run, "alt", y)).data[0]
            ddt_err.append((cube["ddt_degc_days"].values[i] - t_ddt).ravel())
            alt_err.append((maps.alt_m[i] - t_alt).ravel())
            # the E a perfect calibration would find on the rows actually used (true DDT, true ALT)
            used = np.array([(s, int(yy)) in pairs for s, yy in zip(table.site_id, table.year, strict=True)])
            sel = used & (table.year == y)
            if sel.any():
                r, c = lonlat_to_rowcol(self.scene.grid, table.lon[sel], table.lat[sel])
                r, c = r.astype(int), c.astype(int)
                x = np.sqrt(t_ddt[r, c])
                num += float(np.sum(x * e_true[r, c] * x))
                den += float(np.sum(x * x))
        e_sites = num / den if den else float("nan")
        e_area = float(np.mean(e_true))
        e_hat = float(cal.summary["E"])
        return {
            "ndvi": {"sharpened": nd_s, "bilinear": nd_b, "rmse_ratio": nd_s["rmse"] / nd_b["rmse"]},
            "lst_degc": {"sharpened": lst_s, "bilinear": lst_b, "rmse_ratio": lst_s["rmse"] / lst_b["rmse"]},
            "ddt_degc_days": metrics(np.concatenate(ddt_err)),
            "E": {
                "estimated": e_hat,
                "ci95": cal.summary["E_ci95"],
                "truth_at_sites": e_sites,
                "truth_area_mean": e_area,
                "rel_error_vs_sites": e_hat / e_sites - 1.0,
                "rel_error_vs_area_mean": e_hat / e_area - 1.0,
            },
            "alt_m": metrics(np.concatenate(alt_err)),
        }

    def _trend_vs_truth(self, result) -> dict:
        """The run's ALT trend against the trend of the true ALT maps (cm/yr)."""
        from gee_alt.science.trend import series_trend, theil_sen_mk

        years = result.years
        truth = np.stack([read_raster(runs.truth_path(self.run, "alt", y)).data[0] for y in years])
        ours = result.alt.alt_m
        pick = np.random.default_rng(0).choice(truth[0].size, size=min(20000, truth[0].size), replace=False)
        t_px = theil_sen_mk(truth.reshape(len(years), -1)[:, pick], years, min_valid_years=len(years))["slope"] * 100.0
        o_px = result.trend.slope_cm_per_yr.reshape(-1)[pick]
        t_area = series_trend(years, np.nanmean(truth, axis=(1, 2)))
        o_area = series_trend(years, np.nanmean(ours, axis=(1, 2)))
        return {
            "truth_median_cm_per_yr": float(np.nanmedian(t_px)),
            "median_cm_per_yr": float(np.nanmedian(o_px)),
            "truth_area_mean_cm_per_yr": 100.0 * float(t_area["slope"]),
            "area_mean_cm_per_yr": 100.0 * float(o_area["slope"]),
            "rel_error_area_mean": float(o_area["slope"] / t_area["slope"] - 1.0),
            "pixel_rmse_cm_per_yr": float(np.sqrt(np.nanmean((o_px - t_px) ** 2))),
        }


def truth_table(t: dict) -> dict:
    """The demo's scores as one readable table (numbers for machines are in ``truth``):
    stage -> {gee-alt, reference, comparison, units}."""
    e, tr = t["E"], t.get("alt_trend")
    rows = {
        "NDVI 30 m, RMSE": {
            "gee-alt": f"{t['ndvi']['sharpened']['rmse']:.4f}",
            "reference": f"bilinear {t['ndvi']['bilinear']['rmse']:.4f}",
            "comparison": f"ratio {t['ndvi']['rmse_ratio']:.2f}",
            "units": "1",
        },
        "LST 30 m, RMSE": {
            "gee-alt": f"{t['lst_degc']['sharpened']['rmse']:.3f}",
            "reference": f"bilinear {t['lst_degc']['bilinear']['rmse']:.3f}",
            "comparison": f"ratio {t['lst_degc']['rmse_ratio']:.2f}",
            "units": "degC",
        },
        "DDT, RMSE": {
            "gee-alt": f"{t['ddt_degc_days']['rmse']:.1f}",
            "reference": "truth",
            "comparison": f"bias {t['ddt_degc_days']['bias']:+.1f}",
            "units": "degC day",
        },
        "E (Stefan)": {
            "gee-alt": f"{e['estimated']:.5f}",
            "reference": f"truth at sites {e['truth_at_sites']:.5f}",
            "comparison": f"error {100 * e['rel_error_vs_sites']:+.1f} %",
            "units": "m (degC day)^-0.5",
        },
        "ALT, RMSE": {
            "gee-alt": f"{t['alt_m']['rmse']:.3f}",
            "reference": "truth",
            "comparison": f"bias {t['alt_m']['bias']:+.3f}",
            "units": "m",
        },
    }
    if tr:
        rows["ALT trend, area mean"] = {
            "gee-alt": f"{tr['area_mean_cm_per_yr']:+.2f}",
            "reference": f"truth {tr['truth_area_mean_cm_per_yr']:+.2f}",
            "comparison": f"error {100 * tr['rel_error_area_mean']:+.0f} %",
            "units": "cm/yr",
        }
    return rows
