"""Tools outside a run: ``info``, ``downscale`` (the general sharpener), ``insitu import-calm``."""

from __future__ import annotations

from pathlib import Path

import typer

from gee_alt import __version__
from gee_alt.cli._common import JSON, OVERWRITE, QUIET, app, check_output_file, echo_json, insitu_app, progress_bars
from gee_alt.errors import GeeAltError


@app.command()
def info() -> None:
    """Print the package version and the versions of the libraries it runs on."""
    import numpy
    import rasterio
    import sklearn
    import xarray

    typer.echo(f"gee-alt {__version__}")
    for mod in (numpy, xarray, sklearn, rasterio):
        typer.echo(f"  {mod.__name__} {mod.__version__}")
    typer.echo(f"  GDAL {rasterio.__gdal_version__}")
    try:
        import ee

        typer.echo(f"  earthengine-api {ee.__version__}")
    except ImportError:
        typer.echo("  earthengine-api not installed")


@app.command()
def downscale(
    coarse: Path = typer.Argument(..., help="Coarse raster to sharpen (any CRS; every band is sharpened)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output GeoTIFF on the fine grid (float32, nodata NaN)."),
    dem: Path | None = typer.Option(
        None, help="Fine DEM (m): defines the grid; adds slope, northness, eastness, illumination."
    ),
    predictor: list[Path] | None = typer.Option(
        None, "--predictor", "-p", help="Fine predictor raster (repeatable; all on one grid)."
    ),
    seed: int = typer.Option(0, help="Seed of the forest."),
    trees: int = typer.Option(40, help="Trees in the forest."),
    no_residual_correction: bool = typer.Option(
        False, "--no-residual-correction", help="Do not add back the coarse residual."
    ),
    temperature: bool = typer.Option(
        False, "--temperature", help="Bands are temperatures in degC: aggregate radiance-like (T^4)."
    ),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
    as_json: bool = JSON,
) -> None:
    """Sharpen a coarse raster to a fine grid with a random forest (a general tool, any rasters)."""
    from gee_alt.engines.local.downscale import downscale_files

    check_output_file(out, overwrite)
    with progress_bars(quiet or as_json) as progress:
        res = downscale_files(
            coarse,
            out,
            dem=dem,
            predictors=list(predictor or []),
            seed=seed,
            trees=trees,
            residual_correction=not no_residual_correction,
            temperature=temperature,
            progress=progress,
        )
    if as_json:
        echo_json(res)
    elif not quiet:
        typer.echo(
            f"{out}: {res['bands']} band(s) on {res['width']}x{res['height']} px, "
            f"trained on {res['n_train']} coarse pixels"
        )


@insitu_app.command("import-calm")
def import_calm_cmd(
    calm_csv: Path = typer.Argument(..., help="CALM summary table (';'-separated)."),
    out: Path = typer.Option(..., "--out", "-o", help="Tidy in-situ CSV to write."),
    bbox: str | None = typer.Option(None, help="Keep sites in west,south,east,north (degrees)."),
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Import the CALM summary table into the tidy in-situ schema; every site imported or reported."""
    from gee_alt.insitu.calm import import_calm
    from gee_alt.insitu.table import write_insitu

    if not calm_csv.exists():
        raise GeeAltError(f"CALM table not found: {calm_csv}")
    check_output_file(out, overwrite)
    box = None
    if bbox:
        try:
            box = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            raise GeeAltError(f"--bbox must be west,south,east,north in degrees, got '{bbox}'")
    table, report = import_calm(calm_csv, bbox=box)
    write_insitu(out, table)
    if as_json:
        echo_json({"rows": len(table), "sites": int(len(set(table.site_id))), "reported": [list(r) for r in report]})
    else:
        typer.echo(f"{out}: {len(table)} rows from {len(set(table.site_id))} sites; {len(report)} notes:")
        for where, why in report:
            typer.echo(f"  {where}: {why}")
