"""The ``gee-alt`` command line (typer): parse, call, print. Exit 2 + one line on user errors.

Logic lives in :mod:`gee_alt.pipeline` and the science modules; this module only turns
arguments into calls, shows progress (rich, on stderr) and prints results (``--json``: only
JSON on stdout).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from gee_alt import __version__
from gee_alt.errors import GeeAltError, GeeAltWarning

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="30 m permafrost active-layer thickness (ALT) from satellite data.")
insitu_app = typer.Typer(no_args_is_help=True, help="In-situ ALT tables: import and check.")
app.add_typer(insitu_app, name="insitu")

QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or summaries (errors still print).")
JSON = typer.Option(False, "--json", help="Print the results as JSON on stdout (nothing else there).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing output.")
WORKERS = typer.Option(None, "--workers", help="Worker processes for the yearly loop (default: CPUs, at most 4).")


# ------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _progress(quiet: bool) -> Iterator:
    """A progress factory ``(description, total) -> advance(n)`` backed by rich (stderr)."""
    if quiet or not sys.stderr.isatty():      # bars only for people watching a terminal
        yield lambda description, total: (lambda n=1: None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=False) as prog:
        def factory(description: str, total: int):
            task = prog.add_task(description, total=total)
            return lambda n=1: prog.advance(task, n)
        yield factory


def _echo_json(obj) -> None:
    from gee_alt.io import _jsonable

    typer.echo(json.dumps(_jsonable(obj), indent=2, sort_keys=True))


def _check_output_file(out: Path, overwrite: bool) -> Path:
    """Fail before any work when ``out`` exists (without --overwrite) or its folder cannot be written."""
    out = Path(out)
    if out.is_dir():
        raise GeeAltError(f"{out} is a directory; give a file name")
    if out.exists() and not overwrite:
        raise GeeAltError(f"{out} exists; pass --overwrite to replace it")
    parent = out.parent
    for p in [parent, *parent.parents]:
        if p.exists():
            if not p.is_dir():
                raise GeeAltError(f"cannot write {out}: {p} is a file, not a folder")
            if not os.access(p, os.W_OK):
                raise GeeAltError(f"cannot write {out}: {p} is not writable")
            break
    return out


def _run_entries() -> set[str]:
    from gee_alt import runs

    return {"inputs", "truth", "ddt", "alt", "trend", "report", runs.MANIFEST, runs.CALIBRATION,
            runs.VALIDATION, runs.INSITU_USED, runs.CUBE_NC, "ndvi_mean.tif", "landcover.tif", "dem.tif",
            runs.RESUME_DIR}


def _foreign_entries(out: Path) -> list[str]:
    """Names in ``out`` that a gee-alt run does not write (temporaries of interrupted writes are ours)."""
    known = _run_entries()
    return sorted(p.name for p in out.iterdir() if p.name not in known and not p.name.startswith(".tmp-"))


def _check_input_file(path: Path, what: str) -> Path:
    """An input file that must exist and be a file."""
    path = Path(path)
    if not path.exists():
        raise GeeAltError(f"{what} not found: {path}")
    if path.is_dir():
        raise GeeAltError(f"{what} {path} is a directory, not a file; give the file")
    return path


def _prepare_out_dir(out: Path, overwrite: bool, *, interrupted: str = "refuse") -> tuple[Path, bool]:
    """The run directory, checked before any work; returns ``(out, resume)``.

    A completed run (``manifest.json``) or any other non-empty folder is refused unless
    ``--overwrite`` (then a gee-alt run directory is removed; foreign files are never
    deleted). An interrupted run (gee-alt files, no manifest) is, by ``interrupted``:
    ``"resume"`` -> kept and continued (``resume`` True), ``"restart"`` -> removed, ``"refuse"``.
    """
    from gee_alt import runs

    out = Path(out)
    resume = False
    if out.exists() and not out.is_dir():
        raise GeeAltError(f"--out {out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        foreign = _foreign_entries(out)
        completed = (out / runs.MANIFEST).exists()
        if foreign:
            what = "are not from a gee-alt run"
            raise GeeAltError(f"{out} holds files that {what} ({', '.join(foreign[:3])}); "
                              "refusing to use it, choose another --out")
        if overwrite or (not completed and interrupted == "restart"):
            shutil.rmtree(out)
        elif completed:
            raise GeeAltError(f"{out} holds a completed run; pass --overwrite to replace it or choose another --out")
        elif interrupted == "resume":
            resume = True
        else:
            raise GeeAltError(f"output directory {out} is not empty; pass --overwrite to replace it or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".tmp-write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise GeeAltError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out, resume


@contextlib.contextmanager
def _removed_on_user_error(out: Path, fresh: bool) -> Iterator[None]:
    """A run directory this command created is removed again when a user error stops the run
    (bad input leaves no partial output); an interrupted run being resumed is kept."""
    try:
        yield
    except GeeAltError:
        if fresh:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _finish_run(out: Path, settings: dict, *, synthetic: bool, extra: dict | None = None, quiet: bool = True) -> dict:
    """Report (when the report module is present), NetCDF cube, manifest."""
    from gee_alt import runs

    from gee_alt.viz.report import write_report

    written = {"report": str(write_report(out, synthetic=synthetic, extra=extra))}
    runs.clear_progress(out)          # complete: the resume record is no longer needed
    runs.write_manifest(out, settings=settings)
    return written


# ------------------------------------------------------------------------------ commands
@app.command()
def info() -> None:
    """Print the package version and the versions of the libraries it runs on."""
    import numpy, rasterio, sklearn, xarray

    typer.echo(f"gee-alt {__version__}")
    for mod in (numpy, xarray, sklearn, rasterio):
        typer.echo(f"  {mod.__name__} {mod.__version__}")
    typer.echo(f"  GDAL {rasterio.__gdal_version__}")
    try:
        import ee, xee  # noqa: F401

        typer.echo(f"  earthengine-api {ee.__version__}")
    except ImportError:
        typer.echo("  earthengine-api not installed")


@app.command()
def demo(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
    years: str = typer.Option("2000-2024", help="Years, e.g. 2000-2024 or 2005,2010."),
    seed: int = typer.Option(42, help="Seed of the synthetic scene and of the forests."),
    trees: int = typer.Option(40, help="Trees per random forest."),
    size: int = typer.Option(512, help="Width/height of the 30 m demo window in pixels (multiple of 4, 128-2048)."),
    workers: Optional[int] = WORKERS,
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
    as_json: bool = JSON,
) -> None:
    """Run the whole method on the embedded SYNTHETIC demo scene and score every stage against its truth.

    No Earth Engine account or download needed. Writes RUN/ (see README: run directory).
    An interrupted demo (RUN without manifest.json) is removed and started over cleanly;
    a completed one needs --overwrite.
    """
    from gee_alt.pipeline import parse_years, run_demo

    yrs = parse_years(years, lo=2000, hi=2024)
    if size % 4 or not 128 <= size <= 2048:
        raise GeeAltError(f"--size must be a multiple of 4 between 128 and 2048, got {size}")
    if trees < 1:
        raise GeeAltError(f"--trees must be at least 1, got {trees}")
    if workers is not None and workers < 1:
        raise GeeAltError(f"--workers must be at least 1, got {workers}")
    out, _ = _prepare_out_dir(out, overwrite, interrupted="restart")
    with _removed_on_user_error(out, True), _progress(quiet or as_json) as progress:
        validation = run_demo(out, years=yrs, seed=seed, trees=trees, size_px=size, workers=workers, progress=progress)
        _finish_run(out, {"command": "demo", "years": yrs, "seed": seed, "trees": trees, "size_px": size},
                    synthetic=True, extra={"Demo scene against its synthetic truth": validation["truth_table"]})
    if as_json:
        _echo_json(validation)
    elif not quiet:
        _print_demo_summary(out, validation)


def _print_demo_summary(out: Path, v: dict) -> None:
    t = v["truth"]
    typer.echo(f"SYNTHETIC demo scene -> {out}")
    typer.echo(f"  NDVI  RMSE {t['ndvi']['sharpened']['rmse']:.4f} (bilinear {t['ndvi']['bilinear']['rmse']:.4f})")
    typer.echo(f"  LST   RMSE {t['lst_degc']['sharpened']['rmse']:.3f} degC (bilinear {t['lst_degc']['bilinear']['rmse']:.3f}; "
               f"ratio {t['lst_degc']['rmse_ratio']:.2f})")
    typer.echo(f"  DDT   RMSE {t['ddt_degc_days']['rmse']:.1f} degC day, bias {t['ddt_degc_days']['bias']:+.1f}")
    e = t["E"]
    typer.echo(f"  E     {e['estimated']:.5f} [{e['ci95'][0]:.5f}, {e['ci95'][1]:.5f}] vs truth at sites "
               f"{e['truth_at_sites']:.5f} ({100 * e['rel_error_vs_sites']:+.1f} %)")
    typer.echo(f"  ALT   RMSE {t['alt_m']['rmse']:.3f} m, bias {t['alt_m']['bias']:+.3f} m (all pixels, all years)")
    if "alt_trend" in t:
        tr = t["alt_trend"]
        typer.echo(f"  trend {tr['area_mean_cm_per_yr']:+.2f} cm/yr area mean vs truth {tr['truth_area_mean_cm_per_yr']:+.2f} "
                   f"({100 * tr['rel_error_area_mean']:+.0f} %)")
    lo = v["insitu_loo"]
    typer.echo(f"  in-situ leave-one-site-out: RMSE {lo['rmse_m']:.3f} m, bias {lo['bias_m']:+.3f} m, n {lo['n']}")
    typer.echo(f"  report: {out / 'report' / 'report.md'}")


@app.command()
def run(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
    engine: str = typer.Option("local", help="local (your GeoTIFFs) or ee (Google Earth Engine)."),
    inputs: Optional[Path] = typer.Option(None, help="Input directory (local engine; see README: input layout)."),
    insitu: Optional[Path] = typer.Option(None, help="In-situ ALT CSV (site_id, lon, lat, year, alt_m, ...)."),
    config: Optional[Path] = typer.Option(None, help="Study config TOML (ee engine; default: the Datong study)."),
    project: Optional[str] = typer.Option(None, help="Google Cloud project (ee engine; or EE_PROJECT)."),
    key: Optional[Path] = typer.Option(None, help="Service-account key JSON (ee engine; or GEE_ALT_SERVICE_ACCOUNT_KEY)."),
    years: Optional[str] = typer.Option(None, help="Years (local engine), e.g. 2000-2024; default: all available."),
    seed: int = typer.Option(0, help="Seed of the forests (local engine)."),
    trees: int = typer.Option(40, help="Trees per random forest (local engine)."),
    workers: Optional[int] = WORKERS,
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
    as_json: bool = JSON,
) -> None:
    """Map ALT on real inputs: the local engine on your rasters, or the Earth Engine engine.

    An interrupted run (RUN without manifest.json) is resumed: finished years are kept, the
    rest and the later steps are redone. A completed run needs --overwrite.
    """
    from gee_alt import pipeline

    if engine not in ("local", "ee"):
        raise GeeAltError(f"--engine must be 'local' or 'ee', got '{engine}'")
    if insitu is not None:
        _check_input_file(insitu, "in-situ table")
    if engine == "local":
        if inputs is None:
            raise GeeAltError("--engine local needs --inputs DIR (see README: input layout)")
        from gee_alt.engines.local.layout import InputLayout

        layout = InputLayout(inputs)  # validate before touching the output
        yrs = pipeline.parse_years(years) if years else None
        layout.preflight(layout.check_years(yrs) if yrs else layout.years)
        pipeline.check_insitu_for(layout, insitu)
        if trees < 1:
            raise GeeAltError(f"--trees must be at least 1, got {trees}")
        if workers is not None and workers < 1:
            raise GeeAltError(f"--workers must be at least 1, got {workers}")
        out, resume = _prepare_out_dir(out, overwrite, interrupted="resume")

        def said(done, todo):
            if not (quiet or as_json):
                typer.echo(f"resuming {out}: {len(done)} year(s) already done, {len(todo)} to compute", err=True)

        with _removed_on_user_error(out, not resume), _progress(quiet or as_json) as progress:
            res = pipeline.run_local_inputs(inputs, insitu, out, years=yrs, seed=seed, trees=trees, progress=progress,
                                            workers=workers, resume=resume, on_resume=said)
            _finish_run(out, {"command": "run", "engine": "local", "inputs": str(inputs), "seed": seed, "trees": trees},
                        synthetic=False)
        summary = {"run": str(out), "years": res["years"], "calibration": {k: res["calibration"][k]
                   for k in ("E", "E_ci95", "n_used", "n_dropped", "loo")}}
    else:
        from gee_alt.cli.ee_commands import run_ee

        if insitu is None:
            raise GeeAltError("--engine ee needs --insitu CSV to calibrate the Stefan coefficient")
        from gee_alt.config import load_config
        from gee_alt.engines.ee import session

        cfg = load_config(config)                        # checks before touching the output
        pipeline.check_insitu_bbox(insitu, cfg.bbox)
        key_path = session.resolve_key_path(key)
        if key_path is not None:
            session.read_service_account_key(key_path)
        out, resume = _prepare_out_dir(out, overwrite, interrupted="resume")   # EE pulls resume (ddt/manifest_ee.json)
        with _removed_on_user_error(out, not resume):
            cube = run_ee(cfg, project, key, out, progress=not (quiet or as_json))
            cal = pipeline.calibrate(out, insitu)
            pipeline.write_alt(out)
            _finish_run(out, {"command": "run", "engine": "ee", "config": str(config or "default")}, synthetic=False)
        summary = {"run": str(out), "years": [int(y) for y in cube["year"].values],
                   "calibration": {k: cal[k] for k in ("E", "E_ci95", "n_used", "n_dropped", "loo")}}
    if as_json:
        _echo_json(summary)
    elif not quiet:
        c = summary["calibration"]
        typer.echo(f"{out}: {len(summary['years'])} years; E = {c['E']:.5f} [{c['E_ci95'][0]:.5f}, {c['E_ci95'][1]:.5f}], "
                   f"{c['n_used']} rows used, {c['n_dropped']} dropped; LOO RMSE {c['loo']['rmse_m']:.3f} m")


@app.command()
def downscale(
    coarse: Path = typer.Argument(..., help="Coarse raster to sharpen (any CRS; every band is sharpened)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output GeoTIFF on the fine grid (float32, nodata NaN)."),
    dem: Optional[Path] = typer.Option(None, help="Fine DEM (m): defines the grid; adds slope, northness, eastness, illumination."),
    predictor: Optional[List[Path]] = typer.Option(None, "--predictor", "-p", help="Fine predictor raster (repeatable; all on one grid)."),
    seed: int = typer.Option(0, help="Seed of the forest."),
    trees: int = typer.Option(40, help="Trees in the forest."),
    no_residual_correction: bool = typer.Option(False, "--no-residual-correction", help="Do not add back the coarse residual."),
    temperature: bool = typer.Option(False, "--temperature", help="Bands are temperatures in degC: aggregate radiance-like (T^4)."),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
    as_json: bool = JSON,
) -> None:
    """Sharpen a coarse raster to a fine grid with a random forest (a general tool, any rasters)."""
    from gee_alt.engines.local.downscale import downscale_files

    _check_output_file(out, overwrite)
    with _progress(quiet or as_json) as progress:
        res = downscale_files(coarse, out, dem=dem, predictors=list(predictor or []), seed=seed, trees=trees,
                              residual_correction=not no_residual_correction, temperature=temperature, progress=progress)
    if as_json:
        _echo_json(res)
    elif not quiet:
        typer.echo(f"{out}: {res['bands']} band(s) on {res['width']}x{res['height']} px, trained on {res['n_train']} coarse pixels")


@app.command()
def calibrate(
    run_dir: Path = typer.Argument(..., help="Run directory (reads ddt/*.tif)."),
    insitu: Path = typer.Option(..., help="In-situ ALT CSV (site_id, lon, lat, year, alt_m, ...)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    n_boot: int = typer.Option(2000, help="Bootstrap resamples for the confidence interval."),
    dem_std_max: float = typer.Option(15.0, help="Drop sites whose 7x7 DEM std exceeds this (m)."),
    ndvi_std_max: float = typer.Option(0.10, help="Drop sites whose 7x7 NDVI std exceeds this."),
    ddt_cv_max: float = typer.Option(0.10, help="Drop sites whose 7x7 DDT coefficient of variation exceeds this."),
    by_class: str = typer.Option("auto", help="One E per land-cover class (RUN/landcover.tif): auto, yes or no."),
    as_json: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Fit the Stefan coefficient E on in-situ ALT (homogeneity screen, bootstrap CI, cross-validation)."""
    from gee_alt.pipeline import calibrate as do_calibrate

    _check_input_file(insitu, "in-situ table")
    if n_boot < 100:
        raise GeeAltError(f"--n-boot must be at least 100, got {n_boot}")
    modes = {"auto": "auto", "yes": True, "no": False}
    if by_class not in modes:
        raise GeeAltError(f"--by-class must be auto, yes or no, got '{by_class}'")
    cal = do_calibrate(run_dir, insitu, seed=seed, n_boot=n_boot, by_class=modes[by_class],
                       thresholds={"dem_std": dem_std_max, "ndvi_std": ndvi_std_max, "ddt_cv": ddt_cv_max, "min_valid_frac": 0.5})
    keys = ("E", "E_ci95", "E_sd", "n_used", "n_dropped", "loo", "block_cv", "censoring", "E_by_class")
    if as_json:
        _echo_json({k: cal.get(k) for k in keys})
    elif not quiet:
        typer.echo(f"E = {cal['E']:.5f} m (degC day)^-1/2, 95 % CI [{cal['E_ci95'][0]:.5f}, {cal['E_ci95'][1]:.5f}]; "
                   f"{cal['n_used']} rows used, {cal['n_dropped']} dropped")
        lo = cal["loo"]
        typer.echo(f"leave-one-site-out: RMSE {lo['rmse_m']:.3f} m, bias {lo['bias_m']:+.3f} m, MAE {lo['mae_m']:.3f} m, "
                   f"R2 {lo['r2']:.2f}, n {lo['n']}")


@app.command()
def alt(
    run_dir: Path = typer.Argument(..., help="Run directory (reads ddt/*.tif and calibration.json)."),
    quiet: bool = QUIET,
    as_json: bool = JSON,
) -> None:
    """Write yearly ALT (m) and its uncertainty to RUN/alt/ from DDT and the calibration."""
    from gee_alt import runs
    from gee_alt.pipeline import write_alt

    with _progress(quiet or as_json) as progress:
        paths = write_alt(run_dir, progress=progress)
    runs.write_manifest(run_dir, settings={"command": "alt"})
    if as_json:
        _echo_json({"written": [str(p) for p in paths]})
    elif not quiet:
        typer.echo(f"wrote {len(paths)} files to {Path(run_dir) / 'alt'}")


@app.command()
def validate(
    run_dir: Path = typer.Argument(..., help="Run directory with calibration.json."),
    as_json: bool = JSON,
) -> None:
    """Print the validation scores of a run: in-situ cross-validation and, for the demo, truth."""
    from gee_alt import runs
    from gee_alt.pipeline import load_calibration

    cal = load_calibration(Path(run_dir))
    out = {"insitu_loo": cal.get("loo"), "insitu_block_cv": cal.get("block_cv"), "n_used": cal.get("n_used")}
    vpath = Path(run_dir) / runs.VALIDATION
    if vpath.exists():
        try:
            val = json.loads(vpath.read_text(encoding="utf-8"))
            if not isinstance(val, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            raise GeeAltError(f"{vpath} is not valid JSON ({str(exc).splitlines()[0][:80]}); "
                              f"rerun 'gee-alt calibrate {run_dir} --insitu CSV' to rewrite it") from None
        out.update(val)
    if not isinstance(out.get("insitu_loo"), dict) or "rmse_m" not in out["insitu_loo"]:
        raise GeeAltError(f"{Path(run_dir) / runs.CALIBRATION} has no leave-one-site-out scores; "
                          f"rerun 'gee-alt calibrate {run_dir} --insitu CSV'")
    if as_json:
        _echo_json(out)
    else:
        lo = out["insitu_loo"]
        typer.echo(f"in-situ leave-one-site-out: RMSE {lo['rmse_m']:.3f} m, bias {lo['bias_m']:+.3f} m, n {lo['n']}")
        if "truth" in out:
            t = out["truth"]
            typer.echo(f"SYNTHETIC truth: LST RMSE ratio to bilinear {t['lst_degc']['rmse_ratio']:.2f}; "
                       f"ALT RMSE {t['alt_m']['rmse']:.3f} m; E error {100 * t['E']['rel_error_vs_sites']:+.1f} %")


@app.command()
def trend(
    run_dir: Path = typer.Argument(..., help="Run directory with alt/*.tif."),
    mask: Optional[Path] = typer.Option(None, help="Polygon GeoJSON (lon/lat), e.g. a mining area: inside vs a ring around it."),
    ring_px: int = typer.Option(10, help="Ring width around the polygon, in pixels."),
    as_json: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Per-pixel ALT trend (Theil-Sen, cm/yr; Mann-Kendall p) and an optional disturbance contrast."""
    from gee_alt.pipeline import write_trend

    res = write_trend(run_dir, mask_geojson=mask, ring_width_px=ring_px)
    if as_json:
        _echo_json(res)
    elif not quiet:
        typer.echo(f"median ALT trend {res['median_slope_cm_per_yr']:+.2f} cm/yr; "
                   f"{100 * res['pixels_significant_frac_p05']:.1f} % of pixels with p < 0.05")


@insitu_app.command("import-calm")
def import_calm_cmd(
    calm_csv: Path = typer.Argument(..., help="CALM summary table (';'-separated)."),
    out: Path = typer.Option(..., "--out", "-o", help="Tidy in-situ CSV to write."),
    bbox: Optional[str] = typer.Option(None, help="Keep sites in west,south,east,north (degrees)."),
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Import the CALM summary table into the tidy in-situ schema; every site imported or reported."""
    from gee_alt.insitu.calm import import_calm
    from gee_alt.insitu.table import write_insitu

    if not calm_csv.exists():
        raise GeeAltError(f"CALM table not found: {calm_csv}")
    _check_output_file(out, overwrite)
    box = None
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
            assert len(box) == 4
        except (ValueError, AssertionError):
            raise GeeAltError(f"--bbox must be west,south,east,north in degrees, got '{bbox}'") from None
    table, report = import_calm(calm_csv, bbox=box)
    write_insitu(out, table)
    if as_json:
        _echo_json({"rows": len(table), "sites": int(len(set(table.site_id))), "reported": [list(r) for r in report]})
    else:
        typer.echo(f"{out}: {len(table)} rows from {len(set(table.site_id))} sites; {len(report)} notes:")
        for where, why in report:
            typer.echo(f"  {where}: {why}")


def _register_optional() -> None:
    from gee_alt.cli import ee_commands as cli_ee
    from gee_alt.cli import viz_commands as cli_viz

    cli_ee.register(app)
    cli_viz.register(app)


_register_optional()


def _quiet_library_warnings() -> None:
    """Library warnings (scikit-learn, xarray, ...) are not shown: stderr carries progress and at
    most one error line. gee-alt's own warnings print as one ``warning: ...`` line. Worker
    processes inherit the setting through ``PYTHONWARNINGS``."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, GeeAltWarning) or "/gee_alt/" in str(filename).replace("\\", "/"):
            typer.echo(f"warning: {message}", err=True)

    warnings.showwarning = show
    os.environ.setdefault("PYTHONWARNINGS", "ignore")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a :class:`GeeAltError` becomes one line on stderr and exit 2."""
    import click

    _quiet_library_warnings()
    try:
        app(args=argv, standalone_mode=False)
    except GeeAltError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
