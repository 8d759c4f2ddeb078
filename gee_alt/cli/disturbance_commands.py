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
    """Effect of disturbances (e.g. mines) on the thaw index, permafrost presence and ALT (BACI, matched controls)."""
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
        for line in summary_lines(res):
            typer.echo(line)
        if res.get("warning"):
            typer.echo(f"warning: {res['warning']}", err=True)


QUANTITY_LABELS = {
    "ddt_degc_days": ("thaw index (DDT)", "degC day", 0),
    "permafrost_fraction": ("permafrost presence", "fraction of pixels", 3),
    "stefan_depth_m": ("thaw depth E·√DDT (thaw-index part of ALT)", "m", 2),
    "alt_m": ("ALT where permafrost persists", "m", 2),
}


def summary_lines(res: dict) -> list[str]:
    """One line per quantity of a ``disturbance.json`` (effect, 95 % CI, pixels), then the periods."""
    out = []
    for name, (label, units, dig) in QUANTITY_LABELS.items():
        q = (res.get("quantities") or {}).get(name)
        if q is None:
            err = (res.get("quantity_errors") or {}).get(name)
            if err:
                out.append(f"effect on {label}: none ({err})")
            continue
        lo, hi = q["effect_ci95"]
        out.append(
            f"effect on {label} {q['effect']:+.{dig}f} {units} (95 % CI {lo:+.{dig}f} to {hi:+.{dig}f}); "
            f"{q['impact_pixels_used']} impact pixels, {q['control_pixels']} controls"
        )
    out.append(f"before {res['before'][0]}-{res['before'][-1]}, after {res['after'][0]}-{res['after'][-1]}")
    if res.get("effect_trend_cm_per_yr") is not None:
        tl, th = res["effect_trend_ci95_cm_per_yr"]
        out.append(f"change of ALT trend {res['effect_trend_cm_per_yr']:+.2f} cm/yr (95 % CI {tl:+.2f} to {th:+.2f})")
    return out
