"""The local engine: input layout -> sharpened NDVI and LST -> yearly 30 m DDT cube.

The science of one year, held in memory (:func:`process_year`, :func:`run_local`): the
reference the tiled Dask engine (:mod:`gee_alt.engines.local.tiled`, what runs use) matches
byte for byte on any tile size. Settings and the memory guard live here too.

Per year: (1) Landsat NDVI gaps are filled from the per-pixel multi-year median shifted by the
year's median anomaly; (2) MODIS NDVI (250 m) is sharpened to 30 m with terrain and the filled
Landsat NDVI, and (``ndvi_fusion``, default) clear Landsat pixels are kept while gaps take the
sharpened value — the forest fills what Landsat did not see (clouds, SLC-off stripes); (3) the LST
composites (1 km; the thaw season or the whole year) are gap-filled at the coarse scale from the
pixel's multi-year climatology plus the year's anomaly, then sharpened to 30 m with terrain and
the sharpened NDVI (one multi-output forest for all composites of the year, radiance-like
aggregation); (4) DDT = sum of max(LST, 0) x days over the thaw season's composites, masked where
too few were valid; the freezing degree-days of the winter before it (whole-year composites)
and the clear-sky fraction (:mod:`gee_alt.engines.local.season`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from gee_alt.cube import geo_dataarray, make_ddt_cube
from gee_alt.engines.local.layout import InputLayout
from gee_alt.grid import pixel_size
from gee_alt.science.forest import RandomForestSettings
from gee_alt.science.frost_climate import DEFAULT_FROST_NUMBER_METHOD, DEFAULT_FROST_NUMBER_YEARS
from gee_alt.science.nanstats import nanmedian_first_axis
from gee_alt.science.resample import fill_nearest
from gee_alt.science.sharpen import RandomForestSharpener
from gee_alt.science.terrain import NDVI_TERRAIN_PREDICTORS, terrain_predictors

DEFAULT_TILE_PX = 512


@dataclass
class LocalEngineParams:
    """Settings of the local engine: the forests (``rf``; year ``Y`` seeds with
    ``rf.random_state + Y``), threads, workers and the engine's own steps."""

    rf: RandomForestSettings = field(default_factory=RandomForestSettings)
    n_jobs: int = 1  # threads per forest; 1 keeps sums in a fixed order (byte-identical output)
    workers: int | None = None  # local Dask tasks at once (None: default_workers(), memory permitting)
    tile_px: int = DEFAULT_TILE_PX  # tiles of the fine grid (memory is about the tile, not the extent)
    dask_address: str | None = None  # an existing dask.distributed scheduler (None: a local cluster)
    residual_correction: bool = True
    ndvi_fusion: bool = True
    lst_residual_rank: int | None = 2
    thaw_start: str = "03-01"  # MM-DD: the thaw season for DDT (config season.thaw_start/thaw_end)
    thaw_end: str = "11-30"
    min_valid_fraction: float = 0.5  # DDT masked below this fraction of valid season composites (EE's rule)
    frost_number_min: float = 0.5  # permafrost threshold, carried by the cube (attr frost_number_min)
    permafrost_criterion: str = "probability"  # or "boreholes", "frost_number" (config season.permafrost_criterion)
    permafrost_shift_weights: bool = True  # config season.permafrost_shift_weights (cube attr)
    # the frost number of a year from the indices of the years around it (config season.frost_number_*; cube attrs)
    frost_number_method: str = DEFAULT_FROST_NUMBER_METHOD
    frost_number_years: int = DEFAULT_FROST_NUMBER_YEARS

    @classmethod
    def from_season(cls, season, **kw) -> LocalEngineParams:
        """Params whose engine steps follow a config's ``[season]``
        (:class:`gee_alt.config.SeasonConfig`: thaw season, sparse-season rule, frost number,
        permafrost rule); ``kw``: the rest (forests, workers, tiles, scheduler)."""
        return cls(
            thaw_start=season.thaw_start,
            thaw_end=season.thaw_end,
            min_valid_fraction=season.min_valid_fraction,
            frost_number_min=season.frost_number_min,
            permafrost_criterion=season.permafrost_criterion,
            permafrost_shift_weights=season.permafrost_shift_weights,
            frost_number_method=season.frost_number_method,
            frost_number_years=season.frost_number_years,
            **kw,
        )


def fill_landsat_gaps(stack: np.ndarray) -> np.ndarray:
    """Fill NaNs of a ``(year, y, x)`` Landsat NDVI stack: the pixel's multi-year median plus the
    year's median anomaly; pixels never observed get the nearest observed value."""
    # never-observed pixels: filled below
    clim = nanmedian_first_axis(stack) if np.isfinite(stack).any() else np.zeros(stack.shape[1:])
    clim = fill_nearest(clim)
    out = stack.copy()
    for i in range(stack.shape[0]):
        ok = np.isfinite(stack[i]) & np.isfinite(clim)
        anom = float(np.median(stack[i][ok] - clim[ok])) if ok.any() else 0.0
        out[i] = np.where(np.isfinite(stack[i]), stack[i], clim + anom)
    return out


_TERRAIN_CACHE: dict = {}


def _terrain_stack(layout: InputLayout) -> tuple[np.ndarray, list[str]]:
    key = str(layout.root.resolve())
    if key not in _TERRAIN_CACHE:
        terrain = terrain_predictors(layout.dem.data[0], pixel_size(layout.grid))
        _TERRAIN_CACHE.clear()
        _TERRAIN_CACHE[key] = (np.stack([terrain[n] for n in terrain]), list(terrain))
    return _TERRAIN_CACHE[key]


def process_year(
    layout: InputLayout,
    year: int,
    landsat_filled: np.ndarray,
    landsat_raw: np.ndarray,
    params: LocalEngineParams,
    climatology: dict | None = None,
) -> dict:
    """One year of the local engine: sharpened NDVI and LST, then :func:`season.fine_products`
    (DDT, its spread, n_obs, clear-sky fraction, the freezing halves) and the season plan."""
    from gee_alt.engines.local.season import composite_key, fine_products, plan_season

    grid = layout.grid
    tstack, names = _terrain_stack(layout)
    ndvi_idx = [k for k, n in enumerate(names) if n in NDVI_TERRAIN_PREDICTORS]
    common = {
        **params.rf.model_dump(),
        "random_state": params.rf.random_state + year,
        "residual_correction": params.residual_correction,
        "n_jobs": params.n_jobs,
    }
    # 1) NDVI 250 m -> 30 m
    X_ndvi = geo_dataarray(
        np.concatenate([tstack[ndvi_idx], landsat_filled[None]]),
        grid,
        [names[k] for k in ndvi_idx] + ["landsat_ndvi"],
        dim="feature",
    )
    modis_ndvi = layout.modis_ndvi(year)
    y_ndvi = geo_dataarray(modis_ndvi.data, modis_ndvi.grid, ["ndvi"])
    ndvi30 = RandomForestSharpener(keep_gaps=False, **common).fit(X_ndvi, y_ndvi).predict(X_ndvi).values[0]
    if params.ndvi_fusion:  # clear Landsat pixels are kept; gaps come from the sharpened MODIS NDVI
        ndvi30 = np.where(np.isfinite(landsat_raw), landsat_raw, ndvi30)
    ndvi30 = np.clip(ndvi30, -0.2, 1.0).astype("float32")
    # 2) LST 1 km -> 30 m, all composites at once
    comp = layout.modis_lst(year)
    plan = plan_season(comp, (climatology or {}).get(composite_key(comp)), params, layout.modis_lst_path(year).name)
    y_lst = geo_dataarray(plan.filled, comp.raster.grid, [d.isoformat() for d in comp.start_dates])
    X_lst = geo_dataarray(np.concatenate([tstack, ndvi30[None]]), grid, names + ["ndvi_30m"], dim="feature")
    sharp = RandomForestSharpener(radiance=True, keep_gaps=True, residual_rank=params.lst_residual_rank, **common).fit(
        X_lst, y_lst
    )
    lst30 = sharp.predict(X_lst).values
    # 3) DDT over the thaw season, freezing halves, clear-sky fraction
    return {
        "year": year,
        **fine_products(lst30, sharp.oob_rmse_, plan, grid),
        "has_freezing_season": plan.has_winter,
        "ddt_fraction": plan.fraction_by_doy,
        "season": plan.season_label,
        "products": {
            "ndvi_30m": ndvi30,
            "lst_30m_degc": lst30,
            "lst_coarse": y_lst,
            "days": comp.days,
            "ndvi_coarse": y_ndvi,
        },
    }


def default_workers() -> int:
    """Worker processes for the yearly loop: the CPU count, at most 4 (memory), at least 1."""
    return max(1, min(4, os.cpu_count() or 1))


# Measured (issue 12): one tile task of 512 x 512 px with 27 composites peaks at ~0.45 GB above
# the interpreter and libraries (~0.3 GB): ~60 bytes per fine pixel and composite, taken with
# margin. The coarse tasks hold a few 2-D float64 bands of the scene (scene standard deviation):
# ~40 bytes per fine pixel of the extent.
BYTES_PER_PIXEL_COMPOSITE = 110
SCENE_BYTES_PER_PIXEL = 40
WORKER_BASE_BYTES = 300 * 2**20


def available_memory_bytes() -> int | None:
    """Memory available to new processes (Linux ``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def workers_for_memory(tile_pixels: int, n_composites: int, requested: int, scene_pixels: int = 0) -> int:
    """The number of workers (<= ``requested``) whose estimated peak (a tile task of
    ``tile_pixels`` x ``n_composites``, or a coarse task over ``scene_pixels``) fits in 80 % of
    available memory; raises :class:`GeeAltError` when even one does not (a smaller tile)."""
    from gee_alt.errors import GeeAltError

    tile = BYTES_PER_PIXEL_COMPOSITE * tile_pixels * max(n_composites, 1)
    per_worker = WORKER_BASE_BYTES + max(tile, SCENE_BYTES_PER_PIXEL * scene_pixels)
    avail = available_memory_bytes()
    if avail is None:
        return requested
    fit = int(0.8 * avail // per_worker)
    if fit < 1:
        side = int(tile_pixels**0.5)
        raise GeeAltError(
            f"a {side} x {side} px tile with {n_composites} composites needs about {per_worker / 2**30:.1f} GB "
            f"per worker, {avail / 2**30:.1f} GB is available: pass a smaller --tile-size"
        )
    return max(1, min(requested, fit))


def run_local(
    layout: InputLayout,
    years: list[int],
    params: LocalEngineParams = LocalEngineParams(),
    *,
    synthetic: bool = False,
    on_year: Callable[[int, dict], None] | None = None,
) -> xr.Dataset:
    """The local engine held in memory, one year after the other: the reference the tiled engine
    (:mod:`gee_alt.engines.local.tiled`) matches byte for byte. Returns the DDT cube;
    ``on_year(year, products)`` gets each year's ``ndvi_30m``, ``lst_30m_degc``, ``lst_coarse``,
    ``ndvi_coarse`` and ``days``."""
    from gee_alt.engines.local.season import freezing_season_ddf, lst_climatology

    layout.check_years(years)
    grid = layout.grid
    landsat_raw = np.stack([layout.landsat_ndvi(y).data[0] for y in years])
    landsat = fill_landsat_gaps(landsat_raw)
    climatology = lst_climatology(layout, years)
    results = []
    for i, year in enumerate(years):
        res = process_year(layout, year, landsat[i], landsat_raw[i], params, climatology)
        before = results[-1]["ddf_autumn"] if results and years[i - 1] == year - 1 else None
        res["ddf"] = freezing_season_ddf(res["ddf_spring"], before, res["ddf_autumn"])
        if on_year:
            on_year(year, res["products"])
        results.append(res)
    winter = all(r["has_freezing_season"] for r in results)
    return make_ddt_cube(
        np.stack([r["ddt"] for r in results]),
        years,
        grid,
        ddt_sd_degc_days=np.stack([r["ddt_sd"] for r in results]),
        n_obs=np.stack([r["n_obs"] for r in results]),
        ddf_degc_days=np.stack([r["ddf"] for r in results]) if winter else None,
        clear_sky_fraction=np.stack([r["clear"] for r in results]),
        ddt_fraction_by_doy=np.stack([r["ddt_fraction"] for r in results]),
        engine="local",
        synthetic=synthetic,
        thaw_season=results[-1]["season"],
        extra_attrs={
            "method": "RF sharpening (local engine, scikit-learn)",
            "n_estimators": params.rf.n_estimators,
            "seed": params.rf.random_state,
            "frost_number_min": params.frost_number_min,
            "permafrost_criterion": params.permafrost_criterion,
            "permafrost_shift_weights": int(params.permafrost_shift_weights),
            "frost_number_method": params.frost_number_method,
            "frost_number_years": params.frost_number_years,
        },
    )
