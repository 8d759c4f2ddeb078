"""Earth Engine commands: ``plan`` (offline, no credentials) and ``auth``.

``run --engine ee`` lives with ``run`` (:mod:`gee_alt.cli.run_commands`): both engines go
through the same pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from gee_alt.cli._common import app
from gee_alt.errors import GeeAltError


def plan_summary_lines(plan: dict) -> list[str]:
    """Human-readable summary of a plan (one fact per line)."""
    g = plan["grid"]
    mb = plan["bytes"]["total"] / 2**20
    lines = [
        f"study {plan['study']} ({plan['config']}), engine ee",
        f"AOI bbox {plan['aoi']['bbox_lonlat']}; grid {g['crs']} {g['shape_2d'][0]}x{g['shape_2d'][1]} px "
        f"at {g['scale_m']} m",
        f"years {plan['years'][0]}-{plan['years'][-1]}: {len(plan['years_to_pull'])} to pull, "
        f"{len(plan['skipped_years'])} already done",
        f"requests: {plan['requests']['per_year']} per year, {plan['requests']['total']} in all "
        f"({mb:.1f} MiB), io_chunks {plan['requests']['io_chunks']}",
        f"random forest: {plan['rf']['n_estimators']} trees, seed {plan['rf']['random_state']}, REGRESSION "
        f"on a ridge trend's residuals; sharpening on {plan['sharpen']}",
        f"paths: {len(plan['paths']['interactive'])} interactive, {len(plan['paths']['batch'])} batch "
        f"(ee_run.path {plan['ee_run']['path']})",
    ]
    for year, v in plan["per_year"].items():
        landsat = ",".join(f"{m['mission']}:{m['thermal']}" for m in v["landsat"])
        lst = "+".join(c.split("/")[-1] for c in v["lst"]["collections"])
        lines.append(
            f"  {year}: {v['path']} ({v['forests']['at_30m']} forests at 30 m, {v['bytes'] / 2**20:.0f} MiB); "
            f"LST {lst}; Landsat {landsat}; graph {v['graph_sha256'][:12]}{' (done)' if v['skip'] else ''}"
        )
    return lines


@app.command("plan")
def plan_cmd(
    config: Path | None = typer.Option(None, "--config", help="Study config TOML (default: Datong study)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the plan as JSON."),
    emit_graphs: Path | None = typer.Option(None, "--emit-graphs", help="Write graph_YYYY.json files here."),
    out: Path | None = typer.Option(None, "--out", help="Run dir: report years already done there."),
) -> None:
    """Build every year's Earth Engine graph offline (no credentials) and print the plan."""
    from gee_alt.config import load_config
    from gee_alt.engines.ee.plan import build_plan

    if emit_graphs is not None and emit_graphs.exists() and not emit_graphs.is_dir():
        raise GeeAltError(f"--emit-graphs {emit_graphs} is a file; give a folder (it is created if missing)")
    plan = build_plan(load_config(config), out_dir=out, emit_graphs=emit_graphs)
    if as_json:
        typer.echo(json.dumps(plan, indent=2, sort_keys=True))
    else:
        for line in plan_summary_lines(plan):
            typer.echo(line)


@app.command("auth")
def auth_cmd(
    project: str | None = typer.Option(None, "--project", help="Cloud project (else EE_PROJECT)."),
    key: Path | None = typer.Option(None, "--key", help="Service-account JSON key file."),
) -> None:
    """Check Earth Engine credentials and project (see auth/README.md)."""
    from gee_alt.engines.ee import session

    info = session.initialize(project, key)
    who = (info.account or "user credentials") if info.method != "adc" else "application default credentials"
    typer.echo(f"Earth Engine ready: {info.method} ({who}), project {info.project}, {info.endpoint} endpoint")
