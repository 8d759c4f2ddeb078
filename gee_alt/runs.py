"""The run directory: every product name and path, the resume record, the manifest.

This module is the one place where a run directory's file names are written down; everything
else asks it for paths. Inside one ``run``/``demo`` the products flow as objects; between
commands (``calibrate``, ``alt``, ``trend``, ``report``, ``map``) this layout is the contract::

    RUN/
      manifest.json               what was produced: path, bytes, sha256, kind, year; run settings
      calibration.json            Stefan calibration: E, E_ci95, n_used, n_dropped (+ reasons), loo, ...
      validation.json             scores: in-situ (leave-one-site-out) and, for the demo, against truth
      insitu_used.csv             the in-situ rows that were read (tidy schema)
      dem.tif, ndvi_mean.tif      DEM (m) and mean 30 m NDVI of the run (site homogeneity screen)
      landcover.tif               when the inputs have one: per-class E in calibration and ALT
      ddt/ddt_YYYY.tif            thawing degree-days (°C·day); bands ddt_degc_days, ddt_sd_degc_days, n_obs
                                  (+ ddf_degc_days, clear_sky_fraction when the engine has them)
      permafrost/permafrost_YYYY.tif  permafrost class (1 permafrost, 0 none) and frost number
      alt/alt_YYYY.tif            active-layer thickness (m)
      alt/alt_sd_YYYY.tif         1-sigma predictive ALT uncertainty (m)
      alt/e_source.tif            1 = E calibrated on the pixel's land-cover class, 0 = E from the pool
                                  (band 2 with --disturbance: year from which the disturbed-ground E applies)
      disturbance_start.tif       the run's copy of --disturbance MINES: first disturbance year (0 never)
      alt/alt_YYYY.stac.json      STAC Item of each yearly ALT COG
      trend/alt_trend_cm_per_yr.tif, trend/alt_trend_p.tif, trend/trend.json
      cube.nc                     NetCDF (CF) cube of all years: ALT, ALT sd, DDT
      report/report.md, report/report.html, report/*.png
      inputs/, truth/             demo only: the synthetic input layout and the synthetic truth
      .resume/                    an unfinished run's progress (both engines); removed when it completes

The local engine's input layout (``gee-alt run --engine local --inputs DIR``) uses the same
names for the rasters the two layouts share (:data:`DEM`, :data:`LANDCOVER`, :data:`INSITU_CSV`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from gee_alt import __version__
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid
from gee_alt.io import TMP_PREFIX, sha256_file, write_json_atomic

# ------------------------------------------------------------------------------------ names
DDT_DIR, ALT_DIR, TREND_DIR, REPORT_DIR = "ddt", "alt", "trend", "report"
PERMAFROST_DIR = "permafrost"
INPUTS_DIR, TRUTH_DIR, RESUME_DIR = "inputs", "truth", ".resume"
MANIFEST, CALIBRATION, VALIDATION = "manifest.json", "calibration.json", "validation.json"
INSITU_USED, CUBE_NC = "insitu_used.csv", "cube.nc"
DEM, NDVI_MEAN, LANDCOVER, INSITU_CSV = "dem.tif", "ndvi_mean.tif", "landcover.tif", "insitu.csv"
BOREHOLES_CSV = "permafrost_boreholes.csv"
# issue 17: the calibration's area of applicability, and `gee-alt disturbance`
AOA_TIF, APPLICABILITY_JSON, DISTURBANCE_JSON = "aoa.tif", "applicability.json", "disturbance.json"
TREND_SLOPE, TREND_P, TREND_JSON = "alt_trend_cm_per_yr.tif", "alt_trend_p.tif", "trend.json"
REPORT_MD, REPORT_HTML = "report.md", "report.html"
PROGRESS = "progress.json"
# the local engine's tile scratch inside RESUME_DIR: work-<tile px>/<static|YYYY>/<step>/<tile>.tif
WORK_PREFIX, STATIC_WORK = "work-", "static"

#: Every top-level name a gee-alt run writes (anything else in a run directory is foreign).
#: the run's copy of ``--disturbance MINES`` (:func:`disturbance_start_path`)
DISTURBANCE_START = "disturbance_start.tif"
#: the run's copy of a user permafrost map (:mod:`gee_alt.permafrost_map`)
PERMAFROST_MAP_TIF = "permafrost_map.tif"
RUN_ENTRIES = frozenset(
    {
        INPUTS_DIR,
        TRUTH_DIR,
        DDT_DIR,
        ALT_DIR,
        PERMAFROST_DIR,
        TREND_DIR,
        REPORT_DIR,
        MANIFEST,
        CALIBRATION,
        VALIDATION,
        INSITU_USED,
        CUBE_NC,
        DEM,
        NDVI_MEAN,
        LANDCOVER,
        RESUME_DIR,
        AOA_TIF,
        APPLICABILITY_JSON,
        DISTURBANCE_JSON,
        DISTURBANCE_START,
        PERMAFROST_MAP_TIF,
    }
)
#: What an engine writes before the downstream starts (kept when a run resumes).
ENGINE_ENTRIES = frozenset({INPUTS_DIR, TRUTH_DIR, DDT_DIR, RESUME_DIR})
RESUME_FORMAT = 2

_YEAR = re.compile(r"_(\d{4})\.(?:tif|npy)$")


def ddt_path(run: str | os.PathLike, year: int) -> Path:
    """``RUN/ddt/ddt_YYYY.tif``."""
    return Path(run) / DDT_DIR / f"ddt_{year}.tif"


def permafrost_path(run: str | os.PathLike, year: int) -> Path:
    """``RUN/permafrost/permafrost_YYYY.tif``."""
    return Path(run) / PERMAFROST_DIR / f"permafrost_{year}.tif"


def permafrost_area_path(run: str | os.PathLike) -> Path:
    """``RUN/permafrost/presence_area.json``: the probabilistic permafrost area per year (sum of
    presence probabilities) with its bootstrap CI, when a presence model decided the permafrost."""
    return Path(run) / PERMAFROST_DIR / "presence_area.json"


def alt_path(run: str | os.PathLike, year: int) -> Path:
    """``RUN/alt/alt_YYYY.tif``."""
    return Path(run) / ALT_DIR / f"alt_{year}.tif"


def alt_sd_path(run: str | os.PathLike, year: int) -> Path:
    """``RUN/alt/alt_sd_YYYY.tif``."""
    return Path(run) / ALT_DIR / f"alt_sd_{year}.tif"


E_SOURCE = "e_source.tif"


def e_source_path(run: str | os.PathLike) -> Path:
    """``RUN/alt/e_source.tif``: 1 where E was calibrated on the pixel's class, 0 where it is the
    pooled E carried from other ground (NaN outside the map); with an E of disturbed ground a
    second band, the year from which the pixel uses it (NaN never)."""
    return Path(run) / ALT_DIR / E_SOURCE


def disturbance_start_path(run: str | os.PathLike) -> Path:
    """``RUN/disturbance_start.tif``: the run's copy of ``--disturbance MINES`` on its grid (year of
    the first disturbance, 0 never), read again by ``gee-alt alt``."""
    return Path(run) / DISTURBANCE_START


def alt_stac_path(run: str | os.PathLike, year: int) -> Path:
    """``RUN/alt/alt_YYYY.stac.json``: the STAC Item of a year's ALT COG (its assets are relative)."""
    return Path(run) / ALT_DIR / f"alt_{year}.stac.json"


def trend_slope_path(run: str | os.PathLike) -> Path:
    """``RUN/trend/alt_trend_cm_per_yr.tif``: per-pixel Theil–Sen slope of ALT (cm/yr)."""
    return Path(run) / TREND_DIR / TREND_SLOPE


def trend_p_path(run: str | os.PathLike) -> Path:
    """``RUN/trend/alt_trend_p.tif``: Mann–Kendall p-value of the ALT trend (1)."""
    return Path(run) / TREND_DIR / TREND_P


def trend_json_path(run: str | os.PathLike) -> Path:
    """``RUN/trend/trend.json``: area-mean series and trend summary."""
    return Path(run) / TREND_DIR / TREND_JSON


def dem_path(run: str | os.PathLike) -> Path:
    """``RUN/dem.tif`` (m), also the DEM of the local input layout."""
    return Path(run) / DEM


def ndvi_mean_path(run: str | os.PathLike) -> Path:
    """``RUN/ndvi_mean.tif``: mean 30 m NDVI over the run's years (1)."""
    return Path(run) / NDVI_MEAN


def landcover_path(run: str | os.PathLike) -> Path:
    """``RUN/landcover.tif`` (integer classes), also in the local input layout."""
    return Path(run) / LANDCOVER


def insitu_csv_path(folder: str | os.PathLike) -> Path:
    """``insitu.csv`` of a local input layout (the demo writes one)."""
    return Path(folder) / INSITU_CSV


def boreholes_csv_path(folder: str | os.PathLike) -> Path:
    """``permafrost_boreholes.csv`` (presence/absence of permafrost in drill holes) next to the
    in-situ table; optional: it calibrates the permafrost criterion (:mod:`gee_alt.science.permafrost`)."""
    return Path(folder) / BOREHOLES_CSV


def report_paths(run: str | os.PathLike) -> tuple[Path, Path]:
    """``(RUN/report/report.md, RUN/report/report.html)``."""
    folder = Path(run) / REPORT_DIR
    return folder / REPORT_MD, folder / REPORT_HTML


def inputs_dir(run: str | os.PathLike) -> Path:
    """``RUN/inputs``: the synthetic input layout a demo writes."""
    return Path(run) / INPUTS_DIR


def truth_name(quantity: str, year: int | None = None) -> str:
    """File name of a synthetic-truth raster: ``<quantity>_YYYY.tif`` for yearly ones (``ddt``,
    ``alt``), ``<quantity>.tif`` for static ones (``e``, ``landcover``, ``mine``)."""
    return f"{quantity}.tif" if year is None else f"{quantity}_{year}.tif"


def truth_path(run: str | os.PathLike, quantity: str, year: int | None = None) -> Path:
    """``RUN/truth/<quantity>_YYYY.tif`` or ``RUN/truth/e.tif`` (demo runs only)."""
    return Path(run) / TRUTH_DIR / truth_name(quantity, year)


def year_of(name: str) -> int | None:
    """The year in a product file name (``ddt_2010.tif``, ``ndvi_2010.npy``), else ``None``."""
    m = _YEAR.search(name)
    return int(m.group(1)) if m else None


def years_of(run: str | os.PathLike, kind: str = "ddt") -> list[int]:
    """Years present as ``RUN/<kind>/<kind>_YYYY.tif`` (kind: ``ddt`` or ``alt``)."""
    folder = Path(run) / kind
    if not folder.is_dir():
        return []
    return sorted(y for p in folder.glob(f"{kind}_[0-9][0-9][0-9][0-9].tif") if (y := year_of(p.name)) is not None)


def require_run(run: str | os.PathLike, need: str = "ddt") -> Path:
    """The run directory, checked to hold ``need`` (``ddt``, ``alt`` or ``calibration``)."""
    run = Path(run)
    if not run.is_dir():
        raise GeeAltError(f"run directory not found: {run}")
    if need in ("ddt", "alt") and not years_of(run, need):
        hint = "run 'gee-alt demo' or 'gee-alt run' first" if need == "ddt" else "run 'gee-alt alt RUN' first"
        raise GeeAltError(f"{run} has no {need}/{need}_YYYY.tif files; {hint}")
    if need == "calibration" and not (run / CALIBRATION).exists():
        raise GeeAltError(f"{run} has no {CALIBRATION}; run 'gee-alt calibrate {run} --insitu CSV' first")
    return run


# ------------------------------------------------------------------------- product tags
def product_tags(
    quantity: str,
    units: str,
    *,
    year: int | None = None,
    engine: str = "",
    method: str = "",
    season: str = "",
    synthetic: bool | int = False,
    **extra,
) -> dict:
    """The dataset tags every raster product carries (both engines write the same keys):
    ``quantity``, ``units``, ``year``, ``engine``, ``method``, ``thaw_season``, ``synthetic`` (0/1),
    plus ``extra`` (e.g. ``E``). ``gee_alt_version`` is added by the COG writer."""
    tags = {
        "quantity": quantity,
        "units": units,
        "engine": engine,
        "method": method,
        "thaw_season": season,
        "synthetic": int(bool(int(synthetic))),
    }
    if year is not None:
        tags["year"] = int(year)
    tags.update(extra)
    return tags


def _ddt_tags(year, *, engine, method, season, synthetic, extra_tags=None) -> dict:
    from gee_alt.cube import DDT_UNITS

    return product_tags(
        "thawing degree-days of land surface temperature",
        DDT_UNITS,
        year=year,
        engine=engine,
        method=method,
        season=season,
        synthetic=synthetic,
        **(extra_tags or {}),
    )


def write_ddt_year(
    run: str | os.PathLike,
    year: int,
    ddt_degc_days: np.ndarray,
    grid: Grid,
    *,
    ddt_sd_degc_days: np.ndarray | None = None,
    n_obs: np.ndarray | None = None,
    ddf_degc_days: np.ndarray | None = None,
    clear_sky_fraction: np.ndarray | None = None,
    ddt_fraction_by_doy: np.ndarray | None = None,
    engine: str,
    method: str,
    season: str,
    synthetic: bool = False,
    extra_tags: dict | None = None,
) -> Path:
    """Write one year's ``RUN/ddt/ddt_YYYY.tif`` atomically: bands ``ddt_degc_days`` (°C·day),
    ``ddt_sd_degc_days`` (°C·day), ``n_obs`` (valid composites), ``ddf_degc_days`` (°C·day, the
    winter before) and ``clear_sky_fraction`` (1), each when given.

    The one DDT writer of both engines (same bands, same tags)."""
    from gee_alt.cube import CLEAR_VAR, DDF_VAR, DDT_SD_VAR, DDT_UNITS, DDT_VAR, NOBS_VAR
    from gee_alt.export.cog import write_cog

    bands, names, units = [np.asarray(ddt_degc_days, "float32")], [DDT_VAR], [DDT_UNITS]
    for var, arr, unit in (
        (DDT_SD_VAR, ddt_sd_degc_days, DDT_UNITS),
        (NOBS_VAR, n_obs, "1"),
        (DDF_VAR, ddf_degc_days, DDT_UNITS),
        (CLEAR_VAR, clear_sky_fraction, "1"),
    ):
        if arr is not None:
            bands.append(np.asarray(arr).astype("float32"))
            names.append(var)
            units.append(unit)
    tags = _ddt_tags(year, engine=engine, method=method, season=season, synthetic=synthetic, extra_tags=extra_tags)
    if ddt_fraction_by_doy is not None:  # 366 numbers: a tag, read back by read_ddt_cube
        tags["ddt_fraction_by_doy"] = json.dumps([round(float(v), 5) for v in ddt_fraction_by_doy])
    return write_cog(
        ddt_path(run, year),
        np.stack(bands),
        grid,
        tags=tags,
        band_descriptions=names,
        band_tags=[{"units": u} for u in units],
    )


def write_ddt_year_from(
    run: str | os.PathLike,
    year: int,
    source: str | os.PathLike,
    *,
    engine: str,
    method: str,
    season: str,
    synthetic=False,
    band_names: list[str] | None = None,
    extra_tags: dict | None = None,
    ddt_fraction_by_doy: np.ndarray | None = None,
) -> Path:
    """:func:`write_ddt_year` from a float32 raster on disk (bands ``band_names``, default DDT,
    DDT sd, n_obs; e.g. the VRT mosaic of the local engine's tiles), streamed: the same bytes,
    memory about a block."""
    from gee_alt.cube import DDT_SD_VAR, DDT_UNITS, DDT_VAR, NOBS_VAR
    from gee_alt.export.cog import write_cog_from

    names = list(band_names or [DDT_VAR, DDT_SD_VAR, NOBS_VAR])
    tags = _ddt_tags(year, engine=engine, method=method, season=season, synthetic=synthetic, extra_tags=extra_tags)
    if ddt_fraction_by_doy is not None:
        tags["ddt_fraction_by_doy"] = json.dumps([round(float(v), 5) for v in ddt_fraction_by_doy])
    return write_cog_from(
        ddt_path(run, year),
        source,
        tags=tags,
        band_descriptions=names,
        band_tags=[{"units": DDT_UNITS if n.endswith("degc_days") else "1"} for n in names],
    )


def read_ddt_cube(run: str | os.PathLike, years: list[int] | None = None, *, extras: bool | tuple[str, ...] = True):
    """The DDT cube of a run read back from ``RUN/ddt/ddt_YYYY.tif`` (for the single-step
    commands; inside a run the engine hands the cube over in memory). ``extras=False``: the DDT
    band only (a third of the memory); a tuple of band names: the DDT band and those."""
    from gee_alt.cube import CLEAR_VAR, DDF_VAR, DDT_SD_VAR, DDT_VAR, NOBS_VAR, make_ddt_cube
    from gee_alt.grid import same_grid
    from gee_alt.io import read_raster

    run = require_run(run, "ddt")
    have = years_of(run, "ddt")
    years = years or have
    missing = [y for y in years if y not in have]
    if missing:
        raise GeeAltError(f"{run}/{DDT_DIR} has no file for year(s) {missing}")
    arrays: dict[str, list] = {}
    grid, tags, fractions = None, {}, []
    for y in years:
        r = read_raster(ddt_path(run, y), bands=None)
        if "ddt_fraction_by_doy" in r.tags:
            fractions.append(json.loads(r.tags["ddt_fraction_by_doy"]))
        if grid is None:
            grid, tags = r.grid, r.tags
        elif not same_grid(grid, r.grid):
            raise GeeAltError(f"ddt_{y}.tif is on another grid than ddt_{years[0]}.tif")
        names = r.descriptions if all(r.descriptions) else [DDT_VAR, DDT_SD_VAR, NOBS_VAR][: r.data.shape[0]]
        for name, band in zip(names, r.data, strict=True):
            if extras is True or name == DDT_VAR or (not isinstance(extras, bool) and name in extras):
                arrays.setdefault(name, []).append(band)
    if DDT_VAR not in arrays:
        raise GeeAltError(f"{run}/{DDT_DIR} files have no '{DDT_VAR}' band")
    sd = np.stack(arrays[DDT_SD_VAR]) if DDT_SD_VAR in arrays else None
    nobs = np.nan_to_num(np.stack(arrays[NOBS_VAR])).astype("int16") if NOBS_VAR in arrays else None
    return make_ddt_cube(
        np.stack(arrays[DDT_VAR]),
        years,
        grid,
        ddt_sd_degc_days=sd,
        n_obs=nobs,
        ddf_degc_days=np.stack(arrays[DDF_VAR]) if len(arrays.get(DDF_VAR, [])) == len(years) else None,
        clear_sky_fraction=np.stack(arrays[CLEAR_VAR]) if len(arrays.get(CLEAR_VAR, [])) == len(years) else None,
        ddt_fraction_by_doy=np.asarray(fractions, "float32") if len(fractions) == len(years) else None,
        engine=tags.get("engine", ""),
        synthetic=tags.get("synthetic", "0") in ("1", "True"),
        thaw_season=tags.get("thaw_season", ""),
        extra_attrs={
            "method": tags.get("method", ""),
            **({"frost_number_min": float(tags["frost_number_min"])} if "frost_number_min" in tags else {}),
            **_frost_setting(tags),
        },
    )


def _frost_setting(tags: dict) -> dict:
    """The frost-number setting a run's DDT COGs were made with (tags ``frost_number_method`` /
    ``frost_number_years``, and the permafrost rule ``permafrost_criterion`` /
    ``permafrost_shift_weights``) as cube attrs; none for files made before a setting existed
    (their cube then derives the single-year frost number they were made with, and the downstream
    takes the default rule)."""
    out: dict = {}
    if "frost_number_method" in tags:
        out["frost_number_method"] = tags["frost_number_method"]
        out["frost_number_years"] = int(tags.get("frost_number_years", 1))
    if "permafrost_criterion" in tags:
        out["permafrost_criterion"] = tags["permafrost_criterion"]
        out["permafrost_shift_weights"] = int(tags.get("permafrost_shift_weights", 0))
    return out


def permafrost_rule_tags(criterion: str, shift_weights: bool) -> dict:
    """DDT COG tags of the run's permafrost rule (config ``season.permafrost_criterion`` and
    ``season.permafrost_shift_weights``), so the single-step commands use the rule the run was made with."""
    return {"permafrost_criterion": str(criterion), "permafrost_shift_weights": str(int(bool(shift_weights)))}


# -------------------------------------------------------------------------- resume record
def work_dir(run: str | os.PathLike, tile_px: int) -> Path:
    """``RUN/.resume/work-<tile_px>/``: the local engine's per-tile intermediate files (each
    written atomically, so a file that exists is finished: the tile-level resume record)."""
    return Path(run) / RESUME_DIR / f"{WORK_PREFIX}{int(tile_px)}"


def work_path(
    run: str | os.PathLike, tile_px: int, year: int | None, step: str, tile: str | None = None, ext: str = ".tif"
) -> Path:
    """``work-<tile_px>/<YYYY or static>/<step>/<tile><ext>``, or ``.../<step><ext>`` without a tile."""
    d = work_dir(run, tile_px) / (STATIC_WORK if year is None else str(int(year)))
    return d / step / f"{tile}{ext}" if tile is not None else d / f"{step}{ext}"


def drop_other_work(run: str | os.PathLike, tile_px: int) -> None:
    """Remove tile scratch of another tile size (an interrupted run resumed with a new tile size)."""
    root = Path(run) / RESUME_DIR
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(WORK_PREFIX) and p.name != f"{WORK_PREFIX}{int(tile_px)}":
                shutil.rmtree(p, ignore_errors=True)


class Progress:
    """The resume record of an unfinished run, the same for both engines (``RUN/.resume/progress.json``).

    ``settings`` identify the run (engine, inputs or config, years, seeds, input fingerprint);
    resuming with other settings is refused. Each finished year records the sha256 of the files
    it wrote (relative paths) and, optionally, a ``key`` (the EE engine: the graph's sha256), so
    a year whose files or key changed is recomputed. Extra per-year files (e.g. the local
    engine's 30 m NDVI, kept for the run's NDVI mean) live in ``RUN/.resume/``.
    """

    def __init__(self, run: str | os.PathLike, settings: dict):
        self.run = Path(run)
        self.settings = {"format": RESUME_FORMAT, **settings}
        self.record: dict = {"settings": self.settings, "attempts": 0, "years": {}}

    @property
    def path(self) -> Path:
        return self.run / RESUME_DIR / PROGRESS

    def extra_path(self, name: str, year: int) -> Path:
        """``RUN/.resume/<name>_YYYY.npy``: a per-year array kept for the run (e.g. ``ndvi``)."""
        return self.extra_file(f"{name}_{year}.npy")

    def extra_file(self, name: str) -> Path:
        """``RUN/.resume/<name>``: a file kept until the run completes."""
        return self.run / RESUME_DIR / name

    def _read(self) -> dict | None:
        try:
            rec = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) else None

    def start(self, resume: bool) -> dict[int | str, dict]:
        """Begin (or continue, with ``resume``) the run; returns the finished steps (year, or a
        name such as ``site_fields``, -> record).

        Raises :class:`GeeAltError` when an interrupted run with other settings is in the way.
        Years whose files are missing or changed are not finished; their files are removed.
        """
        prev = self._read() if resume else None
        done: dict[int | str, dict] = {}
        if prev is not None:
            if prev.get("settings") != self.settings:
                raise GeeAltError(
                    f"{self.run} holds an interrupted run with other settings "
                    f"({_describe_difference(prev.get('settings') or {}, self.settings)}); "
                    "rerun with the same settings to resume it, or pass --overwrite to start over"
                )
            for key, rec in (prev.get("years") or {}).items():
                if self._intact(rec):
                    done[int(key) if key.isdigit() else key] = rec
        elif not resume:
            shutil.rmtree(self.run / RESUME_DIR, ignore_errors=True)
        self.record = {
            "settings": self.settings,
            "attempts": int((prev or {}).get("attempts", 0)) + 1,
            "years": {str(y): done[y] for y in sorted(done, key=str)},
            "failed": {},  # failed years are retried by every attempt
            "tasks": dict((prev or {}).get("tasks") or {}),  # Earth Engine batch tasks (re-polled, not resubmitted)
        }
        self._write()
        return done

    def _intact(self, rec: dict) -> bool:
        try:
            return bool(rec.get("files")) and all(
                sha256_file(self.run / rel) == sha for rel, sha in rec["files"].items()
            )
        except (OSError, AttributeError):
            return False

    def is_done(self, year: int | str, key: str | None = None) -> bool:
        """True when ``year`` (or a named step) is recorded as finished (with the same ``key``, when given)."""
        rec = self.record["years"].get(str(year))
        return rec is not None and (key is None or rec.get("key") == key)

    def mark_done(self, year: int | str, files: list[Path], *, key: str | None = None, **info) -> None:
        """Record ``year`` (or a named step) as finished with the sha256 of ``files`` (written before this call)."""
        rec = {
            "files": {Path(f).relative_to(self.run).as_posix(): sha256_file(f) for f in files},
            "attempt": self.record["attempts"],
            **info,
        }
        if key is not None:
            rec["key"] = key
        self.record["years"][str(year)] = rec
        self._write()

    def mark_failed(self, year: int | str, reason: str) -> None:
        """Record that ``year`` failed in this attempt (one line, e.g. Earth Engine's reason)."""
        self.record.setdefault("failed", {})[str(year)] = reason
        self._write()

    def failed(self) -> dict[int | str, str]:
        """The steps that failed in this attempt: year (or name) -> reason."""
        return {int(k) if k.isdigit() else k: v for k, v in (self.record.get("failed") or {}).items()}

    def note_task(self, year: int | str, info: dict | None) -> None:
        """Remember (``info``) or forget (``None``) the Earth Engine batch task of ``year``
        (operation name, asset id, graph key), so a rerun polls it instead of submitting again."""
        tasks = self.record.setdefault("tasks", {})
        if info is None:
            tasks.pop(str(year), None)
        else:
            tasks[str(year)] = info
        self._write()

    def task_of(self, year: int | str) -> dict | None:
        """The batch task recorded for ``year``, or ``None``."""
        return (self.record.get("tasks") or {}).get(str(year))

    def _write(self) -> None:
        write_json_atomic(self.path, self.record)

    def clear(self) -> None:
        """Remove ``RUN/.resume`` (the run is complete)."""
        shutil.rmtree(self.run / RESUME_DIR, ignore_errors=True)


def _describe_difference(old: dict, new: dict) -> str:
    for k in sorted(set(old) | set(new)):
        if k != "input_files" and old.get(k) != new.get(k):
            return f"{k} {old.get(k)} vs {new.get(k)} now"
    o, n = old.get("input_files", {}), new.get("input_files", {})
    changed = sorted(set(o) ^ set(n)) or sorted(k for k in n if o.get(k) != n[k])
    return f"input file {changed[0]} changed" if changed else "settings changed"


def clean_for_resume(run: str | os.PathLike, keep_years: set[int]) -> None:
    """Remove what an interrupted run left that will be redone: temporaries, downstream
    products, unfinished years (never ``inputs/``, ``truth/`` or foreign files)."""
    run = Path(run)
    for top in (run, run / DDT_DIR, run / RESUME_DIR):
        if not top.is_dir():
            continue
        for p in top.iterdir():
            name = p.name
            redo = (
                name.startswith(TMP_PREFIX)
                or (top == run and name in RUN_ENTRIES - ENGINE_ENTRIES)
                or (top != run and year_of(name) is not None and year_of(name) not in keep_years)
            )
            if redo:
                shutil.rmtree(p) if p.is_dir() else p.unlink()


# ------------------------------------------------------------------------ the directory
def prepare_run_dir(out: str | os.PathLike, overwrite: bool, *, interrupted: str = "refuse") -> tuple[Path, bool]:
    """The run directory, checked before any work; returns ``(out, resume)``.

    A completed run (``manifest.json``) or any other non-empty folder is refused unless
    ``overwrite`` (then a gee-alt run directory is removed; foreign files are never deleted).
    An interrupted run (gee-alt files, no manifest) is, by ``interrupted``: ``"resume"`` ->
    kept and continued (``resume`` True), ``"restart"`` -> removed, ``"refuse"``.
    """
    out = Path(out)
    resume = False
    if out.exists() and not out.is_dir():
        raise GeeAltError(f"--out {out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        foreign = sorted(
            p.name for p in out.iterdir() if p.name not in RUN_ENTRIES and not p.name.startswith(TMP_PREFIX)
        )
        completed = (out / MANIFEST).exists()
        if foreign:
            raise GeeAltError(
                f"{out} holds files that are not from a gee-alt run ({', '.join(foreign[:3])}); "
                "refusing to use it, choose another --out"
            )
        if overwrite or (not completed and interrupted == "restart"):
            shutil.rmtree(out)
        elif completed:
            raise GeeAltError(f"{out} holds a completed run; pass --overwrite to replace it or choose another --out")
        elif interrupted == "resume":
            resume = True
        else:
            raise GeeAltError(
                f"output directory {out} is not empty; pass --overwrite to replace it or choose another --out"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f"{TMP_PREFIX}write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise GeeAltError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out, resume


def _kind(rel: str) -> str:
    top = rel.split("/", 1)[0]
    return top if "/" in rel else Path(rel).stem


def write_manifest(
    run: str | os.PathLike, settings: dict | None = None, exclude_dirs: tuple[str, ...] = (INPUTS_DIR, TRUTH_DIR)
) -> dict:
    """Write ``RUN/manifest.json`` listing every product file with size and sha256.

    Files under ``exclude_dirs`` (demo inputs and truth) are listed by count only; temporary
    files of interrupted writes and the resume record are never listed.
    """
    run = Path(run)
    files, skipped = [], {}
    for p in sorted(run.rglob("*")):
        if not p.is_file() or p.name == MANIFEST or p.name.startswith(TMP_PREFIX):
            continue
        rel = p.relative_to(run).as_posix()
        top = rel.split("/", 1)[0]
        if top == RESUME_DIR:
            continue
        if top in exclude_dirs:
            skipped[top] = skipped.get(top, 0) + 1
            continue
        entry = {"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p), "kind": _kind(rel)}
        if (y := year_of(p.name)) is not None:
            entry["year"] = y
        files.append(entry)
    manifest = {
        "gee_alt_version": __version__,
        "written_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": settings or {},
        "files": files,
        "not_listed": skipped,
    }
    write_json_atomic(run / MANIFEST, manifest)
    return manifest


def read_json(run: str | os.PathLike, name: str) -> dict | None:
    """A JSON product of the run (``calibration.json``, ``validation.json``, ...), ``None`` if absent;
    a broken file is a one-line :class:`GeeAltError`."""
    p = Path(run) / name
    if not p.exists():
        return None
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise GeeAltError(f"{p} is not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(obj, dict):
        raise GeeAltError(f"{p} is not a JSON object")
    return obj


#: chunk of a lazily opened DDT cube (one year x one COG block): what one read decodes
LAZY_CHUNK_PX = 512


def open_ddt_cube(
    run: str | os.PathLike,
    years: list[int],
    *,
    engine: str = "",
    synthetic: bool = False,
    thaw_season: str = "",
    extra_attrs: dict | None = None,
    fractions: list | None = None,
):
    """The DDT cube of ``RUN/ddt/ddt_YYYY.tif`` opened lazily (dask arrays over the COGs, chunks of
    one year x :data:`LAZY_CHUNK_PX`² px): the downstream reads row windows and site windows of
    it, never the whole cube. Same schema and values as :func:`read_ddt_cube` (``n_obs`` int16,
    frost number derived). ``fractions``: the thaw-progress curve of each year (default: the COG tags)."""
    import dask.array as dsa
    import rasterio
    import rioxarray

    from gee_alt.cube import CLEAR_VAR, DDF_VAR, DDT_SD_VAR, DDT_VAR, NOBS_VAR, make_ddt_cube
    from gee_alt.grid import grid_from_rasterio

    bands: dict[str, list] = {}
    grid, tag_fractions = None, []
    for y in years:
        p = ddt_path(run, y)
        with rasterio.open(p) as src:
            names = list(src.descriptions) if all(src.descriptions) else [DDT_VAR, DDT_SD_VAR, NOBS_VAR][: src.count]
            if grid is None:
                grid = grid_from_rasterio(src.crs, src.transform, src.width, src.height)
            frac = src.tags().get("ddt_fraction_by_doy")
            tag_fractions.append(json.loads(frac) if frac else None)
        # rioxarray's default lock: one cached dataset per COG, reads serialised. ``lock=False``
        # opened a new GDAL dataset for every chunk read, in every thread: at 512² x 25 years a
        # point read of the cube's DDF then left ~300 MB more native memory resident (and was
        # slower: 1.8 vs 1.4 s)
        da = rioxarray.open_rasterio(
            p, chunks={"band": 1, "y": LAZY_CHUNK_PX, "x": LAZY_CHUNK_PX}, cache=False, masked=False
        )
        for i, name in enumerate(names):
            bands.setdefault(name, []).append(da.data[i])
    stack = {k: dsa.stack(v) for k, v in bands.items() if len(v) == len(years)}
    if fractions is None and all(f is not None for f in tag_fractions):
        fractions = tag_fractions
    return make_ddt_cube(
        stack[DDT_VAR],
        years,
        grid,
        ddt_sd_degc_days=stack.get(DDT_SD_VAR),
        n_obs=dsa.nan_to_num(stack[NOBS_VAR]) if NOBS_VAR in stack else None,
        ddf_degc_days=stack.get(DDF_VAR),
        clear_sky_fraction=stack.get(CLEAR_VAR),
        ddt_fraction_by_doy=None if fractions is None else np.asarray(fractions, "float32"),
        engine=engine,
        synthetic=synthetic,
        thaw_season=thaw_season,
        extra_attrs=extra_attrs,
    )
