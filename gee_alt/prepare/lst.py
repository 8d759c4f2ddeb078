"""MOD11A1/MYD11A1 days -> one year's thaw-season 8-day window LST (``modis_lst/lst_YYYY.tif``).

The same rules as the Earth Engine engine (:mod:`gee_alt.engines.ee.composite`, constants from
:mod:`gee_alt.science.product_rules`): each look is kept when DN > 0 and its own QC passes;
window daily mean = (mean valid day look + mean valid night look) / 2 with Terra and Aqua looks
pooled, Aqua only in seasons it fully covers; NaN where a window has no valid day or no valid
night look (the local engine fills gaps in time). Output on the MODIS 1 km lattice covering the
30 m grid with one cell of margin (:func:`gee_alt.grid.modis_grid`, as ``--sharpen local``
pulls it), one band per window (description = first day, tag ``days``), °C.

Memory: per window four float64 accumulators on that small grid; each granule is read only
over its overlap with it, one layer at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np

from gee_alt.config import StudyConfig
from gee_alt.grid import MODIS_1KM, Grid, modis_grid, shape_yx
from gee_alt.prepare.modis_files import ModisGranule, window_in
from gee_alt.science import product_rules as rules

QUANTITY = (
    "daily-mean land surface temperature, window composite: (mean clear-sky day looks + mean "
    "clear-sky night looks) / 2, MOD11A1 (+ MYD11A1 when Aqua covers the season)"
)


def lst_grid(fine: Grid) -> Grid:
    """The MODIS 1 km lattice around the 30 m grid (one cell of margin)."""
    return modis_grid(fine, MODIS_1KM)


def season_windows(cfg: StudyConfig, year: int):
    """The thaw-season windows of ``year`` (the Earth Engine engine's definition)."""
    from gee_alt.engines.ee.composite import lst_windows

    return lst_windows(year, cfg.season.thaw_start, cfg.season.thaw_end, cfg.season.lst_step_days)


def year_granules(granules: list[ModisGranule], cfg: StudyConfig, year: int) -> list[ModisGranule]:
    """The LST granules entering ``year``: in the thaw season; Aqua only when it covers the season."""
    windows = season_windows(cfg, year)
    start, end = dt.date.fromisoformat(windows[0].start), dt.date.fromisoformat(windows[-1].end)
    aqua = rules.aqua_in_season(windows[0].start)
    return [g for g in granules if g.kind == "lst" and start <= g.date < end and (g.platform == "terra" or aqua)]


def composite_year(
    granules: list[ModisGranule],
    cfg: StudyConfig,
    year: int,
    grid: Grid,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list]:
    """``(lst_degc (window, y, x) float32, windows)`` of ``year`` on ``grid`` from ``granules``
    (any order, any tiles; those outside the season or grid are skipped)."""
    windows = season_windows(cfg, year)
    starts = [dt.date.fromisoformat(w.start) for w in windows]
    ends = [dt.date.fromisoformat(w.end) for w in windows]
    h, w = shape_yx(grid)
    acc = np.zeros((len(windows), 4, h, w), "float64")  # day sum, day n, night sum, night n
    k_err = cfg.qa.lst_max_error_k
    for g in year_granules(granules, cfg, year):
        k = next(i for i in range(len(windows)) if starts[i] <= g.date < ends[i])
        win = window_in(g.grid, grid)
        if win is not None:
            tr, tc, gr, gc, hh, ww = win
            for j, (lst_name, qc_name) in enumerate((("LST_Day_1km", "QC_Day"), ("LST_Night_1km", "QC_Night"))):
                t = rules.lst_degc(g.read(lst_name, tr, tc, hh, ww), g.read(qc_name, tr, tc, hh, ww), k_err)
                ok = np.isfinite(t)
                acc[k, 2 * j, gr : gr + hh, gc : gc + ww] += np.where(ok, t, 0.0)
                acc[k, 2 * j + 1, gr : gr + hh, gc : gc + ww] += ok
        if progress:
            progress(1)
    out = rules.window_daily_mean_degc(acc[:, 0], acc[:, 1], acc[:, 2], acc[:, 3])
    return out, windows
