"""The Earth Engine engine's side of a run: settings, session, pulls, and the products it hands over.

:class:`EarthEngine` keeps the :class:`gee_alt.engines.Engine` contract: it initialises the
session, pulls every unfinished year's DDT image (:func:`gee_alt.engines.ee.pull.run_years`)
and, once per run, the DEM and mean NDVI the site screen needs
(:func:`gee_alt.engines.ee.thaw.site_fields_image`), all recorded in the run's shared resume
record. The downstream then runs exactly as for the local engine.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from gee_alt import runs
from gee_alt.config import StudyConfig
from gee_alt.cube import validate_ddt_cube
from gee_alt.downstream import SiteFields, site_bbox_lonlat
from gee_alt.engines import EngineOutput, ProgressFactory, no_progress


@dataclass
class EarthEngine:
    """The Earth Engine engine for a validated study config.

    ``project``/``key``: Cloud project and service-account key (see ``auth/README.md``; both
    optional where the environment provides them); ``verbose``: one stderr line per year.
    """

    config: StudyConfig
    project: str | None = None
    key: str | Path | None = None
    verbose: bool = False
    name: str = "ee"
    synthetic: bool = False

    def preflight(self) -> None:
        """Check the key file (if any) before any output is written; credentials are checked at
        the start of :meth:`produce` (the session needs the network)."""
        from gee_alt.engines.ee import session

        key_path = session.resolve_key_path(self.key)
        if key_path is not None:
            session.read_service_account_key(key_path)

    def bbox_lonlat(self) -> tuple[float, float, float, float]:
        """The output grid's lon/lat bounds (degrees)."""
        return site_bbox_lonlat(self.config.grid())

    def settings(self) -> dict:
        """What identifies this run for resuming: the merged config with its forest settings
        (each year's graph is also keyed by its hash)."""
        return {"engine": self.name, "config": self.config.to_dict(), "rf": self.config.rf.model_dump()}

    def produce(self, run, progress_record: runs.Progress, progress: ProgressFactory = no_progress) -> EngineOutput:
        """Pull every year not finished in ``progress_record`` and the site fields; return the cube."""
        from gee_alt.engines.ee import pull, session, thaw

        cfg = self.config
        grid = cfg.grid()
        session.initialize(self.project, self.key, high_volume=cfg.pull.high_volume)
        years = cfg.year_list()
        done = sorted(y for y in years if progress_record.is_done(y))
        adv = progress("Earth Engine: yearly DDT", len(years))

        def report(year: int, status: str) -> None:
            adv(1)
            if self.verbose:
                print(f"ee: {year} {status}", file=sys.stderr, flush=True)

        retry = dict(
            max_workers=cfg.pull.max_workers, max_retries=cfg.pull.max_retries, initial_delay_s=cfg.pull.initial_delay_s
        )
        cube = pull.run_years(
            run,
            years,
            grid,
            lambda y: thaw.ddt_image(cfg, y, grid),
            progress_record=progress_record,
            thaw_season=f"{cfg.season.thaw_start}..{cfg.season.thaw_end}",
            progress=report,
            **retry,
        )
        fields = pull.pull_fields(
            run, thaw.site_fields_image(cfg, grid), grid, progress_record=progress_record, **retry
        )
        return EngineOutput(validate_ddt_cube(cube), SiteFields(dem_m=fields[0], ndvi_mean=fields[1]), done)
