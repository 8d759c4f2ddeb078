"""The general sharpener on files: any coarse raster onto the grid of fine predictors.

Used by ``gee-alt downscale``. The fine grid is the DEM's if given, else the first
predictor's; with a DEM, terrain predictors (elevation, slope, northness, eastness,
illumination) are derived on the fine grid. Every coarse band is sharpened; NaN/nodata
pixels stay NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gee_alt.cube import geo_dataarray
from gee_alt.errors import GeeAltError
from gee_alt.export.cog import write_cog
from gee_alt.grid import Grid, bounds, pixel_size, require_projected, same_grid
from gee_alt.io import read_raster
from gee_alt.science.sharpen import RandomForestSharpener
from gee_alt.science.terrain import terrain_predictors


def _overlap_fraction(fine: Grid, coarse: Grid) -> float:
    """Fraction (0..1) of the fine grid's extent covered by the coarse raster's extent."""
    from rasterio.warp import transform_bounds

    left, b, r, t = transform_bounds(coarse["crs"], fine["crs"], *bounds(coarse), densify_pts=21)
    fl, fb, fr, ft = bounds(fine)
    w = max(0.0, min(r, fr) - max(left, fl))
    h = max(0.0, min(t, ft) - max(b, fb))
    return (w * h) / ((fr - fl) * (ft - fb))


def fine_predictors(dem: str | Path | None, predictors: list[str | Path]) -> tuple[np.ndarray, list[str], Grid]:
    """Stack the fine predictors ``(feature, y, x)`` with names and the fine grid; checks grids match."""
    if dem is None and not predictors:
        raise GeeAltError("give a fine grid: --dem DEM.tif and/or --predictor P.tif")
    layers, names, grid = [], [], None
    if dem is not None:
        d = read_raster(dem, bands=1)
        require_projected(d.grid["crs"], f"{Path(dem).name} (the DEM for slope and aspect)")
        if not np.isfinite(d.data).any():
            raise GeeAltError(f"{Path(dem).name} has no valid pixel (all nodata)")
        grid = d.grid
        for name, arr in terrain_predictors(d.data[0], pixel_size(grid)).items():
            layers.append(arr)
            names.append(name)
    for p in predictors:
        r = read_raster(p)
        if grid is None:
            grid = r.grid
        elif not same_grid(grid, r.grid):
            first = Path(dem).name if dem is not None else Path(predictors[0]).name
            raise GeeAltError(
                f"predictor {Path(p).name} is on another grid than {first} (CRS, transform and size must match)"
            )
        if not np.isfinite(r.data).any():
            raise GeeAltError(f"predictor {Path(p).name} has no valid pixel (all nodata)")
        for i, band in enumerate(r.data):
            layers.append(band)
            names.append(f"{Path(p).stem}_b{i + 1}" if r.data.shape[0] > 1 else Path(p).stem)
    return np.stack(layers).astype("float32"), names, grid


def downscale_files(
    coarse: str | Path,
    out: str | Path,
    *,
    dem=None,
    predictors=(),
    seed: int = 0,
    trees: int = 40,
    residual_correction: bool = True,
    temperature: bool = False,
    progress=None,
) -> dict:
    """Sharpen every band of ``coarse`` onto the fine grid and write ``out`` (float32 COG, nodata NaN)."""
    if trees < 1:
        raise GeeAltError(f"--trees must be at least 1, got {trees}")
    X, names, grid = fine_predictors(dem, list(predictors))
    c = read_raster(coarse)
    if not np.isfinite(c.data).any():
        raise GeeAltError(f"{Path(coarse).name} has no valid pixel (all nodata)")
    frac = _overlap_fraction(grid, c.grid)
    if frac <= 0:
        raise GeeAltError(f"{Path(coarse).name} does not overlap the fine grid")
    adv = progress("Sharpening", c.data.shape[0]) if progress else (lambda n=1: None)
    band_names = [d or f"b{i + 1}" for i, d in enumerate(c.descriptions)]
    model = RandomForestSharpener(
        n_estimators=trees,
        random_state=seed,
        residual_correction=residual_correction,
        radiance=temperature,
        keep_gaps=True,
    )
    Xda = geo_dataarray(X, grid, names, dim="feature")
    model.fit(Xda, geo_dataarray(c.data, c.grid, band_names))
    fine = model.predict(Xda).values
    adv(c.data.shape[0])
    tags = {
        "method": "random-forest sharpening (gee-alt)",
        "source": Path(coarse).name,
        "predictors": ",".join(names),
        "seed": seed,
        "trees": trees,
        "residual_correction": int(residual_correction),
    }
    if "units" in c.tags:
        tags["units"] = c.tags["units"]
    write_cog(out, fine, grid, tags=tags, band_descriptions=band_names)
    return {
        "out": str(out),
        "bands": int(c.data.shape[0]),
        "width": grid["shape_2d"][0],
        "height": grid["shape_2d"][1],
        "n_train": int(model.n_train_),
        "predictors": names,
        "oob_rmse": model.oob_rmse_.tolist(),
        "coarse_overlap_fraction": frac,
    }
