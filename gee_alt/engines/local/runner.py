"""The local engine's side of a run: settings, preflight, resume, and the products it hands over.

:class:`LocalEngine` keeps the :class:`gee_alt.engines.Engine` contract on an input directory
(:mod:`gee_alt.engines.local.layout`): each finished year's DDT is written with
:func:`gee_alt.runs.write_ddt_year` and recorded in the run's :class:`gee_alt.runs.Progress`
together with its 30 m NDVI (kept in ``RUN/.resume`` for the run's NDVI mean), so an
interrupted run resumes without recomputing finished years and ends byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.cube import make_ddt_cube, validate_ddt_cube
from gee_alt.downstream import SiteFields, site_bbox_lonlat
from gee_alt.engines import EngineOutput, ProgressFactory, no_progress
from gee_alt.engines.local.engine import LocalEngineParams, run_local
from gee_alt.engines.local.layout import InputLayout
from gee_alt.io import atomic_path, read_raster

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
        """Open and check every input file of the run's years before any output is written."""
        self.layout.preflight(self.years)

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
        """Compute every year not finished in ``progress_record``; return the cube of all years."""
        run = Path(run)
        done = {y for y in self.years if progress_record.is_done(y)}
        todo = [y for y in self.years if y not in done]
        grid = self.layout.grid

        def keep_ndvi(year, products):
            with atomic_path(progress_record.extra_path("ndvi", year)) as tmp, open(tmp, "wb") as f:
                np.save(f, np.asarray(products["ndvi_30m"], "float32"))
            if self.on_year:
                self.on_year(year, products)

        seasons: dict[int, str] = {}

        def finished(res):
            year = res["year"]
            seasons[year] = res["season"]
            path = runs.write_ddt_year(
                run,
                year,
                res["ddt"],
                grid,
                ddt_sd_degc_days=res["ddt_sd"],
                n_obs=res["n_obs"],
                engine=self.name,
                method=LOCAL_METHOD,
                season=res["season"],
                synthetic=self.synthetic,
            )
            progress_record.mark_done(year, [path, progress_record.extra_path("ndvi", year)])

        adv = progress("Sharpening NDVI and LST, DDT", len(todo))
        computed = run_local(
            self.layout,
            self.years,
            self.params,
            synthetic=self.synthetic,
            on_year=keep_ndvi,
            progress=adv,
            skip_years=done,
            on_result=finished,
        )
        cube = self._all_years(run, computed, done, seasons)
        ndvi_sum = 0
        for y in self.years:
            ndvi_sum = ndvi_sum + np.load(progress_record.extra_path("ndvi", y))
        lc = self.layout.landcover.data[0] if self.layout.landcover is not None else None
        fields = SiteFields(
            dem_m=self.layout.dem.data[0], ndvi_mean=(ndvi_sum / len(self.years)).astype("float32"), landcover=lc
        )
        return EngineOutput(validate_ddt_cube(cube), fields, sorted(done))

    def _all_years(self, run: Path, computed, done: set[int], seasons: dict[int, str]):
        """The cube of all years: computed ones from memory, finished ones read once from their
        COG. Its ``thaw_season`` is the last year's (as in an uninterrupted run)."""
        ddt, sd, nobs = {}, {}, {}
        if computed is not None:
            for i, y in enumerate(computed["year"].values):
                y = int(y)
                ddt[y], sd[y], nobs[y] = (computed[v].values[i] for v in ("ddt_degc_days", "ddt_sd_degc_days", "n_obs"))
        for y in sorted(done):
            r = read_raster(runs.ddt_path(run, y), bands=3)
            ddt[y], sd[y], nobs[y] = r.data[0], r.data[1], np.nan_to_num(r.data[2]).astype("int16")
            seasons[y] = r.tags.get("thaw_season", "")
        ys = list(self.years)
        return make_ddt_cube(
            np.stack([ddt[y] for y in ys]),
            ys,
            self.layout.grid,
            ddt_sd_degc_days=np.stack([sd[y] for y in ys]),
            n_obs=np.stack([nobs[y] for y in ys]),
            engine=self.name,
            synthetic=self.synthetic,
            thaw_season=seasons[ys[-1]],
            extra_attrs={
                "method": LOCAL_METHOD,
                "n_estimators": self.params.rf.n_estimators,
                "seed": self.params.rf.random_state,
            },
        )


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
