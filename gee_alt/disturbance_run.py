"""``gee-alt disturbance RUN --mines MINES``: the BACI analysis of a run's ALT maps.

Reads the run's ALT (``alt/*.tif``), DEM, land cover and calibration, the disturbance file
(:func:`gee_alt.science.disturbance.read_disturbance`), and writes ``RUN/disturbance.json``
(shown by the report with a figure of the impact and matched-control series). The science is in
:mod:`gee_alt.science.disturbance`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.errors import GeeAltError
from gee_alt.io import write_json_atomic

DISTURBANCE_JSON = runs.DISTURBANCE_JSON


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
    write: bool = True,
) -> dict:
    """The BACI effect of the disturbances in ``mines`` on the run's ALT; writes
    ``RUN/disturbance.json`` (``write``). ``maps``: the run's :class:`~gee_alt.downstream.AltMaps`
    when already in memory."""
    from gee_alt.grid import pixel_size
    from gee_alt.io import read_raster
    from gee_alt.science.disturbance import BaciDesign, baci_effect, read_disturbance

    run = Path(run)
    if maps is None:
        from gee_alt.pipeline import read_alt_maps

        maps = read_alt_maps(run)
    start, restore = read_disturbance(mines, maps.grid)
    dem_p = run / runs.DEM
    if not dem_p.exists():
        raise GeeAltError(f"{run} has no {runs.DEM}: the controls are matched on elevation and aspect")
    dem = read_raster(dem_p, bands=1).data[0]
    lc_p = run / runs.LANDCOVER
    lc = read_raster(lc_p, bands=1).data[0] if lc_p.exists() else None
    if dem.shape != start.shape or (lc is not None and lc.shape != start.shape):
        raise GeeAltError(f"{runs.DEM}/{runs.LANDCOVER} of {run} are not on the ALT grid; rerun the run")
    cal = runs.read_json(run, runs.CALIBRATION) if (run / runs.CALIBRATION).exists() else None
    res = baci_effect(
        maps.alt_m,
        maps.years,
        start,
        dem,
        pixel_size(maps.grid),
        landcover=lc,
        restoration_year=restore,
        design=design or BaciDesign(),
        before_last=before_last,
        after_first=after_first,
        rel_e_sd=rel_e_sd(cal),
        impact_mask=impact_mask,
    )
    res["mines_file"] = Path(mines).name
    aoa_p = run / runs.AOA_TIF  # gee_alt.applicability_run: is E on the disturbed ground calibrated?
    if aoa_p.exists():
        inside = read_raster(aoa_p).data[1]
        imp = (start > 0) & np.isfinite(inside)
        frac = float(np.mean(inside[imp] < 0.5)) if imp.any() else float("nan")
        res["impact_outside_aoa_fraction"] = frac
        if frac > 0.5:
            res["warning"] = (
                f"{100 * frac:.0f} % of the disturbed pixels are outside the calibration's area of applicability: "
                "their E is extrapolated and does not change with the disturbance, so the effect shown is the part "
                "carried by the thaw index (surface temperature) only, not a change of the ground itself"
            )
    if write:
        write_json_atomic(run / DISTURBANCE_JSON, res)
    return res
