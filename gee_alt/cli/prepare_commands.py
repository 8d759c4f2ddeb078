"""``prepare``: the local engine's input layout built from raw NASA/USGS files (no Earth Engine)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from gee_alt.cli._common import JSON, QUIET, app, echo_json, parse_years, progress_bars
from gee_alt.errors import GeeAltError


def aoi_override(cfg, aoi: str | None):
    """The config with ``--aoi`` (``W,S,E,N`` in degrees or a GeoJSON file) as its AOI; the grid
    CRS becomes the UTM zone of the new AOI, the origin offset stays the config's."""
    if aoi is None:
        return cfg
    from gee_alt.config import read_geojson_aoi

    if Path(aoi).suffix.lower() in (".json", ".geojson") or Path(aoi).is_file():
        from shapely.geometry import shape

        geom = read_geojson_aoi(aoi)
        return dataclasses.replace(cfg, bbox=tuple(shape(geom).bounds), aoi_geometry=geom, crs=None)
    try:
        bbox = tuple(float(v) for v in aoi.split(","))
    except ValueError:
        bbox = ()
    if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
        raise GeeAltError(f"--aoi must be W,S,E,N in degrees (west<east, south<north) or a GeoJSON file; got '{aoi}'")
    return dataclasses.replace(cfg, bbox=bbox, aoi_geometry=None, crs=None)


@app.command()
def prepare(
    out: Path = typer.Option(..., "--out", help="The input folder to build (the local engine's layout)."),
    years: str | None = typer.Option(None, "--years", help="Years, e.g. 2000-2024 (default: the config's)."),
    aoi: str | None = typer.Option(None, "--aoi", help="AOI: W,S,E,N (degrees) or a GeoJSON file (default: config)."),
    dem: list[Path] = typer.Option(..., "--dem", help="DEM GeoTIFF tile or folder of tiles (repeatable)."),
    modis_lst: list[Path] = typer.Option(
        ..., "--modis-lst", help="MOD11A1/MYD11A1 C6.1 HDF4 or GeoTIFF granule, or folder (repeatable)."
    ),
    modis_ndvi: list[Path] = typer.Option(
        ..., "--modis-ndvi", help="MOD13Q1 C6.1 HDF4 or GeoTIFF granule, or folder (repeatable)."
    ),
    landsat: list[Path] = typer.Option(
        [], "--landsat", help="Landsat C2 L2 scene folder or .tar, or a folder of them (repeatable)."
    ),
    config: Path | None = typer.Option(None, "--config", help="Study config TOML: seasons, QA, grid."),
    quiet: bool = QUIET,
    as_json: bool = JSON,
) -> None:
    """Build INPUTS/ (dem.tif, modis_lst/, modis_ndvi/, landsat_ndvi/) for ``run --engine local``
    from MODIS HDF4/GeoTIFF granules, Landsat Collection 2 Level-2 scenes and DEM tiles, with the
    Earth Engine engine's QA rules, scales, daily-mean model and grids. Every input is checked
    before anything is written; a prepared year (same inputs and settings) is not redone."""
    from gee_alt.config import load_config
    from gee_alt.prepare.build import check_inputs
    from gee_alt.prepare.build import prepare as build

    cfg = aoi_override(load_config(config), aoi)
    year_list = parse_years(years, default=cfg.years)
    with progress_bars(quiet or as_json) as progress:
        inputs = check_inputs(cfg, year_list, dem, modis_lst, modis_ndvi, landsat, progress=progress)
        result = build(cfg, year_list, inputs, out, progress=progress)
    if as_json:
        echo_json(result)
    elif not quiet:
        typer.echo(f"prepared {out}: {len(result['written'])} file(s) written, {len(result['skipped'])} up to date")
