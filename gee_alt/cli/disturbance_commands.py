"""``gee-alt disturbance RUN --mines MINES``: before/after-control/impact effect on ALT."""

from __future__ import annotations

from pathlib import Path

import typer

from gee_alt.cli._common import JSON, QUIET, app, check_input_file, echo_json
from gee_alt.errors import GeeAltError


@app.command()
def disturbance(
    run_dir: Path = typer.Argument(..., help="Run directory with alt/*.tif and the DEM of the run."),
    mines: Path = typer.Option(
        ...,
        help="GeoJSON (lon/lat) whose features carry start_year (optional restoration_year), "
        "or a raster of disturbance year (0 = never).",
    ),
    buffer_m: float = typer.Option(1500.0, help="Controls at least this far from any disturbance (m)."),
    elev_band_m: float = typer.Option(100.0, help="Elevation band width for matching controls (m)."),
    min_controls: int = typer.Option(30, help="Control pixels a matching stratum needs."),
    before_last: int | None = typer.Option(None, help="Last year of the 'before' period (default: first start - 1)."),
    after_first: int | None = typer.Option(None, help="First year of the 'after' period (default: last start + 1)."),
    as_json: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Effect of disturbances (e.g. mines) on ALT and its trend: BACI with matched controls."""
    from gee_alt.disturbance_run import disturbance_run
    from gee_alt.science.disturbance import BaciDesign

    check_input_file(mines, "disturbance file")
    if not buffer_m >= 0 or not elev_band_m > 0:
        raise GeeAltError(f"--buffer-m must be >= 0 and --elev-band-m > 0, got {buffer_m}, {elev_band_m}")
    if min_controls < 1:
        raise GeeAltError(f"--min-controls must be at least 1, got {min_controls}")
    design = BaciDesign(buffer_m=buffer_m, elev_band_m=elev_band_m, min_controls=min_controls)
    res = disturbance_run(run_dir, mines, design=design, before_last=before_last, after_first=after_first)
    if as_json:
        echo_json(res)
    elif not quiet:
        lo, hi = res["effect_alt_ci95_m"]
        typer.echo(
            f"effect on ALT {res['effect_alt_m']:+.2f} m (95 % CI {lo:+.2f} to {hi:+.2f}); "
            f"{res['impact_pixels_used']} impact pixels, {res['control_pixels']} controls; "
            f"before {res['before'][0]}-{res['before'][-1]}, after {res['after'][0]}-{res['after'][-1]}"
        )
        if res.get("warning"):
            typer.echo(f"warning: {res['warning']}", err=True)
        if res.get("effect_trend_cm_per_yr") is not None:
            tl, th = res["effect_trend_ci95_cm_per_yr"]
            typer.echo(
                f"change of ALT trend {res['effect_trend_cm_per_yr']:+.2f} cm/yr (95 % CI {tl:+.2f} to {th:+.2f})"
            )
