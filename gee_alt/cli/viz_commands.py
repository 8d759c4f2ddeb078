"""Commands for seeing results: ``map RUN --out map.html`` and ``report RUN [--json]``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from gee_alt.cli._common import OVERWRITE, app, check_output_file


@app.command("map")
def map_command(
    run: Path = typer.Argument(..., help="Run directory."),
    out: Path = typer.Option(..., "--out", "-o", help="HTML file to write."),
    year: int | None = typer.Option(None, "--year", help="Year of the ALT layer (default: the last)."),
    basemap: bool = typer.Option(False, "--basemap", help="Add OpenStreetMap tiles (needs the network)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Write a self-contained HTML map (ALT, ALT uncertainty, trend) that works offline."""
    from gee_alt.viz.webmap import write_html_map

    check_output_file(out, overwrite)
    typer.echo(str(write_html_map(run, out, year=year, basemap=basemap)))


@app.command("report")
def report_command(
    run: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
) -> None:
    """Regenerate RUN/report/ (report.md, self-contained report.html, PNG figures)."""
    from gee_alt.viz.report import write_report_files

    res = write_report_files(run)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "markdown": str(res["markdown"]),
                    "html": str(res["html"]),
                    "figures": [str(p) for p in res["figures"]],
                },
                indent=2,
            )
        )
    else:
        typer.echo(f"wrote {res['markdown']}, {res['html']} and {len(res['figures'])} figures")
