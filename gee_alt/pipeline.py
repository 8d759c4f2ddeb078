"""Orchestration: one pipeline for both engines, the demo, and the single-step commands.

:func:`run` is the whole method for any :class:`~gee_alt.engines.Engine`: checks before any
output, the run directory (fresh or resumed), the engine's DDT cube, then the shared
downstream — calibration, ALT, trend, NetCDF, STAC, report, manifest — on objects handed from
step to step. :func:`run_demo` does the same on the synthetic demo scene and scores every
stage against its truth. The single-step functions (:func:`calibrate_run`, :func:`alt_run`,
:func:`trend_run`) rebuild the objects from the run directory and call the same downstream.

Progress is reported through a factory ``progress(description, total) -> advance(n)`` so this
module stays free of UI code.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gee_alt import downstream, memory, runs
from gee_alt.cube import grid_of, validate_ddt_cube
from gee_alt.engines import Engine, EngineOutput, ProgressFactory, no_progress
from gee_alt.errors import GeeAltError, IncompleteRunError
from gee_alt.io import write_json_atomic
from gee_alt.memory import gdal_cache_mb, release_freed_memory


@dataclass
class RunResult:
    """What a run produced, in memory: the engine's output, the calibration, ALT and trend maps."""

    run: Path
    engine: EngineOutput
    calibration: downstream.Calibrated
    alt: downstream.AltMaps
    trend: downstream.TrendMaps | None
    validation: dict = field(default_factory=dict)

    @property
    def years(self) -> list[int]:
        return self.alt.years

    def view(self):
        """The run's maps as a :class:`~gee_alt.viz.runview.RunView` (for the report; nothing is re-read)."""
        from gee_alt.viz.runview import RunView

        t = self.trend
        return RunView.from_maps(
            self.run,
            self.alt.grid,
            self.alt.years,
            self.alt.alt_m,
            self.alt.alt_sd_m,
            _ddt_stack(self.run, self.alt.years, self.alt.alt_m.shape[1:]),
            None if t is None else t.slope_cm_per_yr,
            None if t is None else t.p_value,
        )


def _ddt_stack(run: Path, years: list[int], shape_yx):
    """The DDT band of the run's yearly DDT COGs, decoded a year at a time (for the report)."""
    from gee_alt.io import RasterStack

    return RasterStack([runs.ddt_path(run, y) for y in years], shape_yx)


@contextlib.contextmanager
def removed_on_user_error(out: Path, fresh: bool) -> Iterator[None]:
    """A run directory this command created is removed again when a user error stops the run
    (bad input leaves no partial output); an interrupted run being resumed is kept."""
    try:
        yield
    except IncompleteRunError:
        raise  # its products and resume record are kept: a rerun retries the missing years
    except GeeAltError:
        if fresh:
            shutil.rmtree(out, ignore_errors=True)
        raise


def read_insitu_for(engine: Engine, insitu_csv: str | Path | None):
    """The in-situ table inside the engine's grid (read before any output is written)."""
    from gee_alt.insitu.table import read_insitu

    if insitu_csv is None:
        raise GeeAltError(
            f"no in-situ table: pass --insitu CSV (or put {runs.INSITU_CSV} in the local input directory)"
        )
    return read_insitu(insitu_csv, bbox=engine.bbox_lonlat())


def run(
    out: str | Path,
    engine: Engine,
    insitu_csv: str | Path | None,
    *,
    overwrite: bool = False,
    interrupted: str = "resume",
    progress: ProgressFactory = no_progress,
    seed: int = 0,
    on_resume: Callable[[list, list], None] | None = None,
    command: str = "run",
    permafrost_map: str | Path | None = None,
    disturbance: str | Path | None = None,
) -> RunResult:
    """The whole method on ``engine``: checks, run directory, DDT cube, calibration, ALT, trend,
    NetCDF, STAC, report and manifest. Returns the products in memory.

    An interrupted run in ``out`` is resumed (``interrupted="resume"``): finished years are not
    recomputed and the result is byte-identical to an uninterrupted run; ``on_resume(done,
    todo)`` is told which years were kept. A user error in a fresh run removes ``out`` again.
    """
    engine.preflight()
    table = read_insitu_for(engine, insitu_csv)
    if permafrost_map is not None:  # checked before anything is computed or written
        from gee_alt.permafrost_map import check_permafrost_map

        check_permafrost_map(permafrost_map)
    if disturbance is not None:  # MINES checked before anything is computed or written
        from gee_alt.science.disturbance import check_disturbance_file

        check_disturbance_file(disturbance)
    out, resume = runs.prepare_run_dir(out, overwrite, interrupted=interrupted)
    with removed_on_user_error(out, fresh=not resume):
        return execute(
            out,
            engine,
            table,
            resume=resume,
            progress=progress,
            seed=seed,
            on_resume=on_resume,
            command=command,
            permafrost_map=permafrost_map,
            disturbance=disturbance,
        )


def execute(
    out: Path,
    engine: Engine,
    table,
    *,
    resume: bool = False,
    progress: ProgressFactory = no_progress,
    seed: int = 0,
    on_resume: Callable[[list, list], None] | None = None,
    command: str = "run",
    before_report: Callable[[RunResult], None] | None = None,
    permafrost_map: str | Path | None = None,
    disturbance: str | Path | None = None,
) -> RunResult:
    """Run ``engine`` into the prepared run directory ``out`` and the whole downstream.

    ``permafrost_map``: a user permafrost map (:mod:`gee_alt.permafrost_map`) that replaces the
    frost-number criterion.

    ``before_report(result)`` runs after the products and before the report, e.g. to score a
    demo run against its synthetic truth (written into ``validation.json``, which the report shows).
    """
    from gee_alt.viz.report import write_report

    out = Path(out)
    settings = engine.settings()
    record = runs.Progress(out, settings)
    done = record.start(resume)
    if resume:
        runs.clean_for_resume(out, {y for y in done if isinstance(y, int)})
    if on_resume and done:
        years = [int(y) for y in settings.get("years", [])]
        on_resume(sorted(y for y in done if isinstance(y, int)), [y for y in years if y not in done])
    produced = engine.produce(out, record, progress)
    # whatever the engine, the downstream gets the one schema; a lazily backed cube is read through:
    # GDAL's cache bounded as in the downstream (at the process's 256 MB it would keep that much of
    # the DDT COGs' blocks at the full study grid)
    with gdal_cache_mb(DOWNSTREAM_GDAL_CACHE_MB):
        validate_ddt_cube(produced.cube)
    # the engine's tile arrays and the blocks the validation read: back to the OS before the downstream
    release_freed_memory(gdal_blocks=True)
    result = finish_downstream(
        out, produced, table, progress=progress, seed=seed, permafrost_map=permafrost_map, disturbance=disturbance
    )
    if produced.validation or produced.missing_years:
        val = runs.read_json(out, runs.VALIDATION) or {}
        val.update(produced.validation)
        if produced.missing_years:
            val["missing_years"] = {str(y): r for y, r in sorted(produced.missing_years.items())}
        write_json_atomic(out / runs.VALIDATION, val)
    if before_report:
        before_report(result)
    adv = progress("Report and manifest", 1)
    write_report(out, synthetic=engine.synthetic, view=result.view())
    if produced.missing_years:
        missing = produced.missing_years
        first = next(iter(sorted(missing.items())))
        raise IncompleteRunError(
            f"run incomplete: {len(missing)} of {len(missing) + len(result.years)} year(s) missing "
            f"({', '.join(map(str, sorted(missing)))}; {first[0]}: {first[1]}); the products in {out} cover "
            f"{', '.join(map(str, result.years))}; rerun the same command to retry only the missing years"
        )
    record.clear()
    runs.write_manifest(out, settings={"command": command, **{k: v for k, v in settings.items() if k != "input_files"}})
    adv(1)
    return result


def finish_downstream(
    out: Path,
    produced: EngineOutput,
    table,
    *,
    progress: ProgressFactory = no_progress,
    seed: int = 0,
    rows_per_chunk: int = downstream.DOWNSTREAM_ROWS,
    permafrost_map: str | Path | None = None,
    disturbance: str | Path | None = None,
) -> RunResult:
    """Site fields, calibration, ALT (+ STAC), trend and NetCDF from an engine's output.

    The cube is read by site windows (calibration) and row chunks of ``rows_per_chunk`` rows
    (ALT, ALT sd, permafrost, AOA); the trend reads row windows of the written ALT COGs. The same
    bytes whatever ``rows_per_chunk`` (tested)."""
    # GDAL's block cache defaults to 5 % of the RAM, so it would grow with the extent: bound it. The
    # row-chunk stages read each block once (chunks of whole 512-row blocks): a small cache; the
    # trend re-reads a strip of 512 rows of every year's ALT COG (165 MB at the full grid x 25 years)
    with gdal_cache_mb(DOWNSTREAM_GDAL_CACHE_MB):
        return _finish_downstream(
            out,
            produced,
            table,
            progress=progress,
            seed=seed,
            rows_per_chunk=rows_per_chunk,
            permafrost_map=permafrost_map,
            disturbance=disturbance,
        )


#: GDAL block cache (MB) while the downstream's row-chunk stages run, and while the trend runs
DOWNSTREAM_GDAL_CACHE_MB = 64
GDAL_CACHE_MB = memory.GDAL_CACHE_MB


def _finish_downstream(
    out, produced, table, *, progress, seed, rows_per_chunk, permafrost_map=None, disturbance=None
) -> RunResult:
    from gee_alt.export.cog import write_cog

    cube, fields = produced.cube, produced.fields
    grid = grid_of(cube)
    syn = bool(cube.attrs.get("synthetic", 0))
    tags = {"synthetic": int(syn), "engine": cube.attrs.get("engine", "")}
    if fields.dem_m is not None:
        write_cog(
            runs.dem_path(out),
            fields.dem_m,
            grid,
            tags={**tags, "units": "m", "quantity": "elevation"},
            band_descriptions=["elevation_m"],
        )
    if fields.ndvi_mean is not None:
        write_cog(
            runs.ndvi_mean_path(out),
            fields.ndvi_mean,
            grid,
            tags={**tags, "units": "1", "quantity": "mean 30 m NDVI over the run's years"},
            band_descriptions=["ndvi_mean"],
        )
    if fields.landcover is not None:
        write_cog(
            runs.landcover_path(out),
            fields.landcover,
            grid,
            tags={**tags, "units": "class"},
            band_descriptions=["landcover"],
        )
    dstart = None
    if disturbance is not None:  # issue 17 item 5: disturbed ground gets its own E from its start year
        dstart = _store_disturbance(out, disturbance, grid, tags)
    calibrated = downstream.calibrate(
        cube,
        table,
        fields,
        seed=seed,
        insitu_name=Path(table.source_path).name if getattr(table, "source_path", None) else "",
        disturbance_start=dstart,
    )
    if disturbance is not None:
        calibrated.summary["disturbance_file"] = Path(disturbance).name
    pmap = None
    if permafrost_map is not None:  # the user's map replaces the frost-number criterion
        from gee_alt.permafrost_map import PERMAFROST_MAP_TIF, criterion_of_map, read_permafrost_map

        pmap = read_permafrost_map(permafrost_map, grid)
        write_cog(
            Path(out) / PERMAFROST_MAP_TIF,
            pmap,
            grid,
            tags={**tags, "units": "class", "quantity": f"user permafrost map {Path(permafrost_map).name}"},
            band_descriptions=["permafrost_class"],
        )
        criterion = criterion_of_map(permafrost_map, pmap)
    else:
        criterion = downstream.permafrost_criterion(cube, getattr(table, "source_path", ""), seed=seed, fields=fields)
    _set_criterion(calibrated, criterion)
    downstream.write_calibration(out, calibrated)
    release_freed_memory(collect=False)  # the criterion's whole-grid predictors (freed on return)
    fmin = (criterion or {}).get("frost_number_min")
    # issue 17 item 6: area of applicability (aoa.tif, applicability.json); ALT sd inflated outside it.
    # issue 12: ALT, ALT sd, permafrost and the AOA inflation stream over row chunks of the cube.
    from gee_alt.applicability_run import prepare

    presence = None if pmap is not None else downstream.presence_of(criterion, fields, grid)
    mapped = downstream.mapped_years(
        cube,
        calibrated.model,
        fields.landcover,
        fmin,
        permafrost_map=pmap,
        presence=presence,
        rows_per_chunk=rows_per_chunk,
    )
    release_freed_memory(collect=False)
    app = prepare(fields, calibrated, grid, mapped_years=mapped)
    del mapped
    release_freed_memory(collect=False)  # the AOA's whole-grid predictors
    adv = progress("ALT maps", len(cube["year"]))
    maps = downstream.stream_alt(
        out,
        cube,
        calibrated.model,
        calibrated.summary,
        fields.landcover,
        applicability=app,
        frost_number_min=fmin,
        permafrost_map=pmap,
        presence=presence,
        engine=cube.attrs.get("engine", ""),
        season=cube.attrs.get("thaw_season", ""),
        synthetic=syn,
        progress=adv,
        rows_per_chunk=rows_per_chunk,
        disturbance_start=dstart,
    )
    release_freed_memory(collect=False)  # the row chunks' temporaries
    if app is not None:
        app.finish(out, synthetic=syn)
        del app
    release_freed_memory(gdal_blocks=True)
    adv = progress("Trend and NetCDF cube", 2)
    with gdal_cache_mb(GDAL_CACHE_MB):
        trend = (
            downstream.write_trend(out, maps, synthetic=syn, calibration=calibrated.summary)
            if len(maps.years) >= 3
            else None
        )
    adv(1)
    downstream.write_netcdf(out, cube, maps, calibrated.summary)
    maps.close_files()  # the windowed readers are done: later stages read whole years
    release_freed_memory(gdal_blocks=True)
    adv(1)
    return RunResult(out, produced, calibrated, maps, trend, dict(calibrated.validation))


# ---------------------------------------------------------------------------------- demo
def run_demo(
    out: str | Path,
    *,
    years: list[int] | None = None,
    seed: int = 42,
    trees: int = 40,
    size_px: int | str = 512,
    world: str = "realistic",
    warming_degc_per_yr: float | None = None,
    workers: int | None = None,
    tile_px: int | None = None,
    dask_address: str | None = None,
    overwrite: bool = False,
    progress: ProgressFactory = no_progress,
    disturbance: bool = True,
) -> dict:
    """Generate a synthetic world (``realistic`` or ``ideal``, see :mod:`gee_alt.demo.worlds`),
    run the local engine and the whole downstream, and score every stage against the truth. An
    interrupted demo is started over. Returns the validation dict (also in ``validation.json``)."""
    from gee_alt.demo.scoring import DemoScorer
    from gee_alt.demo.worlds import make_world, write_world
    from gee_alt.engines.local.engine import DEFAULT_TILE_PX, LocalEngineParams, default_workers
    from gee_alt.engines.local.runner import LocalEngine
    from gee_alt.science.forest import RandomForestSettings

    years = years or list(range(2000, 2025))
    out, _ = runs.prepare_run_dir(out, overwrite, interrupted="restart")
    with removed_on_user_error(out, fresh=True):
        scene = make_world(
            world,
            seed=seed,
            years=years,
            size_px=size_px,
            warming_degc_per_yr=warming_degc_per_yr,
            tile_px=tile_px or DEFAULT_TILE_PX,
        )
        adv = progress(f"Synthetic {world} world (inputs + truth)", len(years))
        inputs = runs.inputs_dir(out)
        sample = write_world(
            scene, inputs, out / runs.TRUTH_DIR, years, progress=adv, workers=workers or default_workers()
        )
        scorer = DemoScorer(out, scene, sample)
        params = LocalEngineParams(
            rf=RandomForestSettings(n_estimators=trees, random_state=seed),
            workers=workers,
            tile_px=tile_px or DEFAULT_TILE_PX,
            dask_address=dask_address,
        )
        engine = LocalEngine(inputs, years, params, synthetic=True, on_year=scorer.score_year)
        engine.preflight()
        table = read_insitu_for(engine, runs.insitu_csv_path(inputs))
        mines = runs.truth_path(out, "mine") if world == "realistic" and disturbance else None
        result = execute(
            out,
            engine,
            table,
            progress=progress,
            seed=seed,
            command="demo",
            before_report=scorer.finish,
            disturbance=mines if mines is not None and mines.exists() else None,
        )
    return result.validation


# --------------------------------------------------------------------- single-step commands
def run_fields(run: Path, grid) -> downstream.SiteFields:
    """The site-screen rasters a run directory holds (each optional), checked to be on ``grid``."""
    from gee_alt.grid import same_grid
    from gee_alt.io import read_raster

    arrays = {}
    for name, path in (
        ("dem_m", runs.dem_path(run)),
        ("ndvi_mean", runs.ndvi_mean_path(run)),
        ("landcover", runs.landcover_path(run)),
    ):
        if path.exists():
            r = read_raster(path, bands=1)
            if not same_grid(r.grid, grid):
                raise GeeAltError(f"{path} is not on the DDT grid")
            arrays[name] = r.data[0]
    return downstream.SiteFields(**arrays)


def calibrate_run(
    run: str | Path,
    insitu_csv: str | Path,
    *,
    thresholds: dict | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    by_class: bool | str = "auto",
    disturbance: str | Path | None = None,
) -> dict:
    """``gee-alt calibrate``: screen sites and fit E on the run's DDT; writes ``calibration.json``,
    ``insitu_used.csv`` and the in-situ scores in ``validation.json``, with the run's permafrost
    criterion as ``gee-alt run`` decides it (refitted on the drill holes next to ``insitu_csv``;
    kept from the previous calibration when the run has a user permafrost map). Returns the summary."""
    from gee_alt.cube import DDF_VAR
    from gee_alt.insitu.table import read_insitu
    from gee_alt.permafrost_map import PERMAFROST_MAP_TIF

    run = runs.require_run(run, "ddt")
    cube = runs.read_ddt_cube(run, extras=(DDF_VAR,))  # DDF for the frost number of the criterion
    grid = grid_of(cube)
    table = read_insitu(insitu_csv, bbox=downstream.site_bbox_lonlat(grid))
    fields = run_fields(run, grid)
    if by_class is True and fields.landcover is None:
        raise GeeAltError(f"--by-class needs a land-cover raster on the run grid: {runs.landcover_path(run)}")
    dstart = None
    if disturbance is not None:  # kept as RUN/disturbance_start.tif for gee-alt alt
        dstart = _store_disturbance(run, disturbance, grid, {"synthetic": int(bool(cube.attrs.get("synthetic", 0)))})
    cal = downstream.calibrate(
        cube,
        table,
        fields,
        thresholds=thresholds,
        n_boot=n_boot,
        seed=seed,
        by_class=by_class,
        insitu_name=Path(insitu_csv).name,
        disturbance_start=dstart,
    )
    if disturbance is not None:
        cal.summary["disturbance_file"] = Path(disturbance).name
    if (Path(run) / PERMAFROST_MAP_TIF).exists():  # the user's map decides, as in the run
        criterion = (runs.read_json(run, runs.CALIBRATION) or {}).get("permafrost_criterion")
    else:
        criterion = downstream.permafrost_criterion(cube, insitu_csv, seed=seed, fields=fields)
    _set_criterion(cal, criterion)
    downstream.write_calibration(run, cal)
    return cal.summary


def _set_criterion(calibrated, criterion: dict | None) -> None:
    """Record the run's permafrost criterion in the calibration summary and the validation."""
    if criterion is not None:
        calibrated.summary["permafrost_criterion"] = criterion
        calibrated.validation["permafrost_criterion"] = criterion


def alt_run(
    run: str | Path, *, progress: ProgressFactory = no_progress, disturbance: str | Path | None = None
) -> list[Path]:
    """``gee-alt alt``: yearly ALT, ALT sd, permafrost and STAC items from the run's DDT and
    calibration, streamed in row chunks as ``gee-alt run`` does, with the same area of
    applicability (``aoa.tif``, ``applicability.json``; ALT sd inflated outside it) when the run
    has a DEM and the in-situ rows the calibration used (``insitu_used.csv``)."""
    from types import SimpleNamespace

    from gee_alt.applicability_run import prepare

    run = Path(run)
    model, summary = downstream.load_calibration(run)
    cube = runs.read_ddt_cube(run)
    grid = grid_of(cube)
    fmin = (summary.get("permafrost_criterion") or {}).get("frost_number_min")
    fields = run_fields(run, grid)
    pmap = _run_permafrost_map(run)
    presence = None if pmap is not None else downstream.presence_of(summary.get("permafrost_criterion"), fields, grid)
    syn = bool(cube.attrs.get("synthetic", 0))
    dstart = _run_disturbance(run, model, disturbance, grid)
    app = None
    if (run / runs.INSITU_USED).exists():
        from gee_alt.insitu.table import read_insitu

        calibrated = SimpleNamespace(summary=summary, table=read_insitu(run / runs.INSITU_USED), model=model)
        mapped = downstream.mapped_years(cube, model, fields.landcover, fmin, permafrost_map=pmap, presence=presence)
        app = prepare(fields, calibrated, grid, mapped_years=mapped)
        del mapped
    adv = progress("ALT maps", len(cube["year"]))
    maps = downstream.stream_alt(
        run,
        cube,
        model,
        summary,
        fields.landcover,
        applicability=app,
        frost_number_min=fmin,
        permafrost_map=pmap,
        presence=presence,
        engine=cube.attrs.get("engine", ""),
        season=cube.attrs.get("thaw_season", ""),
        synthetic=syn,
        progress=adv,
        disturbance_start=dstart,
    )
    if app is not None:
        app.finish(run, synthetic=syn)
    paths = []
    for y in maps.years:
        if runs.permafrost_path(run, y).exists():
            paths.append(runs.permafrost_path(run, y))
        paths += [runs.alt_path(run, y), runs.alt_sd_path(run, y)]
    if runs.e_source_path(run).exists():
        paths.append(runs.e_source_path(run))
    return paths


def read_alt_maps(run: str | Path) -> downstream.AltMaps:
    """The run's ALT and ALT sd COGs as :class:`~gee_alt.downstream.AltMaps`."""
    from gee_alt.io import RasterStack, read_raster

    run = runs.require_run(run, "alt")
    years = runs.years_of(run, "alt")
    first = read_raster(runs.alt_path(run, years[0]), bands=1)
    shape = first.data.shape[1:]
    alt = RasterStack([runs.alt_path(run, y) for y in years], shape)
    if all(runs.alt_sd_path(run, y).exists() for y in years):
        sd = RasterStack([runs.alt_sd_path(run, y) for y in years], shape)
    else:
        sd = np.stack(
            [
                read_raster(runs.alt_sd_path(run, y), bands=1).data[0]
                if runs.alt_sd_path(run, y).exists()
                else np.full(shape, np.nan, "float32")
                for y in years
            ]
        )
    frost, fmin, setting = None, 0.5, ("year", 1)
    pf_class = prob = area = None
    if all(runs.permafrost_path(run, y).exists() for y in years):
        import rasterio

        pf_paths = [runs.permafrost_path(run, y) for y in years]
        frost = RasterStack(pf_paths, shape, band=2)
        with rasterio.open(pf_paths[0]) as src:
            fmin = float(src.tags().get("frost_number_min", fmin))
            setting = downstream.frost_setting_of(src.tags())
            if src.count >= 3:  # the presence model decided: class (band 1) and probability (band 3)
                pf_class = RasterStack(pf_paths, shape, band=1)
                prob = RasterStack(pf_paths, shape, band=3)
        if prob is not None and runs.permafrost_area_path(run).exists():
            import json

            area = json.loads(runs.permafrost_area_path(run).read_text())
    return downstream.AltMaps(
        years,
        alt,
        sd,
        first.grid,
        frost_number=frost,
        frost_number_min=fmin,
        permafrost_map=_run_permafrost_map(run),
        frost_setting=setting,
        permafrost_class=pf_class,
        presence_probability=prob,
        presence_area=area,
    )


def _store_disturbance(out: Path, disturbance: str | Path, grid, tags: dict) -> np.ndarray:
    """The MINES file on the run grid (start year, 0 never), kept as ``RUN/disturbance_start.tif``
    so ``gee-alt alt`` maps the same pixel-years."""
    from gee_alt.export.cog import write_cog
    from gee_alt.science.disturbance import read_disturbance

    start, _ = read_disturbance(disturbance, grid)
    write_cog(
        runs.disturbance_start_path(out),
        start.astype("float32"),
        grid,
        tags={**tags, "units": "year", "quantity": f"disturbance start year (0 never) from {Path(disturbance).name}"},
        band_descriptions=["disturbance_start_year"],
    )
    return start


def _run_disturbance(run: Path, model, disturbance: str | Path | None, grid) -> np.ndarray | None:
    """The disturbance start years for ``gee-alt alt``: ``disturbance`` (a MINES file) when given,
    else the run's ``disturbance_start.tif``; an error when the calibration has an E of disturbed
    ground and neither exists."""
    from gee_alt.io import read_raster
    from gee_alt.science.disturbance import check_disturbance_file, read_disturbance

    if disturbance is not None:
        check_disturbance_file(disturbance)
        return read_disturbance(disturbance, grid)[0]
    p = runs.disturbance_start_path(run)
    if p.exists():
        return np.nan_to_num(read_raster(p, bands=1).data[0]).astype("int32")
    if getattr(model, "uses_disturbed_e", False):
        raise GeeAltError(
            f"{run / runs.CALIBRATION} has an E of disturbed ground but the run has no {runs.DISTURBANCE_START}: "
            "give --disturbance MINES"
        )
    return None


def _run_permafrost_map(run: str | Path) -> np.ndarray | None:
    """The user permafrost map a run used (``RUN/permafrost_map.tif``), or None."""
    from gee_alt.io import read_raster
    from gee_alt.permafrost_map import PERMAFROST_MAP_TIF

    p = Path(run) / PERMAFROST_MAP_TIF
    return read_raster(p, bands=1).data[0] if p.exists() else None


def trend_run(run: str | Path, *, mask_geojson: str | Path | None = None, ring_width_px: int = 10) -> dict:
    """``gee-alt trend``: per-pixel ALT trend and area-mean series (optional polygon contrast)."""
    from gee_alt.viz.runview import is_synthetic

    maps = read_alt_maps(run)
    if len(maps.years) < 3:
        raise GeeAltError(f"a trend needs at least 3 years of ALT, the run has {len(maps.years)}; run more years")
    inside = downstream.check_mask(mask_geojson, maps.grid)
    return downstream.write_trend(
        run,
        maps,
        inside=inside,
        ring_width_px=ring_width_px,
        synthetic=is_synthetic(Path(run)),
        calibration=runs.read_json(Path(run), runs.CALIBRATION),
    ).summary
