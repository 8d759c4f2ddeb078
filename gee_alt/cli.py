"""The ``gee-alt`` command line (typer): parse, call, print. Exit 2 + one line on user errors."""

from __future__ import annotations

import sys

import typer

from gee_alt import __version__
from gee_alt.errors import GeeAltError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="30 m permafrost active-layer thickness (ALT) from satellite data.")


@app.command()
def info() -> None:
    """Print the package version and the versions of the libraries it runs on."""
    import numpy, rasterio, sklearn, xarray

    typer.echo(f"gee-alt {__version__}")
    for mod in (numpy, xarray, sklearn, rasterio):
        typer.echo(f"  {mod.__name__} {mod.__version__}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a :class:`GeeAltError` becomes one line on stderr and exit 2."""
    try:
        app(args=argv, standalone_mode=False)
    except GeeAltError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
