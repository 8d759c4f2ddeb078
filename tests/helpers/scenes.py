"""Small synthetic test scenes (independent of the demo scene): fine truth, predictors, coarse observation."""

from __future__ import annotations

import numpy as np

from gee_alt.demo.fields import fractal_surface, smooth_field
from gee_alt.grid import MODIS_1KM, make_grid, modis_grid
from gee_alt.science.resample import aggregate
from gee_alt.science.terrain import terrain_predictors


def sharpen_scene(n: int = 256, seed: int = 7, n_bands: int = 3, gap_frac: float = 0.1, noise: float = 0.2):
    """Fine predictors (dem, ndvi) on UTM 47N, a nonlinear truth per band (degC), coarse obs on
    MODIS sinusoidal 1 km."""
    rng = np.random.default_rng(seed)
    x0 = 520000.0 + 30 * rng.integers(0, 1000)
    fine = make_grid("EPSG:32647", (30, 0, x0, 0, -30, 4210020.0), (n, n))
    dem = (4000 + 450 * fractal_surface((n, n), 3.0, rng)).astype("float32")
    terr = terrain_predictors(dem, 30.0)
    ndvi = np.clip(0.45 - 0.15 * (dem - 4000) / 1000 + 0.1 * smooth_field((n, n), 5, rng), 0, 0.9).astype("float32")
    z = (dem - 4000.0) / 1000.0
    truth = []
    for b in range(n_bands):
        t = (
            8
            + 3 * b
            - (6 + b) * z
            + (2 + b) * (terr["illumination"] - terr["illumination"].mean())
            - 9 * (ndvi - 0.4)
            + 4 * np.maximum(ndvi - 0.5, 0) * z
            + 0.25 * smooth_field((n, n), 6, rng)
        )
        truth.append(t)
    truth = np.stack(truth).astype("float64")
    coarse_grid = modis_grid(fine, MODIS_1KM, margin_px=0)
    obs, _, cover = aggregate(truth, fine, coarse_grid, radiance=True, with_std=False)
    obs = obs + noise * rng.standard_normal(obs.shape)
    obs[:, cover < 0.5] = np.nan
    for b in range(n_bands):
        valid = np.argwhere(np.isfinite(obs[b]))
        k = int(gap_frac * len(valid))
        drop = valid[rng.choice(len(valid), k, replace=False)]
        obs[b][tuple(drop.T)] = np.nan
    return {
        "fine_grid": fine,
        "coarse_grid": coarse_grid,
        "dem": dem,
        "ndvi": ndvi,
        "terrain": terr,
        "truth": truth.astype("float32"),
        "coarse": obs.astype("float32"),
    }
