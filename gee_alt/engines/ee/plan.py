"""The offline run plan: every year's graph built without credentials or network.

:func:`build_plan` initialises ``ee`` against the shipped algorithm catalog
(:mod:`gee_alt.engines.ee.offline`), builds each year's DDT graph (so a wrong algorithm or argument
name fails here, not after hours on the server), hashes it (sha256 of
``ee.serializer.toJSON``), and reports the AOI, grid, years, collections and bands, forest
settings (shared names and the ``smileRandomForest`` arguments they map to), EE sampling,
request count and bytes, outputs, and which years an existing run already holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gee_alt import runs
from gee_alt.config import StudyConfig
from gee_alt.engines.ee import collections as col
from gee_alt.engines.ee import composite, pull, thaw
from gee_alt.engines.ee.offline import offline_ee
from gee_alt.engines.ee.sharpen import HOLDOUT_FRACTION, RIDGE_LAMBDA, smile_random_forest_arguments
from gee_alt.io import write_text_atomic


def year_inputs(cfg: StudyConfig, year: int) -> dict:
    """The collections and bands a year's graph reads (plain data)."""
    thaw_start, thaw_end = composite.season_bounds(year, cfg.season.thaw_start, cfg.season.thaw_end)
    grow_start, grow_end = composite.season_bounds(year, cfg.season.growing_start, cfg.season.growing_end)
    missions = col.landsat_missions_for(cfg.collections.landsat, grow_start, grow_end)
    return {
        "thaw_season": [thaw_start, thaw_end],
        "growing_season": [grow_start, grow_end],
        "lst": {
            "collections": col.lst_collection_ids(cfg.collections.lst, thaw_start, thaw_end),
            "bands": ["LST_Day_1km", "LST_Night_1km", "QC_Day", "QC_Night", "Day_view_time", "Night_view_time"],
            "windows": len(
                composite.lst_windows(year, cfg.season.thaw_start, cfg.season.thaw_end, cfg.season.lst_step_days)
            ),
        },
        "modis_ndvi": {
            "collection": cfg.collections.ndvi,
            "bands": ["NDVI", "SummaryQA"]
            if cfg.collections.ndvi == col.MOD13Q1
            else ["sur_refl_b01", "sur_refl_b02", "QC_250m"],
        },
        "landsat": [
            {"collection": m.collection_id, "mission": m.name, "red": m.red, "nir": m.nir, "thermal": m.thermal}
            for m in missions
        ],
        "dem": {"choice": cfg.collections.dem, "asset": col.DEM_SOURCES[cfg.collections.dem][0]},
    }


def year_path(cfg: StudyConfig, year: int, grid) -> dict:
    """How a year is computed and why: ``path`` (``interactive``/``batch``), ``why``, and the
    estimate it rests on (30 m pixels, forests, forest-pixels, bytes pulled)."""
    w, h = grid["shape_2d"]
    px = w * h
    if cfg.ee_run.sharpen == "local":
        return {
            "path": "interactive",
            "why": "--sharpen local: composites only (no forest on the server), small inputs pulled with computePixels",
            "pixels_30m": px,
            "forests": {"at_30m": 0, "holdout": 0},
            "forest_px": 0,
        }
    forests = thaw.forests_per_year(cfg, year)
    fpx = px * forests["at_30m"]
    limit = cfg.ee_run.interactive_max_forest_px
    if cfg.ee_run.path != "auto":
        path, why = cfg.ee_run.path, f"ee_run.path = {cfg.ee_run.path}"
    elif fpx > limit:
        path = "batch"
        why = (
            f"{px:,} px x {forests['at_30m']} forests at 30 m = {fpx:,} > ee_run.interactive_max_forest_px "
            f"{limit:,}: one Export.image.toAsset task (batch limits), then a pull of the stored asset"
        )
    else:
        path = "interactive"
        why = f"{px:,} px x {forests['at_30m']} forests at 30 m = {fpx:,} <= {limit:,}: computePixels tiles via xee"
    return {"path": path, "why": why, "pixels_30m": px, "forests": forests, "forest_px": fpx}


def pulled_with(out_dir: str | Path, year: int) -> str | None:
    """The graph sha256 a run's ``ddt_YYYY.tif`` was pulled with (its ``graph_sha256`` tag), or ``None``."""
    import rasterio

    p = runs.ddt_path(out_dir, year)
    if not p.is_file():
        return None
    with rasterio.open(p) as src:
        return src.tags().get("graph_sha256")


def smile_arguments_per_forest(cfg: StudyConfig) -> dict:
    """The ``smileRandomForest`` arguments of the NDVI and the LST forest (``rf`` mapped onto
    their predictors; see :func:`gee_alt.engines.ee.sharpen.smile_random_forest_arguments`)."""
    n = cfg.ee_sampling.num_samples
    return {
        "ndvi": smile_random_forest_arguments(
            cfg.rf, len(thaw.NDVI_PREDICTORS), cfg.rf.random_state + thaw.NDVI_SEED_OFFSET, n
        ),
        "lst": smile_random_forest_arguments(
            cfg.rf, len(thaw.LST_PREDICTORS), cfg.rf.random_state + thaw.LST_SEED_OFFSET, n
        ),
    }


def build_plan(
    cfg: StudyConfig,
    out_dir: str | Path | None = None,
    emit_graphs: str | Path | None = None,
    request_byte_limit: int = pull.REQUEST_BYTE_LIMIT,
) -> dict:
    """Build every year's graph offline and return the plan (JSON-ready dict).

    ``out_dir``: an existing run whose finished years (same graph hash) would be skipped.
    ``emit_graphs``: a folder to write ``graph_YYYY.json`` (the DDT image) and
    ``validation_YYYY.json`` (the Landsat-vs-LST statistics) into.
    """
    import ee

    from gee_alt.engines.ee import validate

    grid = cfg.grid()
    chunks = pull.io_chunks_for(grid, len(pull.LAYERS), request_byte_limit)
    n_req = pull.requests_per_year(grid, chunks)
    n_bytes = pull.bytes_per_year(grid)
    years, skipped = {}, []
    with offline_ee():
        for year in cfg.year_list():
            fields = thaw.year_fields(cfg, year, grid)
            image = thaw.ddt_image(cfg, year, grid, fields=fields)
            graph = ee.serializer.toJSON(image)
            ghash = hashlib.sha256(graph.encode("utf-8")).hexdigest()
            done = bool(out_dir) and pulled_with(out_dir, year) == ghash
            if done:
                skipped.append(year)
            if emit_graphs:
                write_text_atomic(Path(emit_graphs) / f"graph_{year}.json", graph)
                write_text_atomic(
                    Path(emit_graphs) / f"validation_{year}.json",
                    ee.serializer.toJSON(validate.validation_sums(cfg, year, grid, fields=fields)),
                )
            years[str(year)] = {
                **year_inputs(cfg, year),
                **year_path(cfg, year, grid),
                "bytes": n_bytes,
                "graph_sha256": ghash,
                "graph_bytes": len(graph),
                "output": runs.ddt_path("", year).as_posix(),
                "skip": done,
            }
    to_pull = [int(y) for y, v in years.items() if not v["skip"]]
    return {
        "study": cfg.name,
        "config": cfg.source,
        "engine": "ee",
        "aoi": {"bbox_lonlat": list(cfg.bbox), "geometry": cfg.aoi_geometry},
        "grid": {
            "crs": grid["crs"],
            "crs_transform": list(grid["crs_transform"]),
            "shape_2d": list(grid["shape_2d"]),
            "scale_m": cfg.scale_m,
        },
        "years": cfg.year_list(),
        "years_to_pull": to_pull,
        "skipped_years": skipped,
        "sharpen": cfg.ee_run.sharpen,
        "paths": {p: [int(y) for y, v in years.items() if v["path"] == p] for p in ("interactive", "batch")},
        "rf": {
            **cfg.rf.model_dump(),
            "output_mode": "REGRESSION",
            "trend": f"ridgeRegression lambda {RIDGE_LAMBDA} on predictors scaled 0..1, forest on its residuals",
            "error": f"hold-out RMSE ({HOLDOUT_FRACTION:.0%} fold, same settings) as DDT sd",
            "smile_random_forest": smile_arguments_per_forest(cfg),
        },
        "ee_run": cfg.ee_run.model_dump(),
        "ee_sampling": {
            **cfg.ee_sampling.model_dump(),
            "max_pixels_1km": thaw.max_pixels_for(cfg, grid, thaw.MODIS_1KM_SCALE_M),
            "max_pixels_250m": thaw.max_pixels_for(cfg, grid, thaw.MODIS_250M_SCALE_M),
            "ndvi_sample_scale_m": thaw.MODIS_250M_SCALE_M,
            "lst_sample_scale_m": thaw.MODIS_1KM_SCALE_M,
        },
        "season": cfg.season.model_dump(),
        "qa": cfg.qa.model_dump(),
        "requests": {
            "io_chunks": chunks,
            "request_byte_limit": request_byte_limit,
            "per_year": n_req,
            "total": n_req * len(to_pull),
            "max_concurrent": cfg.pull.max_workers,
        },
        "bytes": {"per_year": n_bytes, "total": n_bytes * len(to_pull)},
        "outputs": {
            "dir": str(out_dir) if out_dir else None,
            "files": [v["output"] for v in years.values()],
            "bands": list(pull.LAYERS),
        },
        "graphs_dir": str(emit_graphs) if emit_graphs else None,
        "per_year": years,
    }


from gee_alt.engines.ee.thaw import year_images  # noqa: E402,F401  (re-exported for the notebook)
