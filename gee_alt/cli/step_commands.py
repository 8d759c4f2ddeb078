"""Single steps on an existing run directory: ``calibrate``, ``alt``, ``validate``, ``trend``."""

from __future__ import annotations

from pathlib import Path

import typer

from gee_alt import runs
from gee_alt.cli._common import JSON, QUIET, app, check_input_file, echo_json, progress_bars
from gee_alt.errors import GeeAltError
from gee_alt.science.homogeneity import DEFAULT_THRESHOLDS


@app.command()
def calibrate(
    run_dir: Path = typer.Argument(..., help="Run directory (reads ddt/*.tif)."),
    insitu: Path = typer.Option(..., help="In-situ ALT CSV (site_id, lon, lat, year, alt_m, ...)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    n_boot: int = typer.Option(2000, help="Bootstrap resamples for the confidence interval."),
    dem_std_max: float = typer.Option(15.0, help="Drop sites whose 7x7 DEM std exceeds this (m)."),
    ndvi_std_max: float = typer.Option(0.10, help="Drop sites whose 7x7 NDVI std exceeds this."),
    ddt_cv_max: float = typer.Option(0.10, help="Drop sites whose 7x7 DDT coefficient of variation exceeds this."),
    dem_std_1km_max: float = typer.Option(
        DEFAULT_THRESHOLDS["dem_std_1km"], help="Drop sites whose 1 km MODIS footprint DEM std exceeds this (m)."
    ),
    ndvi_std_1km_max: float = typer.Option(
        DEFAULT_THRESHOLDS["ndvi_std_1km"], help="Drop sites whose 1 km MODIS footprint NDVI std exceeds this."
    ),
    landcover_impurity_1km_max: float = typer.Option(
        DEFAULT_THRESHOLDS["landcover_impurity_1km"],
        help="Drop sites whose 1 km footprint has more than this share of other land-cover classes.",
    ),
    by_class: str = typer.Option("auto", help=f"One E per land-cover class (RUN/{runs.LANDCOVER}): auto, yes or no."),
    disturbance: Path | None = typer.Option(
        None,
        "--disturbance",
        help="MINES (GeoJSON with 'start_year' or a disturbance-year raster): site-years at/after their pixel's "
        "start year fit an E of disturbed ground, kept when leave-one-site-out says it helps.",
    ),
    as_json: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Fit the Stefan coefficient E on in-situ ALT (homogeneity screen, bootstrap CI, cross-validation)."""
    from gee_alt.pipeline import calibrate_run

    check_input_file(insitu, "in-situ table")
    if disturbance is not None:
        from gee_alt.science.disturbance import check_disturbance_file

        check_disturbance_file(disturbance)
    if n_boot < 100:
        raise GeeAltError(f"--n-boot must be at least 100, got {n_boot}")
    modes = {"auto": "auto", "yes": True, "no": False}
    if by_class not in modes:
        raise GeeAltError(f"--by-class must be auto, yes or no, got '{by_class}'")
    cal = calibrate_run(
        run_dir,
        insitu,
        seed=seed,
        n_boot=n_boot,
        by_class=modes[by_class],
        disturbance=disturbance,
        thresholds={
            "dem_std": dem_std_max,
            "ndvi_std": ndvi_std_max,
            "ddt_cv": ddt_cv_max,
            "min_valid_frac": 0.5,
            "dem_std_1km": dem_std_1km_max,
            "ndvi_std_1km": ndvi_std_1km_max,
            "landcover_impurity_1km": landcover_impurity_1km_max,
        },
    )
    keys = ("E", "E_ci95", "E_sd", "n_used", "n_dropped", "loo", "block_cv", "censoring", "E_by_class")
    if as_json:
        echo_json({k: cal.get(k) for k in keys})
    elif not quiet:
        typer.echo(
            f"E = {cal['E']:.5f} m (degC day)^-1/2, 95 % CI [{cal['E_ci95'][0]:.5f}, {cal['E_ci95'][1]:.5f}]; "
            f"{cal['n_used']} rows used, {cal['n_dropped']} dropped"
        )
        lo = cal["loo"]
        typer.echo(
            f"leave-one-site-out: RMSE {lo['rmse_m']:.3f} m, bias {lo['bias_m']:+.3f} m, MAE {lo['mae_m']:.3f} m, "
            f"R2 {lo['r2']:.2f}, n {lo['n']}"
        )


@app.command()
def alt(
    run_dir: Path = typer.Argument(..., help=f"Run directory (reads ddt/*.tif and {runs.CALIBRATION})."),
    disturbance: Path | None = typer.Option(
        None,
        "--disturbance",
        help="MINES (GeoJSON with 'start_year' or a disturbance-year raster): where the calibration has an E of "
        "disturbed ground, pixel-years from the start year use it (default: the run's copy of its MINES).",
    ),
    quiet: bool = QUIET,
    as_json: bool = JSON,
) -> None:
    """Write yearly ALT (m) and its uncertainty to RUN/alt/ from DDT and the calibration."""
    from gee_alt import runs
    from gee_alt.pipeline import alt_run

    with progress_bars(quiet or as_json) as progress:
        paths = alt_run(run_dir, progress=progress, disturbance=disturbance)
    runs.write_manifest(run_dir, settings={"command": "alt"})
    if as_json:
        echo_json({"written": [str(p) for p in paths]})
    elif not quiet:
        typer.echo(f"wrote {len(paths)} files to {Path(run_dir) / runs.ALT_DIR}")


@app.command()
def validate(
    run_dir: Path = typer.Argument(..., help=f"Run directory with {runs.CALIBRATION}."),
    as_json: bool = JSON,
) -> None:
    """Print the validation scores of a run: in-situ cross-validation and, for the demo, truth."""
    from gee_alt import runs
    from gee_alt.downstream import load_calibration

    _, cal = load_calibration(Path(run_dir))
    out = {"insitu_loo": cal.get("loo"), "insitu_block_cv": cal.get("block_cv"), "n_used": cal.get("n_used")}
    try:
        val = runs.read_json(run_dir, runs.VALIDATION)
    except GeeAltError as exc:
        raise GeeAltError(f"{exc}; rerun 'gee-alt calibrate {run_dir} --insitu CSV' to rewrite it") from None
    out.update(val or {})
    if not isinstance(out.get("insitu_loo"), dict) or "rmse_m" not in out["insitu_loo"]:
        raise GeeAltError(
            f"{Path(run_dir) / runs.CALIBRATION} has no leave-one-site-out scores; "
            f"rerun 'gee-alt calibrate {run_dir} --insitu CSV'"
        )
    if as_json:
        echo_json(out)
    else:
        lo = out["insitu_loo"]
        typer.echo(f"in-situ leave-one-site-out: RMSE {lo['rmse_m']:.3f} m, bias {lo['bias_m']:+.3f} m, n {lo['n']}")
        if "truth" in out:
            t = out["truth"]
            typer.echo(
                f"SYNTHETIC truth: LST RMSE ratio to bilinear {t['lst_degc']['rmse_ratio']:.2f}; "
                f"ALT RMSE {t['alt_m']['rmse']:.3f} m; E error {100 * t['E']['rel_error_vs_sites']:+.1f} %"
            )


@app.command()
def trend(
    run_dir: Path = typer.Argument(..., help="Run directory with alt/*.tif."),
    mask: Path | None = typer.Option(
        None, help="Polygon GeoJSON (lon/lat), e.g. a mining area: inside vs a ring around it."
    ),
    ring_px: int = typer.Option(10, help="Ring width around the polygon, in pixels."),
    as_json: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Per-pixel ALT trend (Theil-Sen, cm/yr; Mann-Kendall p) and an optional disturbance contrast."""
    from gee_alt.pipeline import trend_run

    res = trend_run(run_dir, mask_geojson=mask, ring_width_px=ring_px)
    if as_json:
        echo_json(res)
    elif not quiet:
        typer.echo(
            f"median ALT trend {res['median_slope_cm_per_yr']:+.2f} cm/yr; "
            f"{100 * res['pixels_significant_frac_p05']:.1f} % of pixels with p < 0.05 "
            f"({100 * res.get('pixels_significant_frac_fdr05', float('nan')):.1f} % at false-discovery rate 0.05; "
            "MK corrected for serial correlation)"
        )
