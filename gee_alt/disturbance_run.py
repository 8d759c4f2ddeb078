"""``gee-alt disturbance RUN --mines MINES``: the BACI analysis of a run's ALT maps.

Reads the run's ALT (``alt/*.tif``), thaw index (``ddt/*.tif``), permafrost (``permafrost/*.tif``),
DEM, land cover and calibration, the disturbance file
(:func:`gee_alt.science.disturbance.read_disturbance`), and writes ``RUN/disturbance.json``
(shown by the report with a figure of the impact and matched-control series).

Three BACI analyses, one per quantity (``quantities``): the thaw index DDT and permafrost presence
(defined on every pixel, whatever the engine's permafrost map) and ALT where permafrost persists.
The top-level ``effect_alt_*`` keys are the ALT analysis; when it has no matched control (e.g. the
disturbance removed the permafrost, or the map has too little permafrost around it), ``alt_error``
says why and the other two quantities still stand. The science is in
:mod:`gee_alt.science.disturbance`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.errors import GeeAltError
from gee_alt.io import LastYear, YearMaps, write_json_atomic

DISTURBANCE_JSON = runs.DISTURBANCE_JSON


def rel_disturbed_e_sd(calibration: dict | None) -> float:
    """sd(E_disturbed)/E_disturbed of the calibration's E of disturbed ground (from its 95 %
    interval), 0 when it has none: the impact pixels' ALT after the disturbance scales with it."""
    c = calibration or {}
    e, ci = c.get("E_disturbed"), c.get("E_disturbed_ci95")
    if not e or not ci or ci[0] is None or ci[1] is None:
        return 0.0
    return float((ci[1] - ci[0]) / (2 * 1.959964) / float(e))


def rel_e_sd(calibration: dict | None) -> float:
    """sd(E)/E of the calibration (from its 95 % CI), 0 without one."""
    ci = (calibration or {}).get("E_ci95")
    e = (calibration or {}).get("E")
    if not ci or not e or ci[0] is None or ci[1] is None:
        return 0.0
    return float((ci[1] - ci[0]) / (2 * 1.959964) / float(e))


def disturbance_run(
    run: str | Path,
    mines: str | Path,
    *,
    design=None,
    before_last: int | None = None,
    after_first: int | None = None,
    maps=None,
    impact_mask: np.ndarray | None = None,
    ddt_degc_days: np.ndarray | None = None,
    write: bool = True,
    strata=None,
) -> dict:
    """The BACI effect of the disturbances in ``mines`` on the run's ALT; writes
    ``RUN/disturbance.json`` (``write``). ``maps``: the run's :class:`~gee_alt.downstream.AltMaps`
    when already in memory; ``ddt_degc_days`` ``(year, y, x)`` the run's thaw index (read from
    ``RUN/ddt`` otherwise); ``strata``: :func:`control_strata_of_run` when already built."""
    res = disturbance_runs(
        run,
        mines,
        [impact_mask],
        design=design,
        before_last=before_last,
        after_first=after_first,
        maps=maps,
        ddt_degc_days=ddt_degc_days,
        strata=strata,
    )[0]
    if isinstance(res, GeeAltError):
        raise res
    if write:
        write_result(run, res)
    return res


def write_result(run: str | Path, res: dict) -> Path:
    """Write a :func:`disturbance_run` result as ``RUN/disturbance.json``."""
    return write_json_atomic(Path(run) / DISTURBANCE_JSON, res)


def _inputs(run: Path, mines: str | Path, grid) -> tuple:
    """``(start, restore, dem, landcover or None)`` of the run on its grid (one-line
    :class:`GeeAltError` when the disturbance file is unusable or the DEM is missing or off grid)."""
    from gee_alt.io import read_raster
    from gee_alt.science.disturbance import read_disturbance

    start, restore = read_disturbance(mines, grid)
    dem_p = run / runs.DEM
    if not dem_p.exists():
        raise GeeAltError(f"{run} has no {runs.DEM}: the controls are matched on elevation and aspect")
    dem = read_raster(dem_p, bands=1).data[0]
    lc_p = run / runs.LANDCOVER
    lc = read_raster(lc_p, bands=1).data[0] if lc_p.exists() else None
    if dem.shape != start.shape or (lc is not None and lc.shape != start.shape):
        raise GeeAltError(f"{runs.DEM}/{runs.LANDCOVER} of {run} are not on the ALT grid; rerun the run")
    return start, restore, dem, lc


def control_strata_of_run(run: str | Path, mines: str | Path, grid, design=None):
    """The :class:`~gee_alt.science.disturbance.ControlStrata` of the disturbances in ``mines`` on
    the run's DEM and land cover, for several :func:`disturbance_run` calls on one run."""
    from gee_alt.grid import pixel_size
    from gee_alt.science.disturbance import BaciDesign, control_strata

    start, _, dem, lc = _inputs(Path(run), mines, grid)
    return control_strata(start > 0, dem, lc, pixel_size(grid), design or BaciDesign())


def disturbance_runs(
    run: str | Path,
    mines: str | Path,
    impact_masks,
    *,
    design=None,
    before_last: int | None = None,
    after_first: int | None = None,
    maps=None,
    ddt_degc_days: np.ndarray | None = None,
    strata=None,
) -> list:
    """:func:`disturbance_run` (nothing written) on each of ``impact_masks`` ((y, x) bool, None =
    every disturbed pixel): a list of results, or of the :class:`GeeAltError` the call would raise,
    one per mask. One pass over the maps serves every mask and quantity (each year of each map is
    read twice in all, the thaw index once for itself and the thaw depth). Raises
    :class:`GeeAltError` for what fails on every mask (the inputs, the periods)."""
    from gee_alt.grid import pixel_size
    from gee_alt.science.disturbance import BaciDesign, BaciQuantity, baci_quantities, control_strata

    run = Path(run)
    if maps is None:
        from gee_alt.pipeline import read_alt_maps

        maps = read_alt_maps(run)
    start, restore, dem, lc = _inputs(run, mines, maps.grid)
    cal = runs.read_json(run, runs.CALIBRATION) if (run / runs.CALIBRATION).exists() else None
    design = design or BaciDesign()
    if strata is None:
        strata = control_strata(start > 0, dem, lc, pixel_size(maps.grid), design)
    elif strata.design != design or strata.control.shape != start.shape:
        raise ValueError("the strata are not those of this run and design")
    if ddt_degc_days is None:
        ddt_degc_days = _read_ddt(run, maps.years)
    if ddt_degc_days is not None:  # read once a year for both the thaw index and the thaw depth
        ddt_degc_days = LastYear(ddt_degc_days)
    # every yearly map is read (or computed) a year at a time: no (year, y, x) stack is held
    shape = tuple(start.shape)
    pf = None
    if maps.permafrost_year(0) is not None:
        pf = YearMaps(maps.permafrost_year, len(maps.years), shape)
    quantities, missing = {}, {}
    for name, values, label in (
        ("ddt_degc_days", ddt_degc_days, "the thaw index"),
        ("permafrost_fraction", pf, "permafrost presence"),
    ):
        if values is None:
            missing[name] = f"the run has no {label} maps"
        else:
            quantities[name] = BaciQuantity(values, label)
    model_start = _model_disturbance_start(run, cal, start)
    if ddt_degc_days is not None and cal and cal.get("E"):  # the conditions under which stefan_depth_m gives a map
        depth = YearMaps(
            lambda i: stefan_depth_m(
                np.asarray(ddt_degc_days[i], "float64")[None],
                cal,
                lc,
                years=[maps.years[i]],
                disturbance_start=model_start,
            )[0],
            len(maps.years),
            shape,
        )
        quantities["stefan_depth_m"] = BaciQuantity(
            depth,
            "the thaw depth",
            rel_e_sd(cal),
            rel_disturbed_e_sd(cal) if model_start is not None else 0.0,
        )
    quantities["alt_m"] = BaciQuantity(maps.alt_m, "ALT", rel_e_sd(cal), rel_disturbed_e_sd(cal))
    by_name = baci_quantities(quantities, maps.years, start, strata, list(impact_masks), before_last, after_first)
    aoa = _outside_aoa(run, start, model_start)
    out = []
    for k in range(len(by_name["alt_m"])):
        got = {name: by_name[name][k] for name in quantities}
        res = _result(got, missing, maps.years, start, restore, design, before_last, after_first, model_start)
        if not isinstance(res, GeeAltError):
            res["mines_file"] = Path(mines).name
            res.update(aoa)
        out.append(res)
    return out


def _result(got: dict, missing: dict, years, start, restore, design, before_last, after_first, model_start):
    """One mask's :func:`disturbance_run` result from each quantity's
    :func:`~gee_alt.science.disturbance.baci_quantity` result or error ``got`` (``missing``: the
    quantities the run has no maps of), or the ALT error when no quantity has a result."""
    from gee_alt.science.disturbance import CI_METHOD, _design_dict, alt_named

    quantities, errors = {}, dict(missing)
    for name in ("ddt_degc_days", "permafrost_fraction"):
        if name in got:
            if isinstance(got[name], GeeAltError):
                errors[name] = str(got[name])
            else:
                quantities[name] = got[name]
    if "stefan_depth_m" in got:
        if isinstance(got["stefan_depth_m"], GeeAltError):
            errors["stefan_depth_m"] = str(got["stefan_depth_m"])
        else:
            quantities["stefan_depth_m"] = got["stefan_depth_m"]
            quantities["stefan_depth_m"]["on"] = (
                "E·√DDT on every pixel (the depth ALT would have with permafrost), E as the ALT model deploys it: "
                "the pixel's (one-date) land-cover E"
                + (", the E of disturbed ground from the pixel's disturbance start" if model_start is not None else "")
                + (
                    ": the thaw-index part of the effect on ALT and the ground's"
                    if model_start is not None
                    else ": the thaw-index part of the effect on ALT only"
                )
            )
    if not isinstance(got["alt_m"], GeeAltError):
        res = alt_named(got["alt_m"], years, start, restore, design, before_last, after_first)
        quantities["alt_m"] = {
            "effect": res["effect_alt_m"],
            "effect_ci95": res["effect_alt_ci95_m"],
            "effect_trend_per_yr": None
            if res["effect_trend_cm_per_yr"] is None
            else res["effect_trend_cm_per_yr"] / 100,
            "effect_trend_ci95_per_yr": [c / 100 for c in res.get("effect_trend_ci95_cm_per_yr") or [np.nan, np.nan]],
            "impact_series": res["impact_series_m"],
            "control_series": res["control_series_m"],
            "impact_pixels": res["impact_pixels"],
            "impact_pixels_used": res["impact_pixels_used"],
            "control_pixels": res["control_pixels"],
            "ar1_rho": res["ar1_rho"],
            "on": "impact and control pixels with ALT (permafrost) in every year of both periods",
        }
    else:
        exc = got["alt_m"]
        if not quantities:
            return exc
        errors["alt_m"] = str(exc)
        any_q = next(iter(quantities.values()))
        res = {
            "effect_alt_m": None,
            "alt_error": str(exc),
            "years": any_q["years"],
            "before": any_q["before"],
            "after": any_q["after"],
            "impact_pixels": any_q["impact_pixels"],
            "impact_pixels_used": 0,
            "control_pixels": 0,
            "design": _design_dict(design),
            "ci_method": CI_METHOD,
        }
    res["quantities"] = quantities
    if errors:
        res["quantity_errors"] = errors
    return res


def _outside_aoa(run: Path, start: np.ndarray, model_start) -> dict:
    """``impact_outside_aoa_fraction`` (and a ``warning`` above one half) when the run has an area
    of applicability (:mod:`gee_alt.applicability_run`: is E on the disturbed ground calibrated?)."""
    from gee_alt.io import read_raster

    aoa_p = run / runs.AOA_TIF
    if not aoa_p.exists():
        return {}
    inside = read_raster(aoa_p).data[1]
    imp = (start > 0) & np.isfinite(inside)
    frac = float(np.mean(inside[imp] < 0.5)) if imp.any() else float("nan")
    res = {"impact_outside_aoa_fraction": frac}
    if frac > 0.5 and model_start is not None:
        res["warning"] = (
            f"{100 * frac:.0f} % of the disturbed pixels are outside the calibration's area of applicability: "
            "after their start year they carry the E of disturbed ground, fitted on the spoil sites, whose "
            "predictors differ from theirs (an extrapolation; its interval is in the CI)"
        )
    elif frac > 0.5:
        res["warning"] = (
            f"{100 * frac:.0f} % of the disturbed pixels are outside the calibration's area of applicability: "
            "their E is extrapolated and does not change with the disturbance, so the effect shown is the part "
            "carried by the thaw index (surface temperature) only, not a change of the ground itself"
        )
    return res


def stefan_depth_m(
    ddt_degc_days,
    calibration: dict | None,
    landcover,
    *,
    years: list[int] | None = None,
    disturbance_start: np.ndarray | None = None,
) -> np.ndarray | None:
    """``E·√DDT`` (m) on every pixel, ``(year, y, x)``: the E the ALT model deploys (the
    calibration's E; its class E where the model has one and the pixel's land cover is that
    class; its E of disturbed ground ``E_disturbed`` in the years at and after the pixel's
    ``disturbance_start`` year when given), not masked by permafrost; None without DDT or
    calibration."""
    if ddt_degc_days is None or not calibration or not calibration.get("E"):
        return None
    ddt = np.asarray(ddt_degc_days, "float64")
    e = np.full(ddt.shape[1:], float(calibration["E"]))
    if landcover is not None:
        for k, ek in (calibration.get("E_by_class") or {}).items():
            e[landcover == float(k)] = float(ek)
    depth = e[None] * np.sqrt(np.clip(ddt, 0, None))
    e_d = calibration.get("E_disturbed")
    if disturbance_start is not None and e_d and years is not None:
        s = np.asarray(disturbance_start)
        for i, y in enumerate(years):
            on = (s > 0) & (s <= int(y))
            depth[i][on] = float(e_d) * np.sqrt(np.clip(ddt[i][on], 0, None))
    return depth


def _model_disturbance_start(run: Path, calibration: dict | None, mines_start: np.ndarray) -> np.ndarray | None:
    """The disturbance start years the ALT model used (``RUN/disturbance_start.tif``, else the
    MINES file's) when the calibration deploys an E of disturbed ground; else None."""
    from gee_alt.io import read_raster

    if not (calibration or {}).get("E_disturbed"):  # set only when leave-one-site-out chose it
        return None
    p = runs.disturbance_start_path(run)
    if p.exists():
        return np.nan_to_num(read_raster(p, bands=1).data[0]).astype("int32")
    return mines_start


def _read_ddt(run: Path, years: list[int]):
    """The run's yearly DDT maps ``(year, y, x)`` (°C·day) from ``RUN/ddt`` as a
    :class:`~gee_alt.io.RasterStack` (read a year at a time), or None."""
    import rasterio

    from gee_alt.cube import DDT_VAR
    from gee_alt.io import RasterStack

    paths = [runs.ddt_path(run, y) for y in years]
    if not all(p.exists() for p in paths):
        return None
    with rasterio.open(paths[0]) as src:
        names, shape = list(src.descriptions), (src.height, src.width)
    return RasterStack(paths, shape, band=names.index(DDT_VAR) + 1 if DDT_VAR in names else 1)
