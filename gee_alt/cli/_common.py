"""What every command module shares: the typer apps, common options, progress bars, output checks.

Command modules import from here and nothing from each other, so the package has no import
cycle; :mod:`gee_alt.cli` imports the command modules (which registers their commands).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from gee_alt.errors import GeeAltError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="30 m permafrost active-layer thickness (ALT) from satellite data.",
)
insitu_app = typer.Typer(no_args_is_help=True, help="In-situ ALT tables: import and check.")
app.add_typer(insitu_app, name="insitu")

QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or summaries (errors still print).")
JSON = typer.Option(False, "--json", help="Print the results as JSON on stdout (nothing else there).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing output.")
WORKERS = typer.Option(
    None,
    "--workers",
    help="Local Dask tasks at once: threads of one process, or worker processes with GEE_ALT_DASK_PROCESSES=1 "
    "(default: CPUs, at most 4, as many as memory allows).",
)
TILE_SIZE = typer.Option(
    512, "--tile-size", help="Tile side in 30 m pixels (local engine): memory is about the tile, not the extent."
)
DASK_ADDRESS = typer.Option(
    None,
    "--dask-address",
    envvar="GEE_ALT_DASK_ADDRESS",
    help="tcp://HOST:PORT of an existing dask.distributed scheduler (local engine; default: a local cluster).",
)


@contextlib.contextmanager
def progress_bars(quiet: bool) -> Iterator:
    """A progress factory ``(description, total) -> advance(n)`` backed by rich (stderr)."""
    if quiet or not sys.stderr.isatty():  # bars only for people watching a terminal
        yield lambda description, total: lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as prog:

        def factory(description: str, total: int):
            task = prog.add_task(description, total=total)
            return lambda n=1: prog.advance(task, n)

        yield factory


def echo_json(obj) -> None:
    """Print ``obj`` as indented, key-sorted JSON on stdout (numpy values converted)."""
    from gee_alt.io import jsonable

    typer.echo(json.dumps(jsonable(obj), indent=2, sort_keys=True))


def check_output_file(out: Path, overwrite: bool) -> Path:
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


def check_input_file(path: Path, what: str) -> Path:
    """An input file that must exist and be a file."""
    path = Path(path)
    if not path.exists():
        raise GeeAltError(f"{what} not found: {path}")
    if path.is_dir():
        raise GeeAltError(f"{what} {path} is a directory, not a file; give the file")
    return path


def check_at_least(value: int | None, minimum: int, option: str) -> None:
    """A whole-number option that must be at least ``minimum`` (``None`` = not given)."""
    if value is not None and value < minimum:
        raise GeeAltError(f"{option} must be at least {minimum}, got {value}")


def parse_years(text: str | None, default: tuple[int, int] = (2000, 2024), lo: int = 1980, hi: int = 2100) -> list[int]:
    """``"2000-2024"``, ``"2005"`` or ``"2000,2003,2010"`` -> sorted list of years; one-line error otherwise."""
    if text is None or str(text).strip() == "":
        return list(range(default[0], default[1] + 1))
    s = str(text).strip()
    try:
        if "-" in s[1:]:
            a, b = s.split("-", 1)
            y0, y1 = int(a), int(b)
            if y0 > y1:
                raise GeeAltError(f"year range '{s}' is reversed; write it as {y1}-{y0}")
            years = list(range(y0, y1 + 1))
        else:
            years = sorted({int(v) for v in s.split(",") if v.strip()})
    except ValueError:
        raise GeeAltError(f"years must look like 2000-2024, 2005 or 2000,2005; got '{s}'") from None
    if not years:
        raise GeeAltError("no year given")
    bad = [y for y in years if not lo <= y <= hi]
    if bad:
        raise GeeAltError(f"year {bad[0]} is outside {lo}-{hi}")
    return years
