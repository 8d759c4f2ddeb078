"""A small run directory written with ``write_cog`` for the report / map / notebook tests.

64 x 64 pixels, UTM 47N, 30 m, in the Datong source region; 5 years; ALT 1-3 m thickening
by ~2 cm/yr in the east half; DDT consistent with ALT = E sqrt(DDT); an ALT sd; a trend with
a significant patch; calibration.json and validation.json as the pipeline writes them.
Import it from a test module (there is deliberately no conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gee_alt.export.cog import write_cog
from gee_alt.grid import make_grid

E = 0.045
YEARS = [2019, 2020, 2021, 2022, 2023]
GRID = make_grid("EPSG:32647", (30.0, 0.0, 535_020.0, 0.0, -30.0, 4_211_040.0), (64, 64))


def alt_field(year: int, n: int = 64) -> np.ndarray:
    """ALT (m) of ``year``: 1-3 m west→east plus a smooth bump, +2 cm/yr in the east half."""
    y, x = np.mgrid[0:n, 0:n] / (n - 1)
    base = 1.0 + 2.0 * x + 0.2 * np.sin(3 * np.pi * y)
    base = np.clip(base, 1.0, 3.0)
    return (base + (x > 0.5) * 0.02 * (year - YEARS[0])).astype("float32")


def make_run(
    root: str | Path,
    *,
    synthetic: bool = True,
    with_trend: bool = True,
    with_validation: bool = True,
    years: list[int] = YEARS,
) -> Path:
    """Write the fixture run directory at ``root`` and return it."""
    run = Path(root)
    tags = {"synthetic": 1} if synthetic else {}
    for year in years:
        alt = alt_field(year)
        alt[:3, :3] = np.nan  # a nodata corner
        ddt = (alt / E) ** 2
        ddt_sd = 0.05 * ddt
        n_obs = np.full_like(alt, 20.0)
        write_cog(
            run / "ddt" / f"ddt_{year}.tif",
            np.stack([ddt, ddt_sd, n_obs]),
            GRID,
            tags={**tags, "year": year, "units": "degC day"},
            band_descriptions=["ddt_degc_days", "ddt_sd_degc_days", "n_obs"],
        )
        write_cog(
            run / "alt" / f"alt_{year}.tif",
            alt,
            GRID,
            tags={**tags, "year": year, "units": "m"},
            band_descriptions=["alt_m"],
        )
        write_cog(
            run / "alt" / f"alt_sd_{year}.tif",
            0.08 * alt + 0.05,
            GRID,
            tags={**tags, "year": year, "units": "m"},
            band_descriptions=["alt_sd_m"],
        )
    if with_trend:
        xx = np.mgrid[0:64, 0:64][1]
        slope = np.where(xx > 32, 2.0, 0.1).astype("float32")
        p = np.where(xx > 32, 0.01, 0.6).astype("float32")
        write_cog(run / "trend" / "alt_trend_cm_per_yr.tif", slope, GRID, tags={**tags, "units": "cm/yr"})
        write_cog(run / "trend" / "alt_trend_p.tif", p, GRID, tags={**tags, "units": "1"})
    cal = {
        "E": E,
        "E_units": "m (degC day)^-0.5",
        "E_ci95": [0.041, 0.049],
        "E_sd": 0.002,
        "n_used": 18,
        "n_dropped": 2,
        "drop_reasons": {"ALT <= 0": 1, "heterogeneous site": 1},
        "loo": {"rmse_m": 0.31, "bias_m": -0.05, "mae_m": 0.24, "r2": 0.71, "n": 18},
    }
    (run / "calibration.json").write_text(json.dumps(cal, indent=2))
    if with_validation:
        rng = np.random.default_rng(0)
        pairs = []
        for i in range(12):
            obs = float(1.2 + 0.15 * i)
            pairs.append(
                {
                    "site_id": f"S{i:02d}",
                    "year": years[i % len(years)],
                    "alt_obs_m": round(obs, 3),
                    "alt_pred_m": round(obs + float(rng.normal(0, 0.2)), 3),
                }
            )
        (run / "validation.json").write_text(json.dumps({"insitu": pairs}, indent=2))
    return run


def palette_coverage(png: bytes | str | Path, cmap: str, tol: int = 6) -> tuple[float, int]:
    """(fraction of pixels within ``tol`` (max abs RGB difference) of a colour of ``cmap``,
    number of distinct colormap entries matched) — "is this layer drawn, with its gradient?"."""
    import io

    from PIL import Image

    from gee_alt.viz.palettes import lut_rgb

    src = io.BytesIO(png) if isinstance(png, bytes) else png
    a = np.asarray(Image.open(src).convert("RGB")).reshape(-1, 3).astype(np.int32)
    uniq, counts = np.unique(a, axis=0, return_counts=True)
    d = np.abs(uniq[:, None, :] - lut_rgb(cmap).astype(np.int32)[None]).max(axis=2)
    ok = d.min(axis=1) <= tol
    return float(counts[ok].sum() / a.shape[0]), int(np.unique(d.argmin(axis=1)[ok]).size)


def layer_drawn(png, cmap: str, min_fraction: float = 0.15, min_colors: int = 32) -> bool:
    """The screenshot check: the layer's palette covers ``min_fraction`` of the pixels with at
    least ``min_colors`` distinct palette entries (a gradient, not one stray colour)."""
    frac, n = palette_coverage(png, cmap)
    return frac >= min_fraction and n >= min_colors
