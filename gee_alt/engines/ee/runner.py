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
from gee_alt.errors import GeeAltError


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
    workers: int | None = None  # --sharpen local: processes of the local engine

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
        """What identifies this run for resuming: the merged config with its forest settings and
        sharpening mode (each year's graph is also keyed by its hash)."""
        return {
            "engine": self.name,
            "config": self.config.to_dict(),
            "rf": self.config.rf.model_dump(),
            "sharpen": self.config.ee_run.sharpen,
            "years": self.config.year_list(),
        }

    def produce(self, run, progress_record: runs.Progress, progress: ProgressFactory = no_progress) -> EngineOutput:
        """Compute and pull every year not finished in ``progress_record`` (each by its planned
        path), the site fields and the Landsat ST validation; return the cube of the years that
        succeeded, with the failed ones in ``missing_years``."""
        from gee_alt.engines.ee import plan, pull, session, tasks, thaw, validate

        cfg = self.config
        grid = cfg.grid()
        info = session.initialize(self.project, self.key, high_volume=cfg.pull.high_volume)
        if cfg.ee_run.sharpen == "local":
            return self._produce_local(run, progress_record, progress)
        years = cfg.year_list()
        done = sorted(y for y in years if progress_record.is_done(y))
        adv = progress("Earth Engine: yearly DDT", len(years))

        def report(year: int, status: str) -> None:
            if status in ("skipped", "pulled", "failed"):
                adv(1)
            if self.verbose:
                print(f"ee: {year} {status}", file=sys.stderr, flush=True)

        retry = dict(
            max_workers=cfg.pull.max_workers, max_retries=cfg.pull.max_retries, initial_delay_s=cfg.pull.initial_delay_s
        )
        paths = {y: plan.year_path(cfg, y, grid)["path"] for y in years}
        batch = None
        if "batch" in paths.values():
            root = tasks.asset_root(cfg.ee_run.asset_root, getattr(info, "project", None) or self.project)
            batch = pull.BatchOptions(root, cfg.name, cfg.ee_run.poll_interval_s)
        cube = pull.run_years(
            run,
            years,
            grid,
            lambda y: thaw.ddt_image(cfg, y, grid),
            progress_record=progress_record,
            thaw_season=f"{cfg.season.thaw_start}..{cfg.season.thaw_end}",
            progress=report,
            path_for_year=paths.get,
            batch=batch,
            frost_number_min=cfg.season.frost_number_min,
            frost_number_method=cfg.season.frost_number_method,
            frost_number_years=cfg.season.frost_number_years,
            permafrost_criterion=cfg.season.permafrost_criterion,
            permafrost_shift_weights=cfg.season.permafrost_shift_weights,
            thaw_fraction_for_year=lambda y: thaw.thaw_fraction_request(cfg, y),
            **retry,
        )
        missing = {y: r for y, r in progress_record.failed().items() if isinstance(y, int)}
        if cube is None:
            first = next(iter(sorted(missing.items())), (None, "no year"))
            raise GeeAltError(f"no year could be computed on Earth Engine ({first[0]}: {first[1]}); see the plan")
        fields = pull.pull_fields(
            run, thaw.site_fields_image(cfg, grid), grid, progress_record=progress_record, **retry
        )
        ok_years = [int(y) for y in cube.year.values]
        checks = validate.fetch_validation(
            cfg, ok_years, grid, max_retries=cfg.pull.max_retries, initial_delay_s=cfg.pull.initial_delay_s
        )
        return EngineOutput(
            validate_ddt_cube(cube),
            SiteFields(dem_m=fields[0], ndvi_mean=fields[1]),
            done,
            missing_years=missing,
            validation=validation_entry(checks),
        )

    def _produce_local(self, run, progress_record: runs.Progress, progress: ProgressFactory) -> EngineOutput:
        """``--sharpen local``: pull the year's composites into ``RUN/inputs`` (the local input
        layout), then the local engine sharpens them (one sharpening code path for both engines)."""
        from gee_alt.engines.ee import local_inputs
        from gee_alt.engines.local.engine import LocalEngineParams
        from gee_alt.engines.local.runner import LocalEngine

        cfg = self.config
        inputs = runs.inputs_dir(run)
        adv = progress("Earth Engine: composites", len(cfg.year_list()) + 1)
        missing = local_inputs.pull_inputs(cfg, inputs, progress_record, progress=lambda *a: adv(1))
        years = [y for y in cfg.year_list() if y not in missing]
        if not years:
            first = next(iter(sorted(missing.items())), (None, "no year"))
            raise GeeAltError(f"no year's composites could be pulled from Earth Engine ({first[0]}: {first[1]})")
        # the config's [season] (thaw season, sparse-season rule, frost number, permafrost rule), as
        # `run --engine local --config` uses it: the pulled composites cover the whole year
        params = LocalEngineParams.from_season(cfg.season, rf=cfg.rf, workers=self.workers)
        local = LocalEngine(inputs, years, params, name=self.name)
        local.preflight()
        out = local.produce(run, progress_record, progress)
        out.missing_years = missing
        return out


def validation_entry(checks: dict) -> dict:
    """The Landsat ST validation as ``validation.json`` keys: ``landsat_st_degc`` (a table: all
    years pooled, then one row per year with n, rmse_degc, bias_degc, r2) and its method/failures."""
    keys = ("n", "rmse_degc", "bias_degc", "r2")
    table = {"all years": {k: checks["overall"].get(k) for k in keys}}
    for row in checks["per_year"]:
        if "error" not in row:
            table[str(row["year"])] = {k: row.get(k) for k in keys}
    out = {"landsat_st_degc": table, "landsat_st_method": checks["method"]}
    if checks["failed_years"]:
        out["landsat_st_failed"] = {str(r["year"]): r["error"] for r in checks["per_year"] if "error" in r}
    return out
