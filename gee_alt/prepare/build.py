"""Build the local input layout from raw files: check everything first, then write year by year.

:func:`check_inputs` opens every given file before anything is written (product, collection,
layers, Landsat collection/level, DEM tiles, coverage of the AOI): bad input stops with one
:class:`GeeAltError` line naming the file. :func:`prepare` then writes ``dem.tif`` and each
year's three files atomically (:func:`gee_alt.export.cog.write_cog`). Each written file carries
the tag ``prepare_key`` (SHA-256 of the year's inputs — names, sizes, modification times — and
of the settings that shape it); a rerun skips a file whose key is unchanged (resumable).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.config import StudyConfig
from gee_alt.engines.local.layout import InputPaths
from gee_alt.errors import GeeAltError, GeeAltWarning
from gee_alt.grid import Grid, shape_yx
from gee_alt.prepare import dem as prep_dem
from gee_alt.prepare import landsat as prep_landsat
from gee_alt.prepare import lst as prep_lst
from gee_alt.prepare import ndvi as prep_ndvi
from gee_alt.prepare.modis_files import ModisGranule, expand_paths, open_granule, same_collection, window_in

KEY_TAG = "prepare_key"
SOURCE = "gee-alt prepare (raw NASA/USGS files)"


@dataclass
class PrepareInputs:
    """The checked inputs of a prepare run."""

    dem_tiles: list[Path]
    lst: list[ModisGranule]
    ndvi: list[ModisGranule]
    landsat: list[prep_landsat.LandsatScene]
    grids: dict[str, Grid] = field(default_factory=dict)


def _coverage(granules: list[ModisGranule], grid: Grid, what: str) -> None:
    """Raise unless the granules' tiles together cover ``grid`` without its one-cell margin."""
    if not granules:
        return
    covered = np.zeros(shape_yx(grid), bool)
    seen = set()
    for g in granules:
        key = g.grid["crs_transform"][2], g.grid["crs_transform"][5]
        if key in seen:
            continue
        seen.add(key)
        win = window_in(g.grid, grid)
        if win is not None:
            _, _, r, c, h, w = win
            covered[r : r + h, c : c + w] = True
    inner = covered[1:-1, 1:-1]
    if not inner.any():
        raise GeeAltError(f"{granules[0].path}: the {what} tiles given do not overlap the AOI")
    if not inner.all():
        raise GeeAltError(
            f"{granules[0].path}: the {what} tiles given do not cover the AOI "
            f"({(~inner).mean():.0%} of its MODIS cells are outside every tile); add the missing tiles"
        )


def check_inputs(
    cfg: StudyConfig, years: list[int], dem, modis_lst, modis_ndvi, landsat, progress=None
) -> PrepareInputs:
    """Open and check every input (one line naming the first bad file); nothing is written."""
    fine = cfg.grid()
    grids = {"fine": fine, "lst": prep_lst.lst_grid(fine), "ndvi": prep_ndvi.ndvi_grid(fine)}
    dem_tiles = expand_paths(dem)
    prep_dem.check_dem_tiles(dem_tiles)
    lst_files, ndvi_files = expand_paths(modis_lst), expand_paths(modis_ndvi)
    tick = progress("checking inputs", len(lst_files) + len(ndvi_files)) if progress else (lambda n=1: None)
    lst, ndvi = [], []
    for paths, kind, out in ((lst_files, "lst", lst), (ndvi_files, "ndvi", ndvi)):
        for p in paths:
            g = open_granule(p)
            if g.kind != kind:
                flag = "--modis-lst" if kind == "lst" else "--modis-ndvi"
                raise GeeAltError(f"{p}: {g.product} given to {flag}, which takes {_products(kind)}")
            out.append(g)
            tick(1)
    same_collection(lst)
    same_collection(ndvi)
    _coverage(lst, grids["lst"], "MOD11A1/MYD11A1")
    _coverage(ndvi, grids["ndvi"], "MOD13Q1")
    scenes = [prep_landsat.open_scene(p) for p in _landsat_sources(landsat)]
    in_seasons = [
        s for s in scenes if any(a <= s.date < b for a, b in (prep_ndvi.growing_season(cfg, y) for y in years))
    ]
    if not in_seasons:
        raise GeeAltError(
            f"no Landsat Collection 2 Level-2 scene in the growing season ({cfg.season.growing_start} to "
            f"{cfg.season.growing_end}) of any year {years[0]}-{years[-1]} among the --landsat inputs"
        )
    for y in years:
        if not prep_lst.year_granules(lst, cfg, y):
            raise GeeAltError(f"no MOD11A1/MYD11A1 granule in the {y} thaw season among the --modis-lst files")
        if not prep_ndvi.year_granules(ndvi, cfg, y):
            raise GeeAltError(f"no MOD13Q1 granule in the {y} growing season among the --modis-ndvi files")
    return PrepareInputs(dem_tiles, lst, ndvi, scenes, grids)


def _products(kind: str) -> str:
    return "MOD11A1/MYD11A1 daily LST" if kind == "lst" else "MOD13Q1 NDVI"


def _landsat_sources(items) -> list[Path]:
    """Scene folders and .tar files; a folder holding scene folders/tars is expanded one level."""
    out = []
    for it in items or []:
        p = Path(it)
        is_scene = prep_landsat.looks_like_scene(p)
        if p.is_dir() and not is_scene:
            out += sorted(q for q in p.iterdir() if q.is_dir() or q.suffix.lower() == ".tar")
        else:
            out.append(p)
    return out


def _key(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            st = part.stat()
            part = (str(part.resolve()), st.st_size, st.st_mtime_ns)
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _done(path: Path, key: str) -> bool:
    if not path.exists():
        return False
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.tags().get(KEY_TAG) == key
    except Exception:
        return False


def prepare(
    cfg: StudyConfig,
    years: list[int],
    inputs: PrepareInputs,
    out: str | Path,
    progress: Callable | None = None,
) -> dict[str, list[str]]:
    """Write the layout under ``out``; returns ``{"written": [...], "skipped": [...]}`` (paths)."""
    from gee_alt.export.cog import write_cog
    from gee_alt.io import remove_stray_temporaries

    paths = InputPaths(out)
    if Path(out).is_dir():
        remove_stray_temporaries(out)  # left by an interrupted prepare
    fine, lst_grid, ndvi_grid = inputs.grids["fine"], inputs.grids["lst"], inputs.grids["ndvi"]
    done: dict[str, list[str]] = {"written": [], "skipped": []}
    bar = progress or (lambda description, total: lambda n=1: None)

    dem_path = runs.dem_path(out)
    key = _key("dem", fine, *inputs.dem_tiles)
    if _done(dem_path, key):
        done["skipped"].append(str(dem_path))
    else:
        tick = bar("DEM", 1)
        elev = prep_dem.dem_on_grid(inputs.dem_tiles, fine)
        write_cog(
            dem_path,
            elev,
            fine,
            tags={"units": "m", "quantity": "elevation", "source": SOURCE, KEY_TAG: key},
            band_descriptions=["elevation_m"],
        )
        tick(1)
        done["written"].append(str(dem_path))

    for y in years:
        lst_g = prep_lst.year_granules(inputs.lst, cfg, y)
        ndvi_g = prep_ndvi.year_granules(inputs.ndvi, cfg, y)
        start, end = prep_ndvi.growing_season(cfg, y)
        scenes = [s for s in inputs.landsat if start <= s.date < end]
        season, qa = cfg.season.model_dump(), cfg.qa.model_dump()
        ytag = {"year": y, "source": SOURCE}

        path = paths.modis_lst_path(y)
        key = _key("lst", y, lst_grid, season, qa, *[g.path for g in lst_g])
        if _done(path, key):
            done["skipped"].append(str(path))
        else:
            data, windows = prep_lst.composite_year(inputs.lst, cfg, y, lst_grid, bar(f"{y} MODIS LST", len(lst_g)))
            platforms = sorted({g.product for g in lst_g})
            write_cog(
                path,
                data,
                lst_grid,
                tags={
                    **ytag,
                    "units": "degC",
                    "quantity": prep_lst.QUANTITY,
                    "sensor": "+".join(platforms),
                    KEY_TAG: key,
                },
                band_descriptions=[w.start for w in windows],
                band_tags=[{"days": w.days} for w in windows],
            )
            done["written"].append(str(path))

        path = paths.modis_ndvi_path(y)
        key = _key("ndvi", y, ndvi_grid, season, qa, *[g.path for g in ndvi_g])
        if _done(path, key):
            done["skipped"].append(str(path))
        else:
            data = prep_ndvi.composite_year(inputs.ndvi, cfg, y, ndvi_grid, bar(f"{y} MODIS NDVI", len(ndvi_g)))
            write_cog(
                path,
                data,
                ndvi_grid,
                tags={
                    **ytag,
                    "units": "1",
                    "quantity": "growing-season median NDVI",
                    "sensor": "MOD13Q1",
                    KEY_TAG: key,
                },
                band_descriptions=["ndvi"],
            )
            done["written"].append(str(path))

        path = paths.landsat_ndvi_path(y)
        key = _key("landsat", y, fine, season, qa, *[s.source for s in scenes])
        if _done(path, key):
            done["skipped"].append(str(path))
        else:
            if not scenes:
                warnings.warn(
                    f"no Landsat scene in the {y} growing season: landsat_ndvi/ndvi_{y}.tif is all NaN",
                    GeeAltWarning,
                    stacklevel=2,
                )
            data = prep_landsat.composite_year(
                scenes, start, end, fine, cfg.qa.landsat_mask_snow, bar(f"{y} Landsat NDVI", shape_yx(fine)[0])
            )
            write_cog(
                path,
                data,
                fine,
                tags={
                    **ytag,
                    "units": "1",
                    "quantity": "growing-season median clear-sky NDVI",
                    "sensor": "+".join(sorted({s.product_id[:4] for s in scenes})) or "none",
                    KEY_TAG: key,
                },
                band_descriptions=["ndvi"],
            )
            done["written"].append(str(path))
    return done
