"""The local engine's side of a run: settings, preflight, resume, and the products it hands over.

:class:`LocalEngine` keeps the :class:`gee_alt.engines.Engine` contract on an input directory
(:mod:`gee_alt.engines.local.layout`). The work runs tiled on Dask
(:mod:`gee_alt.engines.local.tiled`, :mod:`gee_alt.engines.local.cluster`); each finished
year's DDT COG is streamed from its tiles and recorded in the run's :class:`gee_alt.runs.Progress`
together with its 30 m NDVI tiles (kept in ``RUN/.resume`` for the run's NDVI mean), and every
finished tile's files stay in ``RUN/.resume/work-<tile px>/``, so an interrupted run resumes
without recomputing finished tiles or years and ends byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.cube import validate_ddt_cube
from gee_alt.downstream import SiteFields, site_bbox_lonlat
from gee_alt.engines import EngineOutput, ProgressFactory, no_progress
from gee_alt.engines.local.engine import LocalEngineParams
from gee_alt.engines.local.layout import InputLayout
from gee_alt.engines.local.tiles import read_tile
from gee_alt.errors import GeeAltError
from gee_alt.grid import shape_yx

LOCAL_METHOD = "RF sharpening (local engine, scikit-learn)"


@dataclass
class LocalEngine:
    """The local engine on ``inputs`` (see :mod:`gee_alt.engines.local.layout`).

    ``years``: the years to run (default: all the inputs have); ``params``: forest and worker
    settings; ``synthetic``: the inputs are a synthetic scene (tags every product);
    ``on_year(year, products)``: called in year order with the year's intermediate products
    (30 m NDVI and LST, coarse inputs), e.g. to score them against a synthetic truth.
    """

    inputs: str | Path
    years: list[int] | None = None
    params: LocalEngineParams = None
    synthetic: bool = False
    on_year: Callable[[int, dict], None] | None = None
    name: str = "local"

    def __post_init__(self):
        self.layout = InputLayout(self.inputs)
        self.years = self.layout.check_years(list(self.years)) if self.years else list(self.layout.years)
        self.params = self.params or LocalEngineParams()

    def preflight(self) -> None:
        """Open and check every input file of the run's years, the tile's memory and the Dask
        scheduler before any output is written."""
        from gee_alt.engines.local.cluster import check_reachable, dask_address
        from gee_alt.engines.local.engine import default_workers, workers_for_memory

        self.layout.preflight(self.years)
        tile = self.params.tile_px
        if tile < 64:
            raise GeeAltError(f"--tile-size must be at least 64 px, got {tile}")
        h, w = shape_yx(self.layout.grid)
        n_comp = max(self.layout.modis_lst(y).raster.data.shape[0] for y in self.years[:1])
        self.address = dask_address(self.params.dask_address)
        requested = self.params.workers or default_workers()
        self.workers = workers_for_memory(min(tile, h) * min(tile, w), n_comp, requested, h * w)
        check_reachable(self.address)

    def bbox_lonlat(self) -> tuple[float, float, float, float]:
        """The DEM grid's lon/lat bounds (degrees)."""
        return site_bbox_lonlat(self.layout.grid)

    def settings(self) -> dict:
        """What identifies this run for resuming: engine, inputs (and their files), years, seed, forest."""
        return {
            "engine": self.name,
            "inputs": str(Path(self.inputs).resolve()),
            "years": list(self.years),
            "rf": self.params.rf.model_dump(),
            "synthetic": bool(self.synthetic),
            "input_files": _input_fingerprint(self.layout, self.years),
        }

    def produce(self, run, progress_record: runs.Progress, progress: ProgressFactory = no_progress) -> EngineOutput:
        """Compute every tile and year not finished; return the cube of all years."""
        from gee_alt.engines.local.cluster import LOST_CLUSTER, dask_client, lost_cluster_error
        from gee_alt.engines.local.tiled import Job, clean_year, run_tiled
        from gee_alt.engines.local.tiles import GDAL_CACHE_MB, n_tiles
        from gee_alt.memory import gdal_cache_mb

        run = Path(run)
        if not hasattr(self, "workers"):
            self.preflight()
        done = {y for y in self.years if progress_record.is_done(y)}
        todo = [y for y in self.years if y not in done]
        grid = self.layout.grid
        job = Job(
            str(Path(self.inputs).resolve()),
            str(run.resolve()),
            tuple(self.years),
            self.params,
            self.params.tile_px,
            keep_lst=self.on_year is not None,
        )
        tiles = job.tiles
        seasons: dict[int, str] = {}
        waiting: dict[int, object] = {}
        next_year = iter(todo)
        state = {"next": next(next_year, None)}

        def year_done(yd):
            seasons[yd.year] = yd.season
            progress_record.mark_done(
                yd.year, [yd.ddt_path, *yd.ndvi_tiles, *(job.path(yd.year, "ddt", t) for t in tiles)]
            )
            adv_years(1)
            waiting[yd.year] = yd
            while state["next"] in waiting:  # on_year in year order, as the in-memory engine
                y = state["next"]
                if self.on_year:
                    self.on_year(y, _products(job, y))
                clean_year(job, y, keep=("ndvi30", "ddt"))
                del waiting[y]
                state["next"] = next(next_year, None)

        adv_tiles = progress(
            f"Sharpening and DDT, {n_tiles(grid, job.tile_px)} tiles x {len(todo)} years", len(todo) * len(tiles)
        )
        adv_years = progress("Years written (DDT COG)", len(todo))
        # the tasks need the inputs' file names and grid only: the checked layout's DEM and land-cover
        # rasters are not held while the tiles run (read again for the downstream below)
        self.layout = InputLayout.for_tasks(self.inputs)
        # GDAL's block cache bounded for the tasks in this process and for the reads of every year's
        # DDT COG below (validation; at the default 5 % of the RAM these left ~330 MB of blocks
        # resident at the full study grid)
        with gdal_cache_mb(GDAL_CACHE_MB):
            if todo:
                try:
                    with dask_client(self.address, self.workers) as client:
                        run_tiled(
                            job,
                            client,
                            skip_years=done,
                            on_year_done=year_done,
                            tile_progress=adv_tiles,
                            method=LOCAL_METHOD,
                            engine=self.name,
                            synthetic=self.synthetic,
                        )
                except LOST_CLUSTER as exc:
                    raise lost_cluster_error(self.address, exc) from None
            cube = self._all_years(job, seasons)
            self.layout = InputLayout(self.inputs)  # the checked layout again, with its DEM and land cover
            lc = self.layout.landcover
            fields = SiteFields(
                dem_m=self.layout.dem.data[0],
                ndvi_mean=_ndvi_mean(job),
                landcover=lc.data[0] if lc is not None else None,
            )
            return EngineOutput(validate_ddt_cube(cube), fields, sorted(done))

    def _all_years(self, job, seasons: dict[int, str]):
        """The cube of all years opened lazily on the DDT COGs (:func:`gee_alt.runs.open_ddt_cube`:
        the downstream reads windows of it, the whole cube is never in memory). Its
        ``thaw_season`` is the last year's."""
        import json

        import rasterio

        fractions = []
        for y in self.years:
            with rasterio.open(runs.ddt_path(job.run, y)) as src:  # season and thaw progress: the COG's tags
                tags = src.tags()
            seasons.setdefault(y, tags.get("thaw_season", ""))
            fractions.append(json.loads(tags.get("ddt_fraction_by_doy", "null")) or [float("nan")] * 366)
        ys = list(self.years)
        return runs.open_ddt_cube(
            job.run,
            ys,
            engine=self.name,
            synthetic=self.synthetic,
            thaw_season=seasons[ys[-1]],
            fractions=fractions,
            extra_attrs={
                "method": LOCAL_METHOD,
                "n_estimators": self.params.rf.n_estimators,
                "seed": self.params.rf.random_state,
                "frost_number_min": self.params.frost_number_min,
                "permafrost_criterion": self.params.permafrost_criterion,
                "permafrost_shift_weights": int(self.params.permafrost_shift_weights),
                "frost_number_method": self.params.frost_number_method,
                "frost_number_years": self.params.frost_number_years,
            },
        )


def _ndvi_mean(job) -> np.ndarray:
    """The run's mean 30 m NDVI, tile by tile (summed in year order, as in memory)."""
    out = np.empty(shape_yx(job.grid), "float32")
    for t in job.tiles:
        total = 0
        for y in job.years:
            total = total + read_tile(job.path(y, "ndvi30", t))[0]
        out[t.slices()] = (total / len(job.years)).astype("float32")
    return out


def _products(job, year: int) -> dict:
    """A year's intermediate products for ``on_year`` (the demo's scoring): the coarse inputs, and
    the 30 m NDVI and LST as :class:`TiledBands` on the year's tile files (read when asked for:
    the whole-grid LST of a year, every composite, is never held at once)."""
    from gee_alt.engines.local.tiled import _load

    lst = _load(str(job.path(year, "lst_model", ext=".pkl")))
    ndvi = _load(str(job.path(year, "ndvi_model", ext=".pkl")))
    return {
        "ndvi_30m": TiledBands(job, year, "ndvi30", None),
        "lst_30m_degc": TiledBands(job, year, "lst30", lst["y"].shape[0]),
        "lst_coarse": lst["y"],
        "days": lst["days"],
        "ndvi_coarse": ndvi["y"],
    }


class TiledBands:
    """A year's 30 m layer ``kind`` of the run's grid as its tile files: ``(band, y, x)`` float32
    (``n_bands`` bands; ``None``: one 2-D band, ``(y, x)``). :meth:`at_pixels` reads only some
    pixels (one tile in memory at a time); ``np.asarray`` assembles the whole grid."""

    def __init__(self, job, year: int, kind: str, n_bands: int | None):
        self.job, self.year, self.kind, self.n_bands = job, year, kind, n_bands
        hw = shape_yx(job.grid)
        self.shape = hw if n_bands is None else (n_bands, *hw)

    def at_pixels(self, flat: np.ndarray) -> np.ndarray:
        """``(band, n)`` values at the flat (row-major) grid pixel indices ``flat`` (the same values
        as the assembled grid's)."""
        h, w = self.shape[-2:]
        flat = np.asarray(flat)
        r, c = flat // w, flat % w
        out = np.full((1 if self.n_bands is None else self.n_bands, flat.size), np.nan, "float32")
        for t in self.job.tiles:
            k = np.nonzero((r >= t.row) & (r < t.row + t.height) & (c >= t.col) & (c < t.col + t.width))[0]
            if k.size:
                out[:, k] = read_tile(self.job.path(self.year, self.kind, t))[:, r[k] - t.row, c[k] - t.col]
        return out

    def __array__(self, dtype=None, copy=None):
        out = np.empty((1 if self.n_bands is None else self.n_bands, *self.shape[-2:]), "float32")
        for t in self.job.tiles:
            r, c = t.slices()
            out[:, r, c] = read_tile(self.job.path(self.year, self.kind, t))
        out = out[0] if self.n_bands is None else out
        return out if dtype is None else out.astype(dtype)


def _input_fingerprint(layout: InputLayout, years: list[int]) -> dict:
    """Name, size and mtime of every input file the years depend on (Landsat gap filling uses all years)."""
    files = [runs.dem_path(layout.root), runs.landcover_path(layout.root)]
    for y in years:
        files += [layout.landsat_ndvi_path(y), layout.modis_ndvi_path(y), layout.modis_lst_path(y)]
    out = {}
    for f in files:
        if f.exists():
            st = f.stat()
            out[f.relative_to(layout.root).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out
