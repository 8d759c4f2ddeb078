"""Site screen at the scale of the information: the ~1 km MODIS footprint behind a site's DDT.

The downscaled DDT at a 30 m pixel still carries the 1 km MODIS LST it was sharpened from, so a
site represents its pixel only if its 1 km neighbourhood is not a mix of unlike ground. For each
site, a window of ``footprint_m`` (default 1000 m; 35 × 35 px at 30 m, radius round(500 m / 30 m)
= 17, centred on the site) gives:

- ``dem_std_1km`` (m), ``ndvi_std_1km`` (1): predictor spread inside the footprint;
- ``landcover_impurity_1km`` (1): share of the footprint *not* in the site's own land-cover class
  (1 − purity).

Default thresholds (:data:`FOOTPRINT_THRESHOLDS`, applied by
:func:`gee_alt.science.homogeneity.screen_sites` like the 210 m ones):

- ``dem_std_1km`` 80 m — a plane of slope s over a 1 km square has std = 1000 m · tan s / √12
  ≈ 289 m · tan s, so 80 m ≈ a uniform 15.5° slope; ridge-and-valley footprints exceed it;
- ``ndvi_std_1km`` 0.15 — bare ground mixed with meadow (NDVI 0.1 vs 0.5) at 20–80 % shares;
- ``landcover_impurity_1km`` 0.6 — at least 40 % of the footprint in the site's own class.

They are set from the physics of a plane (DEM) and from class-contrast arithmetic (NDVI, land
cover), not fitted to any world; the demo's realistic world reports how many sites each drops
(``calibration.json`` → ``dropped``).
"""

from __future__ import annotations

import numpy as np

from gee_alt.grid import Grid, pixel_size
from gee_alt.science.homogeneity import DEFAULT_THRESHOLDS, window_stack, window_stats

FOOTPRINT_M = 1000.0
FOOTPRINT_THRESHOLDS = {k: v for k, v in DEFAULT_THRESHOLDS.items() if k.endswith("_1km")}


def footprint_metrics(
    fields: dict[str, np.ndarray],
    landcover: np.ndarray | None,
    grid: Grid,
    row: np.ndarray,
    col: np.ndarray,
    footprint_m: float = FOOTPRINT_M,
) -> dict[str, np.ndarray]:
    """Per-site 1 km footprint metrics (see the module docstring) for ``fields`` named ``dem`` /
    ``ndvi`` and the land-cover raster; NaN where the site is off the grid."""
    r = max(1, int(round(footprint_m / 2 / pixel_size(grid))))
    out: dict[str, np.ndarray] = {}
    for name in ("dem", "ndvi"):
        if name in fields and fields[name] is not None:
            win, _ = window_stack(np.asarray(fields[name], float), row, col, r)
            st = window_stats(win)
            out[f"{name}_std_1km"] = np.where(st["valid_frac"] >= 0.5, st["std"], np.nan)
    if landcover is not None:
        win, _ = window_stack(np.asarray(landcover, float), row, col, r)
        h, w = np.asarray(landcover).shape
        ok = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        own = np.where(ok, np.asarray(landcover, float)[np.clip(row, 0, h - 1), np.clip(col, 0, w - 1)], np.nan)
        fin = np.isfinite(win)
        same = (win == own[:, None, None]) & fin
        with np.errstate(invalid="ignore", divide="ignore"):
            purity = same.sum(axis=(1, 2)) / fin.sum(axis=(1, 2))
        out["landcover_impurity_1km"] = np.where(ok & np.isfinite(own), 1.0 - purity, np.nan)
    return out
