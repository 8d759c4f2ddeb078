"""The ``gee-alt`` command line (typer): parse, call, print. Exit 2 + one line on user errors.

Logic lives in :mod:`gee_alt.pipeline` and below; the command modules only turn arguments into
calls, show progress (rich, on stderr) and print results (``--json``: only JSON on stdout):

- :mod:`~gee_alt.cli.run_commands`: ``demo``, ``run`` (both engines);
- :mod:`~gee_alt.cli.step_commands`: ``calibrate``, ``alt``, ``validate``, ``trend`` on a run directory;
- :mod:`~gee_alt.cli.viz_commands`: ``report``, ``map``;
- :mod:`~gee_alt.cli.ee_commands`: ``plan``, ``auth``;
- :mod:`~gee_alt.cli.tool_commands`: ``info``, ``downscale``, ``insitu import-calm``.

Shared options and helpers are in :mod:`~gee_alt.cli._common` (imported by every command
module; it imports none of them, so there is no cycle).
"""

from __future__ import annotations

import os
import sys

import typer

from gee_alt.cli import (  # noqa: F401 (registers)
    disturbance_commands,
    ee_commands,
    prepare_commands,
    run_commands,
    step_commands,
    tool_commands,
    viz_commands,
)
from gee_alt.cli._common import app
from gee_alt.errors import GeeAltError, GeeAltWarning
from gee_alt.memory import bound_gdal_cache_of_processes

__all__ = ["app", "main"]


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
    """Entry point: run the app and turn every way it can end into an exit code.

    - usage errors (unknown option or command, missing argument, bad value): typer's usual
      usage line and one ``Error: ...`` line on stderr, exit 2;
    - :class:`GeeAltError`: one ``error: ...`` line on stderr, exit 2;
    - anything else is a bug and keeps its traceback.

    typer >= 0.26 vendors its own click, so click's exception classes are not the ones raised:
    they are caught through typer's public names (``typer.TyperException``, public since typer
    0.27.2, is the base of its usage errors; ``typer.Exit``, ``typer.Abort``). The typer range is
    pinned in pyproject.toml.
    """
    _quiet_library_warnings()
    # GDAL's default block cache is 5 % of the RAM: reading many large rasters (every year's COG)
    # would keep ~1.2 GB of blocks resident on a 24 GB machine, whatever the tile or chunk
    bound_gdal_cache_of_processes()
    command = typer.main.get_command(app)
    try:
        # standalone_mode=False: errors come back here instead of typer printing them (as a
        # rich panel) and exiting; an explicit exit (--help, Ctrl-C) comes back as its code.
        code = command.main(args=argv, prog_name="gee-alt", standalone_mode=False)
    except GeeAltError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)  # click's usage errors: usage line, then "Error: ..."
        if show is not None:
            show()
        else:
            typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    # a command returns None; an exit requested with a code (ctx.exit, typer.Exit, Ctrl-C -> 130)
    # is returned as that code in non-standalone mode
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)
