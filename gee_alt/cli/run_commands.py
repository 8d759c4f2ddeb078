"""``gee-alt demo`` and ``gee-alt run``: the whole method, on the synthetic demo scene or on real inputs."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from gee_alt import runs
from gee_alt.cli._common import (
    DASK_ADDRESS,
    JSON,
    OVERWRITE,
    QUIET,
    TILE_SIZE,
    WORKERS,
    app,
    check_at_least,
    check_input_file,
    echo_json,
    parse_years,
    progress_bars,
)
from gee_alt.errors import GeeAltError
from gee_alt.science.forest import RandomForestSettings


@app.command()
def demo(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
    years: str = typer.Option("2000-2024", help="Years, e.g. 2000-2024 or 2005,2010."),
    seed: int = typer.Option(42, help="Seed of the synthetic scene and of the forests."),
    trees: int = typer.Option(40, help="Trees per random forest."),
    size: str = typer.Option(
        "512",
        help="Width/height of the 30 m demo window in pixels (multiple of 4, 128-2048), or 'full': the whole "
        "study grid (3215 x 2065 px; realistic world, generated tile by tile).",
    ),
    world: str = typer.Option(
        "realistic",
        help="Synthetic world: realistic (truth written independently of the method, as hard as real data "
        "where it matters) or ideal (truth in the method's own image: a fast plumbing check).",
    ),
    trend: float | None = typer.Option(
        None,
        help="Climate warming of the realistic world, degC/yr (default 0.05; 0 measures the trend test's "
        "false-positive rate).",
    ),
    disturbance: bool = typer.Option(
        True,
        "--disturbance/--no-disturbance",
        help="Realistic world: give the ALT model the world's disturbance-year raster (mine records, as a user "
        "would have them: no ALT truth) so dug ground gets its own Stefan E from its start year on.",
    ),
    workers: int | None = WORKERS,
    tile_size: int = TILE_SIZE,
    dask_address: str | None = DASK_ADDRESS,
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
    as_json: bool = JSON,
) -> None:
    """Run the whole method on the embedded SYNTHETIC demo scene and score every stage against its truth.

    No Earth Engine account or download needed. Writes RUN/ (see README: run directory).
    An interrupted demo (RUN without manifest.json) is removed and started over cleanly;
    a completed one needs --overwrite.
    """
    from gee_alt.demo.worlds import FULL, WORLDS
    from gee_alt.pipeline import run_demo

    yrs = parse_years(years, lo=2000, hi=2024)
    size_px = parse_demo_size(size)
    if world not in WORLDS:
        raise GeeAltError(f"--world must be one of {', '.join(WORLDS)}, got {world!r}")
    if size_px == FULL and world != "realistic":
        raise GeeAltError(f"--size full needs --world realistic (the {world} world is built for windows)")
    if trend is not None and (world != "realistic" or not -0.5 <= trend <= 0.5):
        raise GeeAltError(f"--trend takes -0.5..0.5 degC/yr and only with --world realistic, got {trend} ({world})")
    check_at_least(trees, 1, "--trees")
    check_at_least(workers, 1, "--workers")
    check_at_least(tile_size, 64, "--tile-size")
    with progress_bars(quiet or as_json) as progress:
        validation = run_demo(
            out,
            years=yrs,
            seed=seed,
            trees=trees,
            size_px=size_px,
            world=world,
            warming_degc_per_yr=trend,
            workers=workers,
            tile_px=tile_size,
            dask_address=dask_address,
            overwrite=overwrite,
            progress=progress,
            disturbance=disturbance,
        )
    if as_json:
        echo_json(validation)
    elif not quiet:
        print_demo_summary(out, validation)


def parse_demo_size(text: str) -> int | str:
    """``--size``: ``full`` (the whole study grid) or a window side in pixels, a multiple of 4
    between 128 and 2048; anything else is a usage error."""
    from gee_alt.demo.worlds import FULL

    t = str(text).strip().lower()
    if t == FULL:
        return FULL
    try:
        size = int(t)
    except ValueError:
        size = None
    if size is None or size % 4 or not 128 <= size <= 2048:
        raise GeeAltError(f"--size must be 'full' or a multiple of 4 between 128 and 2048, got {text!r}")
    return size


def _echo_disturbed_e(out: Path) -> None:
    """One line: the ALT model's E of disturbed ground (``--disturbance``), or why it has none."""
    cal = runs.read_json(out, runs.CALIBRATION) or {}
    ch = cal.get("disturbance_choice") or {}
    if not ch:
        return
    if "loo_rmse_one_e_m" not in ch:
        typer.echo(f"  E of disturbed ground: none ({ch.get('reason')})")
        return
    lo, hi = ch["ci95"]
    typer.echo(
        f"  E of disturbed ground {ch['E_partial_pooled']:.4f} [{lo:.4f}, {hi:.4f}] from {ch['n_sites']} sites, "
        f"{'used' if ch['used'] else 'not used'}: LOO RMSE {ch['loo_rmse_with_disturbed_e_m']:.3f} m with it vs "
        f"{ch['loo_rmse_one_e_m']:.3f} m one E"
    )


def print_demo_summary(out: Path, v: dict) -> None:
    """The demo's scores against its synthetic truth, one stage a line (world first)."""
    t, scene = v["truth"], v.get("scene", {})
    world = scene.get("world", "ideal")
    typer.echo(f"SYNTHETIC demo, {world} world (seed {scene.get('seed')}) -> {out}")
    if world == "ideal":
        typer.echo("  (truth built in the method's own image: a plumbing check, not a measure of skill)")
    typer.echo(f"  NDVI  RMSE {t['ndvi']['sharpened']['rmse']:.4f} (bilinear {t['ndvi']['bilinear']['rmse']:.4f})")
    lst = t["lst_degc"]
    typer.echo(
        f"  LST   RMSE {lst['sharpened']['rmse']:.3f} degC, bias {lst['sharpened']['bias']:+.2f} "
        f"(bilinear {lst['bilinear']['rmse']:.3f}; ratio {lst['rmse_ratio']:.2f})"
    )
    typer.echo(f"  DDT   RMSE {t['ddt_degc_days']['rmse']:.1f} degC day, bias {t['ddt_degc_days']['bias']:+.1f}")
    e = t["E"]
    typer.echo(
        f"  E     {e['estimated']:.5f} [{e['ci95'][0]:.5f}, {e['ci95'][1]:.5f}] vs effective at sites "
        f"{e['truth_at_sites']:.5f} ({100 * e['rel_error_vs_sites']:+.1f} %)"
    )
    typer.echo(
        f"  ALT   RMSE {t['alt_m']['rmse']:.3f} m, bias {t['alt_m']['bias']:+.3f} m "
        "(permafrost pixels of the truth the engine maps too, all years)"
    )
    cov = t.get("alt_sd_coverage")
    if cov:
        typer.echo(
            f"  ALT sd covers the truth {100 * cov['within_1sd']:.0f} % (nominal 68) / "
            f"{100 * cov['within_1.96sd']:.0f} % (nominal 95)"
        )
        if cov.get("by_landcover"):
            typer.echo(
                "  ALT 95 % coverage by class: "
                + ", ".join(f"{k} {100 * c['within_1.96sd']:.0f} %" for k, c in cov["by_landcover"].items())
            )
    pf = t.get("permafrost")
    if pf:
        typer.echo(
            f"  permafrost {pf['years'][-1]}: truth {100 * pf['truth_fraction'][-1]:.0f} % of the area; "
            f"ALT mapped without permafrost on {100 * pf['alt_mapped_without_permafrost_fraction']:.0f} % of it"
        )
        if "accuracy_mean" in pf:
            typer.echo(
                f"  permafrost extent ({pf['engine_rule']}): accuracy {100 * pf['accuracy_mean']:.1f} %, "
                f"area error {100 * pf['area_error_mean_fraction']:+.1f} % (mean), "
                f"worst year {100 * pf['area_error_max_abs_fraction']:.1f} %"
            )
        prob, thr = pf.get("probabilistic"), pf.get("frost_number_threshold")
        if prob:
            typer.echo(
                f"  permafrost expected area (sum of probabilities): area error "
                f"{100 * prob['area_error_mean_fraction']:+.1f} % (mean), worst year "
                f"{100 * prob['area_error_max_abs_fraction']:.1f} %"
            )
        if thr:
            typer.echo(
                f"  permafrost extent ({thr['rule']}, before): accuracy {100 * thr['accuracy_mean']:.1f} %, "
                f"area error {100 * thr['area_error_mean_fraction']:+.1f} % (mean), "
                f"worst year {100 * thr['area_error_max_abs_fraction']:.1f} %"
            )
    if "alt_trend" in t:
        tr = t["alt_trend"]
        typer.echo(
            f"  trend {tr['area_mean_cm_per_yr']:+.2f} cm/yr area mean vs truth {tr['truth_area_mean_cm_per_yr']:+.2f} "
            f"({100 * tr['rel_error_area_mean']:+.0f} %)"
        )
        if "false_positive_rate" in tr:
            typer.echo(f"  trend false-positive rate {100 * tr['false_positive_rate']:.0f} % (nominal 5 %)")
    if "mine_effect" in t:
        m = t["mine_effect"]
        typer.echo(f"  mine effect on ALT, plain contrast {m['baci_engine_m']:+.2f} m vs truth {m['truth_m']:+.2f} m")
        for name, label, units, dig in (
            ("ddt_degc_days", "thaw index", "degC day", 0),
            ("permafrost_fraction", "permafrost presence", "", 3),
            ("alt_m", "ALT (truth's permafrost pixels)", "m", 2),
            ("stefan_depth_m", "E·sqrt(DDT) (truth's permafrost pixels)", "m", 2),
        ):
            q = (m.get("disturbance") or {}).get(name)
            if not q or q.get("truth") is None:
                continue
            if "estimate" in q:
                lo, hi = q["ci95"]
                typer.echo(
                    f"  mine effect on {label} {q['estimate']:+.{dig}f} {units} (BACI, 95 % CI {lo:+.{dig}f} to "
                    f"{hi:+.{dig}f}) vs truth {q['truth']:+.{dig}f}: "
                    + ("inside" if q["truth_within_ci"] else "outside")
                )
            else:
                typer.echo(f"  mine effect on {label}: no BACI ({q.get('error')}); truth {q['truth']:+.{dig}f}")
        if m.get("disturbance_error"):
            typer.echo(f"  mine BACI: {m['disturbance_error']}")
        _echo_disturbed_e(out)
    if "applicability" in t:
        a = t["applicability"]
        flagged = ", ".join(f"{k} {100 * f:.0f} %" for k, f in a["outside_aoa_by_true_class"].items())
        bound = (
            f" (a lower bound: {100 * a['unsampled_fraction']:.0f} % of the map is on classes without sites)"
            if a.get("lower_bound")
            else ""
        )
        typer.echo(
            f"  map error estimate {a['map_rmse_estimate_m']:.3f} m{bound} vs true map RMSE "
            f"{a['map_rmse_true_m']:.3f} m ({100 * a['rel_error']:+.0f} %); "
            + (
                f"inside the area of applicability {a['inside_aoa_estimate_m']:.3f} m "
                f"vs true {a['inside_aoa_true_m']:.3f} m"
                if a.get("inside_aoa_estimate_m") is not None and math.isfinite(a["inside_aoa_estimate_m"])
                else "no scored pixel inside the area of applicability"
            )
        )
        typer.echo(f"  outside the area of applicability: {flagged}")
        if a.get("aoa_stratified_estimate_m") is not None:
            typer.echo(
                f"  (map error: {a.get('method', '')}; the AOA-stratified site-LOO/class-hold-out estimate "
                f"was {a['aoa_stratified_estimate_m']:.3f} m)"
            )
    lo = v["insitu_loo"]
    typer.echo(f"  in-situ leave-one-site-out: RMSE {lo['rmse_m']:.3f} m, bias {lo['bias_m']:+.3f} m, n {lo['n']}")
    typer.echo(f"  report: {runs.report_paths(out)[0]}")


@app.command()
def run(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
    engine: str = typer.Option("local", help="local (your GeoTIFFs) or ee (Google Earth Engine)."),
    inputs: Path | None = typer.Option(None, help="Input directory (local engine; see README: input layout)."),
    insitu: Path | None = typer.Option(None, help="In-situ ALT CSV (site_id, lon, lat, year, alt_m, ...)."),
    config: Path | None = typer.Option(
        None,
        help="Study config TOML: its \\[rf] table sets the forests of both engines; the ee engine also takes "
        "the AOI, years and collections from it (default: the Datong study).",
    ),
    project: str | None = typer.Option(None, help="Google Cloud project (ee engine; or EE_PROJECT)."),
    key: Path | None = typer.Option(None, help="Service-account key JSON (ee engine; or GEE_ALT_SERVICE_ACCOUNT_KEY)."),
    years: str | None = typer.Option(None, help="Years (local engine), e.g. 2000-2024; default: all available."),
    seed: int | None = typer.Option(
        None, help="Seed of the forests (overrides \\[rf] random_state) and of the calibration bootstrap (default 0)."
    ),
    trees: int | None = typer.Option(None, help="Trees per random forest (overrides \\[rf] n_estimators; default 40)."),
    sharpen: str | None = typer.Option(
        None,
        help="ee engine: 'server' (forests on Earth Engine) or 'local' (Earth Engine composites, local "
        "forests); overrides \\[ee_run] sharpen.",
    ),
    permafrost_map: Path | None = typer.Option(
        None,
        help="Permafrost map raster (1 = permafrost, 0 = none, nodata = unknown; any CRS) that replaces the "
        "frost-number criterion: ALT only where it says permafrost, the same extent every year.",
    ),
    disturbance: Path | None = typer.Option(
        None,
        "--disturbance",
        help="MINES: disturbance records, a GeoJSON whose features carry 'start_year' (optional "
        "'restoration_year') or a raster of the year each pixel was first disturbed (0 = never). Disturbed "
        "ground gets its own Stefan E from its start year on, when leave-one-site-out says it helps "
        "(the calibration's 'disturbance_choice').",
    ),
    workers: int | None = WORKERS,
    tile_size: int = TILE_SIZE,
    dask_address: str | None = DASK_ADDRESS,
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
    as_json: bool = JSON,
) -> None:
    """Map ALT on real inputs: the local engine on your rasters, or the Earth Engine engine.

    Both engines end in the same products (DDT, calibration, ALT, trend, NetCDF, STAC, report).
    An interrupted run (RUN without manifest.json) is resumed: finished years are kept, the
    rest and the later steps are redone. A completed run needs --overwrite.
    """
    from gee_alt import pipeline

    if engine not in ("local", "ee"):
        raise GeeAltError(f"--engine must be 'local' or 'ee', got '{engine}'")
    if sharpen is not None and (engine != "ee" or sharpen not in ("server", "local")):
        raise GeeAltError(f"--sharpen takes 'server' or 'local' and only with --engine ee, got '{sharpen}'")
    if insitu is not None:
        check_input_file(insitu, "in-situ table")
    if permafrost_map is not None:
        check_input_file(permafrost_map, "permafrost map")
    if disturbance is not None:
        from gee_alt.science.disturbance import check_disturbance_file

        check_disturbance_file(disturbance)
    check_at_least(trees, 1, "--trees")
    check_at_least(seed, 0, "--seed")
    check_at_least(workers, 1, "--workers")
    check_at_least(tile_size, 64, "--tile-size")
    from gee_alt.config import load_config

    study = load_config(config)
    overrides = {k: v for k, v in (("n_estimators", trees), ("random_state", seed)) if v is not None}
    # without --config the local engine keeps the forest defaults (seed 0), not the Datong study's
    rf = (study.rf if config is not None else RandomForestSettings()).model_copy(update=overrides)
    if engine == "local":
        from gee_alt.engines.local.engine import LocalEngineParams
        from gee_alt.engines.local.runner import LocalEngine

        if inputs is None:
            raise GeeAltError("--engine local needs --inputs DIR (see README: input layout)")
        params = LocalEngineParams.from_season(
            study.season, rf=rf, workers=workers, tile_px=tile_size, dask_address=dask_address
        )
        eng = LocalEngine(inputs, parse_years(years) if years else None, params)
        insitu = insitu or eng.layout.insitu_path
        if insitu is None:
            raise GeeAltError(f"no in-situ table: pass --insitu CSV or put {runs.INSITU_CSV} in {inputs}")
    else:
        import dataclasses

        from gee_alt.engines.ee.runner import EarthEngine

        if insitu is None:
            raise GeeAltError("--engine ee needs --insitu CSV to calibrate the Stefan coefficient")
        ee_run = study.ee_run if sharpen is None else study.ee_run.model_copy(update={"sharpen": sharpen})
        eng = EarthEngine(
            dataclasses.replace(study, rf=rf, ee_run=ee_run),
            project,
            key,
            verbose=not (quiet or as_json),
            workers=workers,
        )

    def said(done, todo):
        if not (quiet or as_json):
            typer.echo(f"resuming {out}: {len(done)} year(s) already done, {len(todo)} to compute", err=True)

    with progress_bars(quiet or as_json) as progress:
        res = pipeline.run(
            out,
            eng,
            insitu,
            overwrite=overwrite,
            progress=progress,
            seed=seed or 0,
            on_resume=said,
            permafrost_map=permafrost_map,
            disturbance=disturbance,
        )
    c = res.calibration.summary
    summary = {
        "run": str(out),
        "engine": engine,
        "years": res.years,
        "calibration": {k: c[k] for k in ("E", "E_ci95", "n_used", "n_dropped", "loo")},
    }
    if as_json:
        echo_json(summary)
    elif not quiet:
        typer.echo(
            f"{out}: {len(res.years)} years; E = {c['E']:.5f} [{c['E_ci95'][0]:.5f}, {c['E_ci95'][1]:.5f}], "
            f"{c['n_used']} rows used, {c['n_dropped']} dropped; LOO RMSE {c['loo']['rmse_m']:.3f} m"
        )
