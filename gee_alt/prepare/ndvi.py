"""MOD13Q1 16-day 250 m NDVI -> one year's growing-season MODIS NDVI.

As the Earth Engine engine (:func:`gee_alt.engines.ee.composite.modis_ndvi_composite`): the
composites that start in the growing season, NDVI DN × 0.0001 kept where ``SummaryQA`` is
0..``qa.modis_ndvi_max_summary_qa`` (HDF: ``250m 16 days pixel reliability``), per-pixel median.
Output on the MODIS 250 m lattice covering the 30 m grid (one cell of margin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np

from gee_alt.config import StudyConfig
from gee_alt.grid import MODIS_250M, Grid, modis_grid, shape_yx
from gee_alt.prepare.modis_files import ModisGranule, window_in
from gee_alt.science import product_rules as rules


def ndvi_grid(fine: Grid) -> Grid:
    """The MODIS 250 m lattice around the 30 m grid (one cell of margin)."""
    return modis_grid(fine, MODIS_250M)


def growing_season(cfg: StudyConfig, year: int) -> tuple[dt.date, dt.date]:
    """``(first day, day after the last)`` of the growing season of ``year``."""
    from gee_alt.engines.ee.composite import season_bounds

    s, e = season_bounds(year, cfg.season.growing_start, cfg.season.growing_end)
    return dt.date.fromisoformat(s), dt.date.fromisoformat(e)


def year_granules(granules: list[ModisGranule], cfg: StudyConfig, year: int) -> list[ModisGranule]:
    """The NDVI composites starting in the growing season of ``year``."""
    start, end = growing_season(cfg, year)
    return [g for g in granules if g.kind == "ndvi" and start <= g.date < end]


def composite_year(
    granules: list[ModisGranule], cfg: StudyConfig, year: int, grid: Grid, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Growing-season median NDVI (float32, NaN = no accepted composite) of ``year`` on ``grid``."""
    chosen = year_granules(granules, cfg, year)
    dates = sorted({(g.date, g.platform) for g in chosen})
    stack = np.full((max(len(dates), 1), *shape_yx(grid)), np.nan)  # float64 until the median
    for g in chosen:
        k = dates.index((g.date, g.platform))
        win = window_in(g.grid, grid)
        if win is not None:
            tr, tc, gr, gc, hh, ww = win
            v = rules.mod13q1_ndvi(
                g.read("NDVI", tr, tc, hh, ww), g.read("SummaryQA", tr, tc, hh, ww), cfg.qa.modis_ndvi_max_summary_qa
            )
            stack[k, gr : gr + hh, gc : gc + ww] = v
        if progress:
            progress(1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        return np.nanmedian(stack, axis=0).astype("float32")
