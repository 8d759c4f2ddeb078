"""The local engine, tiled, on Dask: memory about the tile, not the extent; any number of machines.

The scene is cut into tiles (:mod:`gee_alt.engines.local.tiles`). Each year is a chain of Dask
tasks; the per-tile ones (``T``) hold one tile, the coarse ones (``C``) the small coarse grid
plus GDAL's bounded warp buffers::

    static    T terrain (DEM window + 1 px halo: derivatives)   T Landsat climatology (all years)
              C climatology fill (only when a pixel was never observed)
    per year  C Landsat anomaly (median over the scene)
              T NDVI predictors -> C NDVI forest (coarse) -> T NDVI model -> C NDVI residual
              T 30 m NDVI (+ residual, Landsat fusion) and LST predictors
              C LST forest (and the season plan: climatology fill, thaw/freezing selections)
              T LST model -> C LST residual (rank 2) -> T 30 m LST, DDT, DDT sd, n_obs,
                clear-sky fraction, freezing halves (:mod:`gee_alt.engines.local.season`)
              C the year's DDT COG (from the tiles, streamed; the freezing index takes the
                autumn half of the year before from that year's tiles)

Coarse aggregation reads the tiles of a quantity through a VRT mosaic with GDAL's warper (the
same bytes as in memory, whatever the tile size); residual interpolation and terrain need no
other halo. Every pixel's value is computed by the same arithmetic whatever tile holds it, so
the output is byte-identical for any tile size and any scheduler (forests single-threaded,
BLAS in pixel blocks of 16).

Resume: every task writes its files atomically under ``RUN/.resume/work-<tile px>/`` and does
nothing when they exist; finished years are in the run's :class:`gee_alt.runs.Progress`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.cube import geo_dataarray
from gee_alt.engines.local.layout import InputLayout
from gee_alt.engines.local.tiles import (
    WARP_SUM_MEM_MB,
    Tile,
    read_mosaic_band,
    read_tile,
    read_window,
    tiles_of,
    warp_mosaic,
    write_mosaic,
    write_tile,
)
from gee_alt.errors import GeeAltError
from gee_alt.grid import pixel_size
from gee_alt.io import atomic_path
from gee_alt.science.frost_climate import tags_of
from gee_alt.science.nanstats import nanmedian_first_axis
from gee_alt.science.resample import coverage_from_counts, fill_nearest
from gee_alt.science.sharpen import CoarseStatistics, RandomForestSharpener
from gee_alt.science.terrain import NDVI_TERRAIN_PREDICTORS, TERRAIN_PREDICTORS, terrain_predictors
from gee_alt.units import KELVIN_AT_0_DEGC

NDVI_IDX = [k for k, n in enumerate(TERRAIN_PREDICTORS) if n in NDVI_TERRAIN_PREDICTORS]


@dataclass(frozen=True)
class Job:
    """What every task needs to find its inputs and files (small and picklable)."""

    inputs: str
    run: str
    years: tuple[int, ...]
    params: object  # LocalEngineParams
    tile_px: int
    keep_lst: bool = False

    @property
    def layout(self) -> InputLayout:
        return _layout(self.inputs)

    @property
    def grid(self):
        return self.layout.grid

    @property
    def tiles(self) -> list[Tile]:
        return tiles_of(self.grid, self.tile_px)

    def path(self, year: int | None, step: str, tile: Tile | None = None, ext: str = ".tif") -> Path:
        return runs.work_path(self.run, self.tile_px, year, step, tile.name if tile else None, ext)

    def sharpener(self, year: int, **kw) -> RandomForestSharpener:
        p = self.params
        return RandomForestSharpener(
            **{**p.rf.model_dump(), "random_state": p.rf.random_state + year},
            residual_correction=p.residual_correction,
            n_jobs=p.n_jobs,
            **kw,
        )


@functools.lru_cache(maxsize=2)
def _layout(inputs: str) -> InputLayout:
    return InputLayout.for_tasks(inputs)


def drop_caches() -> None:
    """Forget this process's cached layouts and loaded forests and residual bases (after a run:
    the downstream does not need them)."""
    _load.cache_clear()
    _layout.cache_clear()


@functools.lru_cache(maxsize=8)
def _load(path: str):
    with open(path, "rb") as f:
        return pickle.load(f)


def _dump(path: Path, obj) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


@contextlib.contextmanager
def _task():
    """Every task: one BLAS thread (bytes do not depend on the worker) and GDAL's block cache of
    its process at :data:`~gee_alt.engines.local.tiles.GDAL_CACHE_MB` (set for the process, not
    put back: a task ending must not give a still-running one the default 5 % of the RAM).
    Every task's freed memory is given back to the OS when it ends
    (:func:`gee_alt.memory.release_freed_memory`, no garbage collection), or every thread's
    malloc arena would keep its high-water mark for the rest of the run: a coarse task's GDAL
    warp buffers (a few hundred MB), and the float64 temporaries of tile tasks running side by
    side (so the memory after a tile stage would grow with the number of tiles run at once)."""
    from threadpoolctl import threadpool_limits

    from gee_alt.engines.local.tiles import GDAL_CACHE_MB
    from gee_alt.memory import release_freed_memory, set_gdal_cache_mb

    set_gdal_cache_mb(GDAL_CACHE_MB)
    try:
        with threadpool_limits(1):
            yield
    finally:
        release_freed_memory(collect=False)


def _read(path: Path, tile: Tile) -> np.ndarray:
    """A window of an input raster on the whole grid (float32, NaN = nodata)."""
    return read_window(path, tile)[0]


# ------------------------------------------------------------------------------ static tasks
def terrain_tile(job: Job, tile: Tile) -> str:
    """T: the terrain predictors of a tile (float32, :data:`TERRAIN_PREDICTORS` order)."""
    out = job.path(None, "terrain", tile)
    if not out.exists():
        with _task():
            dem, (top, left) = read_window(runs.dem_path(job.inputs), tile, halo=1)
            terr = terrain_predictors(dem[0], pixel_size(job.grid))
            stack = np.stack([terr[n] for n in TERRAIN_PREDICTORS])[
                :, top : top + tile.height, left : left + tile.width
            ]
            write_tile(out, stack, job.grid, tile)
    return str(out)


def climate_tile(job: Job, tile: Tile) -> tuple[bool, bool]:
    """T: the per-pixel multi-year median of Landsat NDVI; returns (has a gap, has a value)."""
    out = job.path(None, "clim", tile)
    if out.exists():
        clim = read_tile(out)[0]
    else:
        with _task():
            stack = np.stack([_read(job.layout.landsat_ndvi_path(y), tile)[0] for y in job.years])
            clim = nanmedian_first_axis(stack)  # never-observed pixels: NaN, filled later
            write_tile(out, clim, job.grid, tile)
    ok = np.isfinite(clim)
    return bool((~ok).any()), bool(ok.any())


def climate_final(job: Job, flags: list[tuple[bool, bool]], _terrain: list[str]) -> str:
    """C: the climatology step the years use: ``clim`` as it is, or ``climf`` with never-observed
    pixels given the nearest observed value (over the whole scene, as in memory). Every later
    task depends on it, so on the terrain tiles too (``_terrain``)."""
    if not any(gap for gap, _ in flags):
        return "clim"
    tiles = job.tiles
    if all(job.path(None, "climf", t).exists() for t in tiles):
        return "climf"
    with _task():
        from gee_alt.grid import shape_yx

        if any(val for _, val in flags):
            full = np.empty(shape_yx(job.grid), "float32")
            for t in tiles:
                full[t.slices()] = read_tile(job.path(None, "clim", t))[0]
            full = fill_nearest(full)
        else:  # no Landsat value anywhere (preflight refuses this; kept for the in-memory parity)
            full = np.zeros(shape_yx(job.grid), "float32")
        for t in tiles:
            write_tile(job.path(None, "climf", t), full[t.slices()], job.grid, t)
    return "climf"


def landsat_anomaly(job: Job, year: int, clim_step: str) -> float:
    """C: the year's median Landsat anomaly from the climatology over the scene (exact: a median
    does not depend on the order the tiles are read in)."""
    out = job.path(year, "anomaly", ext=".json")
    if out.exists():
        return float(json.loads(out.read_text())["anomaly"])
    with _task():
        parts = []
        for t in job.tiles:
            raw = _read(job.layout.landsat_ndvi_path(year), t)[0]
            clim = read_tile(job.path(None, clim_step, t))[0]
            ok = np.isfinite(raw) & np.isfinite(clim)
            parts.append(raw[ok] - clim[ok])
        values = np.concatenate(parts)
        anom = float(np.median(values)) if values.size else 0.0
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"anomaly": anom}))
    return anom


def _landsat_tile(job: Job, year: int, tile: Tile, clim_step: str, anom: float) -> tuple[np.ndarray, np.ndarray]:
    """(raw, gap-filled) Landsat NDVI of a tile."""
    raw = _read(job.layout.landsat_ndvi_path(year), tile)[0]
    clim = read_tile(job.path(None, clim_step, tile))[0]
    return raw, np.where(np.isfinite(raw), raw, clim + anom)


def _write_fit_features(job: Job, path: Path, tile: Tile, X: np.ndarray) -> None:
    """The tile's share of a forest's coarse summary: masked predictors, their squares and the
    valid mask (float64, as the in-memory aggregation sees them)."""
    Xf = np.asarray(X, dtype="float64")
    valid = np.all(np.isfinite(Xf), axis=0)
    masked = np.where(valid, Xf, np.nan)
    write_tile(path, np.concatenate([masked, masked * masked, valid[None].astype("float64")]), job.grid, tile)


def ndvi_features_tile(job: Job, year: int, tile: Tile, clim_step: str, anom: float) -> str:
    """T: the NDVI forest's predictors of a tile (terrain without illumination, gap-filled Landsat)."""
    out = job.path(year, "ndvi_fit", tile)
    if not out.exists():
        with _task():
            terr = read_tile(job.path(None, "terrain", tile))
            _, filled = _landsat_tile(job, year, tile, clim_step, anom)
            _write_fit_features(job, out, tile, np.concatenate([terr[NDVI_IDX], filled[None]]))
    return str(out)


def _ones_mosaic(job: Job) -> Path:
    """A mosaic of ones over the grid (the coarse pixels' full fine-pixel counts)."""
    ones = job.path(None, "ones")
    if not ones.exists():
        t = Tile(0, 0, min(job.tile_px, job.grid["shape_2d"][1]), min(job.tile_px, job.grid["shape_2d"][0]))
        write_tile(ones, np.ones((t.height, t.width), "float64"), job.grid, t)
    vrt = job.path(None, "ones", ext=".vrt")
    if not vrt.exists():
        write_mosaic(vrt, [(t, ones) for t in job.tiles], job.grid, 1, "float64")
    return vrt


def _full_counts(job: Job, coarse_grid) -> np.ndarray:
    """The fine-pixel count of every coarse pixel of ``coarse_grid`` (GDAL's sum of the ones
    mosaic): the same for every year and quantity on that grid, so warped once per run and kept
    in the run's static scratch (a GDAL sum warp costs as much as a forest on the tiles)."""
    from rasterio.enums import Resampling

    key = hashlib.sha1(json.dumps(coarse_grid, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = job.path(None, f"full_counts_{key}", ext=".npy")
    if path.exists():
        return np.load(path)
    full = warp_mosaic(_ones_mosaic(job), [1], coarse_grid, Resampling.sum, fill=0.0, mem_mb=WARP_SUM_MEM_MB)[0]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, full)
    return full


def _coverage(job: Job, mask_vrt: Path, band: int, coarse_grid) -> np.ndarray:
    from rasterio.enums import Resampling

    counts = warp_mosaic(mask_vrt, [band], coarse_grid, Resampling.sum, fill=0.0, mem_mb=WARP_SUM_MEM_MB)[0]
    return coverage_from_counts(counts, _full_counts(job, coarse_grid))


def lst_climatology_of_run(job: Job) -> dict:
    """C: the per-pixel multi-year median of each coarse LST composite calendar over the run's years
    (:func:`gee_alt.engines.local.season.lst_climatology`), computed once for every year's LST forest."""
    from gee_alt.engines.local.season import lst_climatology

    with _task():
        return lst_climatology(job.layout, list(job.years))


def fit_forest(job: Job, year: int, kind: str, _features: list[str], lst_climatology: dict | None = None) -> str:
    """C: train the year's NDVI (``kind="ndvi"``) or LST forest at the coarse scale from the tiles'
    predictors (VRT mosaic -> GDAL aggregation; scene standard deviation band by band).
    ``lst_climatology``: :func:`lst_climatology_of_run` (LST only)."""
    out = job.path(year, f"{kind}_model", ext=".pkl")
    if out.exists():
        return str(out)
    from rasterio.enums import Resampling

    with _task():
        n_feat = len(NDVI_IDX) + 1 if kind == "ndvi" else len(TERRAIN_PREDICTORS) + 1
        vrt = job.path(year, f"{kind}_fit", ext=".vrt")
        write_mosaic(
            vrt, [(t, job.path(year, f"{kind}_fit", t)) for t in job.tiles], job.grid, 2 * n_feat + 1, "float64"
        )
        extra = {}
        if kind == "ndvi":
            modis = job.layout.modis_ndvi(year)
            y = geo_dataarray(modis.data, modis.grid, ["ndvi"])
            model = job.sharpener(year, keep_gaps=False)
        else:
            from gee_alt.engines.local.season import composite_key, plan_season

            comp = job.layout.modis_lst(year)
            clim = lst_climatology.get(composite_key(comp))
            plan = plan_season(comp, clim, job.params, job.layout.modis_lst_path(year).name)
            y = geo_dataarray(plan.filled, comp.raster.grid, [d.isoformat() for d in comp.start_dates])
            model = job.sharpener(year, radiance=True, keep_gaps=True, residual_rank=job.params.lst_residual_rank)
            extra = {"plan": plan, "days": comp.days, "season": plan.season_label}
        coarse = modis.grid if kind == "ndvi" else comp.raster.grid
        mean = warp_mosaic(vrt, list(range(1, n_feat + 1)), coarse, Resampling.average)
        sq = warp_mosaic(vrt, list(range(n_feat + 1, 2 * n_feat + 1)), coarse, Resampling.average)
        std = np.sqrt(np.clip(sq - mean**2, 0.0, None))
        cover = _coverage(job, vrt, 2 * n_feat + 1, coarse)
        scene_std = np.array([np.nanstd(read_mosaic_band(vrt, b)) for b in range(1, n_feat + 1)])
        if not np.isfinite(scene_std).any():
            raise GeeAltError("the fine predictors have no pixel where all are valid")
        model.fit_coarse(CoarseStatistics(mean, std, cover, scene_std), y, job.grid)
        # ``cover`` is also the cover of the model's valid predictions (a prediction is valid
        # exactly where every predictor is): the residual step reuses it
        _dump(out, {"model": model, "y": y, "cover": cover, **extra})
    return str(out)


def predict_tile(job: Job, year: int, kind: str, tile: Tile, model_path: str, clim_step: str, anom: float) -> str:
    """T: the forest alone on a tile's predictors; writes the prediction and (LST) the
    radiance-like ``(T + 273.15)^4`` the residual's aggregation needs (the prediction is valid
    exactly where every predictor is, so its cover is the forest's training cover)."""
    out = job.path(year, f"{kind}_pred", tile)
    if out.exists():
        return str(out)
    with _task():
        m = _load(model_path)["model"]
        terr = read_tile(job.path(None, "terrain", tile))
        if kind == "ndvi":
            _, filled = _landsat_tile(job, year, tile, clim_step, anom)
            X = np.concatenate([terr[NDVI_IDX], filled[None]])
        else:
            X = np.concatenate([terr, read_tile(job.path(year, "ndvi30", tile))])
        pred = m.predict_model(geo_dataarray(X, tile.grid(job.grid), [f"f{i}" for i in range(len(X))], dim="feature"))
        if kind == "lst":
            k4 = pred + KELVIN_AT_0_DEGC
            np.multiply(k4, k4, out=k4)
            np.multiply(k4, k4, out=k4)  # ((T + 273.15)^2)^2, in place
            write_tile(job.path(year, "lst_k4", tile), k4, job.grid, tile)
        write_tile(out, pred, job.grid, tile)
    return str(out)


def residual(job: Job, year: int, kind: str, model_path: str, _preds: list[str]) -> str:
    """C: the year's coarse residual (observation minus the aggregated model) as a basis to add back."""
    out = job.path(year, f"{kind}_basis", ext=".pkl")
    if out.exists():
        return str(out)
    from rasterio.enums import Resampling

    with _task():
        info = _load(model_path)
        m = info["model"]
        nb = m.y_coarse_.shape[0]
        src = "lst_k4" if kind == "lst" else "ndvi_pred"
        vrt = job.path(year, src, ext=".vrt")
        write_mosaic(vrt, [(t, job.path(year, src, t)) for t in job.tiles], job.grid, nb, "float32")
        agg = warp_mosaic(vrt, list(range(1, nb + 1)), m.coarse_grid_, Resampling.average)
        if kind == "lst":
            agg = np.where(agg > 0, agg.astype("float64"), np.nan) ** 0.25 - KELVIN_AT_0_DEGC
        _dump(out, m.residual_basis(agg, info["cover"]))
    return str(out)


def _corrected(job: Job, year: int, kind: str, tile: Tile, model_path: str, basis_path: str | None) -> tuple:
    m = _load(model_path)["model"]
    pred = read_tile(job.path(year, f"{kind}_pred", tile))
    if basis_path is not None:
        m.add_residual(pred, _load(basis_path), job.grid, tile.window)
    if m.keep_gaps:
        m.mask_gaps(pred, job.grid, tile.window)
    return m, pred.astype("float32", copy=False)


def ndvi_final_tile(
    job: Job, year: int, tile: Tile, model_path: str, basis_path: str | None, clim_step: str, anom: float, _pred: str
) -> str:
    """T: the tile's 30 m NDVI (model + residual; clear Landsat kept, clipped) and the LST forest's predictors."""
    out = job.path(year, "ndvi30", tile)
    fit = job.path(year, "lst_fit", tile)
    if out.exists() and fit.exists():
        return str(out)
    with _task():
        _, pred = _corrected(job, year, "ndvi", tile, model_path, basis_path)
        ndvi30 = pred[0]
        raw, _ = _landsat_tile(job, year, tile, clim_step, anom)
        if job.params.ndvi_fusion:
            ndvi30 = np.where(np.isfinite(raw), raw, ndvi30)
        ndvi30 = np.clip(ndvi30, -0.2, 1.0).astype("float32")
        terr = read_tile(job.path(None, "terrain", tile))
        _write_fit_features(job, fit, tile, np.concatenate([terr, ndvi30[None]]))
        write_tile(out, ndvi30, job.grid, tile)
    return str(out)


#: Bands of a year's ``ddt`` tile (the season's products before the freezing index is assembled).
TILE_BANDS = ("ddt", "ddt_sd", "n_obs", "clear", "ddf_spring", "ddf_autumn")


def lst_final_tile(job: Job, year: int, tile: Tile, model_path: str, basis_path: str | None, _pred: str) -> str:
    """T: the tile's 30 m LST (model + rank-2 residual, gaps kept) -> :data:`TILE_BANDS`."""
    from gee_alt.engines.local.season import fine_products

    out = job.path(year, "ddt", tile)
    if out.exists() and (not job.keep_lst or job.path(year, "lst30", tile).exists()):
        return str(out)
    with _task():
        m, lst30 = _corrected(job, year, "lst", tile, model_path, basis_path)
        fp = fine_products(lst30, m.oob_rmse_, _load(model_path)["plan"], job.grid, window=tile.window)
        if job.keep_lst:
            write_tile(job.path(year, "lst30", tile), lst30, job.grid, tile)
        write_tile(out, np.stack([np.asarray(fp[k], "float32") for k in TILE_BANDS]), job.grid, tile)
    return str(out)


def year_bands(job: Job, year: int, tile: Tile, has_winter: bool) -> tuple[list[str], np.ndarray]:
    """The DDT COG's bands of a tile (names, float32 stack): DDT, DDT sd, n_obs, the freezing
    index (autumn half of the year before, from its tile when the run has that year, plus this
    year's spring half; only with a cold season) and the clear-sky fraction."""
    from gee_alt.cube import CLEAR_VAR, DDF_VAR, DDT_SD_VAR, DDT_VAR, NOBS_VAR
    from gee_alt.engines.local.season import freezing_season_ddf

    a = dict(zip(TILE_BANDS, read_tile(job.path(year, "ddt", tile)), strict=True))
    names, bands = [DDT_VAR, DDT_SD_VAR, NOBS_VAR], [a["ddt"], a["ddt_sd"], a["n_obs"]]
    if has_winter:
        before = None
        if year - 1 in job.years:
            before = read_tile(job.path(year - 1, "ddt", tile))[TILE_BANDS.index("ddf_autumn")]
        names.append(DDF_VAR)
        bands.append(freezing_season_ddf(a["ddf_spring"], before, a["ddf_autumn"]))
    names.append(CLEAR_VAR)
    bands.append(a["clear"])
    return names, np.stack(bands).astype("float32")


def ddt_year(job: Job, year: int, lst_model: str, _ddt: list, method: str, engine: str, synthetic: bool) -> str:
    """C: the year's DDT COG from its tiles (streamed through a VRT; the bytes of the in-memory writer)."""
    with _task():
        info = _load(lst_model)
        plan = info["plan"]
        names = None
        for t in job.tiles:
            names, stack = year_bands(job, year, t, plan.has_winter)
            write_tile(job.path(year, "ddtcog", t), stack, job.grid, t)
        vrt = job.path(year, "ddtcog", ext=".vrt")
        write_mosaic(vrt, [(t, job.path(year, "ddtcog", t)) for t in job.tiles], job.grid, len(names), "float32")
        return str(
            runs.write_ddt_year_from(
                job.run,
                year,
                vrt,
                engine=engine,
                method=method,
                season=info["season"],
                synthetic=synthetic,
                band_names=names,
                extra_tags={
                    "frost_number_min": f"{job.params.frost_number_min:g}",
                    **tags_of(job.params.frost_number_method, job.params.frost_number_years),
                    **runs.permafrost_rule_tags(job.params.permafrost_criterion, job.params.permafrost_shift_weights),
                },
                ddt_fraction_by_doy=plan.fraction_by_doy,
            )
        )


# ------------------------------------------------------------------------------- the graph
@dataclass
class YearDone:
    """A finished year as the driver sees it: the DDT COG, the season and the 30 m NDVI tiles."""

    year: int
    ddt_path: Path
    season: str
    ndvi_tiles: list[Path]


def run_tiled(
    job: Job,
    client,
    *,
    skip_years=(),
    on_year_done: Callable[[YearDone], None] | None = None,
    tile_progress: Callable[[int], None] | None = None,
    method: str = "",
    engine: str = "local",
    synthetic: bool = False,
) -> list[YearDone]:
    """Submit the tasks of every year not in ``skip_years`` to the Dask ``client`` and wait;
    ``on_year_done`` is called (in the driver, as years finish) once a year's COG is written,
    ``tile_progress(1)`` once per finished tile-year."""
    from distributed import as_completed

    runs.drop_other_work(job.run, job.tile_px)
    tiles = job.tiles
    todo = [y for y in job.years if y not in set(skip_years)]
    if not todo:
        return []
    sub = functools.partial(client.submit, pure=False)
    terr = [sub(terrain_tile, job, t, key=f"terrain-{t.name}", priority=100) for t in tiles]
    flags = [sub(climate_tile, job, t, key=f"clim-{t.name}", priority=100) for t in tiles]
    clim = sub(climate_final, job, flags, terr, key="clim-final", priority=100)
    lst_clim = sub(lst_climatology_of_run, job, key="lst-clim", priority=100)
    finals, cogs, keep = {}, {}, [terr, flags, clim, lst_clim]
    lfin_of: dict[int, list] = {}
    for i, y in enumerate(todo):
        pr = -i  # earlier years first: each year's COG streams out as soon as it can
        anom = sub(landsat_anomaly, job, y, clim, key=f"anomaly-{y}", priority=pr)
        feats = [
            sub(ndvi_features_tile, job, y, t, clim, anom, key=f"ndvi-fit-{y}-{t.name}", priority=pr) for t in tiles
        ]
        nmodel = sub(fit_forest, job, y, "ndvi", feats, key=f"ndvi-forest-{y}", priority=pr)
        npred = [
            sub(predict_tile, job, y, "ndvi", t, nmodel, clim, anom, key=f"ndvi-model-{y}-{t.name}", priority=pr)
            for t in tiles
        ]
        nbasis = (
            sub(residual, job, y, "ndvi", nmodel, npred, key=f"ndvi-residual-{y}", priority=pr)
            if job.params.residual_correction
            else None
        )
        nfin = [
            sub(ndvi_final_tile, job, y, t, nmodel, nbasis, clim, anom, p, key=f"ndvi30-{y}-{t.name}", priority=pr)
            for t, p in zip(tiles, npred, strict=True)
        ]
        lmodel = sub(fit_forest, job, y, "lst", nfin, lst_clim, key=f"lst-forest-{y}", priority=pr)
        lpred = [
            sub(predict_tile, job, y, "lst", t, lmodel, clim, anom, key=f"lst-model-{y}-{t.name}", priority=pr)
            for t in tiles
        ]
        lbasis = (
            sub(residual, job, y, "lst", lmodel, lpred, key=f"lst-residual-{y}", priority=pr)
            if job.params.residual_correction
            else None
        )
        lfin = [
            sub(lst_final_tile, job, y, t, lmodel, lbasis, p, key=f"ddt-{y}-{t.name}", priority=pr)
            for t, p in zip(tiles, lpred, strict=True)
        ]
        lfin_of[y] = lfin
        deps = lfin + lfin_of.get(y - 1, [])  # the freezing index needs the year before's tiles
        cog = sub(ddt_year, job, y, lmodel, deps, method, engine, synthetic, key=f"ddt-cog-{y}", priority=pr + 1)
        keep += [anom, feats, nmodel, npred, nbasis, nfin, lmodel, lpred, lbasis]
        finals.update({f.key: f for f in lfin})
        cogs[cog.key] = (y, cog, lmodel)
    done: list[YearDone] = []
    watched = list(finals.values()) + [c for _, c, _ in cogs.values()]
    try:
        for fut in as_completed(watched, loop=client.loop):
            if fut.status == "error":
                fut.result()  # raises the task's exception here
            if fut.key in finals:
                if tile_progress:
                    tile_progress(1)
                continue
            y, _, lmodel = cogs[fut.key]
            yd = YearDone(
                y, Path(fut.result()), _load(lmodel.result())["season"], [job.path(y, "ndvi30", t) for t in tiles]
            )
            done.append(yd)
            if on_year_done:
                on_year_done(yd)
    except BaseException:
        client.cancel(watched)
        raise
    finally:
        del keep
        drop_caches()
    return done


def clean_year(job: Job, year: int, keep: tuple[str, ...] = ("ndvi30",)) -> None:
    """Remove a finished year's scratch except the steps in ``keep`` (the 30 m NDVI: the run's NDVI mean)."""
    d = runs.work_path(job.run, job.tile_px, year, "x").parent
    if d.is_dir():
        for p in d.iterdir():
            if p.name not in keep:
                shutil.rmtree(p) if p.is_dir() else p.unlink()


def cpu_count() -> int:
    return os.cpu_count() or 1
