"""Earth Engine commands for the ``gee-alt`` CLI: ``plan`` and ``auth``, and :func:`run_ee`.

The main CLI calls :func:`register` on its typer app and :func:`run_ee` for
``run --engine ee``; user errors are raised as :class:`GeeAltError` (exit 2, one line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from gee_alt.config import StudyConfig, load_config
from gee_alt.errors import GeeAltError  # noqa: F401  (raised by the commands; re-exported for callers)


def _as_config(config: StudyConfig | str | Path | None) -> StudyConfig:
    """A :class:`StudyConfig` from a config object, a TOML path or ``None`` (defaults)."""
    return config if isinstance(config, StudyConfig) else load_config(config)


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
        f"(+ RAW_REGRESSION spread)",
    ]
    for year, v in plan["per_year"].items():
        landsat = ",".join(f"{m['mission']}:{m['thermal']}" for m in v["landsat"])
        lst = "+".join(c.split("/")[-1] for c in v["lst"]["collections"])
        lines.append(f"  {year}: LST {lst}; Landsat {landsat}; graph {v['graph_sha256'][:12]}"
                     f"{' (done)' if v['skip'] else ''}")
    return lines


def run_ee(config: StudyConfig | str | Path | None, project: str | None, key: str | Path | None,
           out_dir: str | Path, progress: bool = True):
    """Run the Earth Engine engine: authenticate, pull every unfinished year into
    ``OUT/ddt/ddt_YYYY.tif`` (+ ``manifest_ee.json``) and return the DDT cube (xarray Dataset).

    Raises :class:`GeeAltError` without credentials (pointing at ``auth/README.md``).
    """
    from gee_alt.engines.ee import pull, session, thaw

    cfg = _as_config(config)
    grid = cfg.grid()
    session.initialize(project, key, high_volume=cfg.pull.high_volume)

    def report(year: int, status: str) -> None:
        if progress:
            print(f"ee: {year} {status}", file=sys.stderr, flush=True)

    return pull.run_years(out_dir, cfg.year_list(), grid, lambda y: thaw.ddt_image(cfg, y, grid),
                          max_workers=cfg.pull.max_workers, max_retries=cfg.pull.max_retries,
                          initial_delay_s=cfg.pull.initial_delay_s,
                          thaw_season=f"{cfg.season.thaw_start}..{cfg.season.thaw_end}", progress=report)


def register(app: typer.Typer) -> None:
    """Add the ``plan`` and ``auth`` commands to ``app``."""

    @app.command("plan")
    def plan_cmd(
        config: Optional[Path] = typer.Option(None, "--config", help="Study config TOML (default: Datong study)."),
        as_json: bool = typer.Option(False, "--json", help="Print only the plan as JSON."),
        emit_graphs: Optional[Path] = typer.Option(None, "--emit-graphs", help="Write graph_YYYY.json files here."),
        out: Optional[Path] = typer.Option(None, "--out", help="Run dir: report years already done there."),
    ) -> None:
        """Build every year's Earth Engine graph offline (no credentials) and print the plan."""
        from gee_alt.engines.ee.plan import build_plan

        if emit_graphs is not None and emit_graphs.exists() and not emit_graphs.is_dir():
            raise GeeAltError(f"--emit-graphs {emit_graphs} is a file; give a folder (it is created if missing)")
        cfg = _as_config(config)
        plan = build_plan(cfg, out_dir=out, emit_graphs=emit_graphs)
        if as_json:
            typer.echo(json.dumps(plan, indent=2, sort_keys=True))
        else:
            for line in plan_summary_lines(plan):
                typer.echo(line)

    @app.command("auth")
    def auth_cmd(
        project: Optional[str] = typer.Option(None, "--project", help="Cloud project (else EE_PROJECT)."),
        key: Optional[Path] = typer.Option(None, "--key", help="Service-account JSON key file."),
    ) -> None:
        """Check Earth Engine credentials and project (see auth/README.md)."""
        from gee_alt.engines.ee import session

        info = session.initialize(project, key)
        who = (info.account or "user credentials") if info.method != "adc" else "application default credentials"
        typer.echo(f"Earth Engine ready: {info.method} ({who}), project {info.project}, {info.endpoint} endpoint")
