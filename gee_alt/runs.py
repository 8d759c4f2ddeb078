"""The run directory: where every product of a run lives, and its manifest.

::

    RUN/
      manifest.json               what was produced: path, bytes, sha256, kind, year; run settings
      calibration.json            Stefan calibration: E, E_ci95, n_used, n_dropped (+ reasons), loo, ...
      validation.json             scores: in-situ (leave-one-site-out) and, for the demo, against truth
      insitu_used.csv             the in-situ rows that were read (tidy schema)
      dem.tif, ndvi_mean.tif      local engine: DEM and mean 30 m NDVI (site homogeneity screen)
      landcover.tif               when the inputs have one: per-class E in calibration and ALT
      ddt/ddt_YYYY.tif            thawing degree-days (°C·day); bands ddt_degc_days, ddt_sd_degc_days, n_obs
      alt/alt_YYYY.tif            active-layer thickness (m)
      alt/alt_sd_YYYY.tif         1-sigma ALT uncertainty (m)
      alt/alt_YYYY.stac.json      STAC Item of each yearly ALT COG
      trend/alt_trend_cm_per_yr.tif, trend/alt_trend_p.tif   Theil-Sen slope and Mann-Kendall p
      cube.nc                     NetCDF (CF) cube of all years: ALT, ALT sd, DDT
      report/report.md, report/report.html, report/*.png
      inputs/, truth/             demo only: the synthetic input layout and the synthetic truth

Commands take the run directory as their first argument and find everything by these names.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from gee_alt import __version__
from gee_alt.errors import GeeAltError
from gee_alt.io import sha256_file, write_json_atomic

DDT_DIR, ALT_DIR, TREND_DIR, REPORT_DIR = "ddt", "alt", "trend", "report"
MANIFEST, CALIBRATION, VALIDATION, INSITU_USED, CUBE_NC = (
    "manifest.json", "calibration.json", "validation.json", "insitu_used.csv", "cube.nc")
_YEAR = re.compile(r"_(\d{4})\.tif$")
RESUME_DIR = ".resume"          # progress of an unfinished run (removed when the run completes)
PROGRESS = "progress.json"


def ddt_path(run: Path, year: int) -> Path:
    """``RUN/ddt/ddt_YYYY.tif``."""
    return Path(run) / DDT_DIR / f"ddt_{year}.tif"


def alt_path(run: Path, year: int) -> Path:
    """``RUN/alt/alt_YYYY.tif``."""
    return Path(run) / ALT_DIR / f"alt_{year}.tif"


def alt_sd_path(run: Path, year: int) -> Path:
    """``RUN/alt/alt_sd_YYYY.tif``."""
    return Path(run) / ALT_DIR / f"alt_sd_{year}.tif"


def year_of(name: str) -> int | None:
    """The year in a product file name (``ddt_2010.tif``, ``ndvi_2010.npy``), else ``None``."""
    m = re.search(r"_(\d{4})\.(?:tif|npy)$", name)
    return int(m.group(1)) if m else None


def resume_ndvi_path(run: Path, year: int) -> Path:
    """``RUN/.resume/ndvi_YYYY.npy``: a finished year's 30 m NDVI, kept for the run's NDVI mean."""
    return Path(run) / RESUME_DIR / f"ndvi_{year}.npy"


def read_progress(run: Path) -> dict | None:
    """The progress record of an unfinished run (``RUN/.resume/progress.json``), ``None`` if absent or unreadable."""
    import json

    try:
        rec = json.loads((Path(run) / RESUME_DIR / PROGRESS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def write_progress(run: Path, record: dict) -> Path:
    """Write the progress record atomically."""
    return write_json_atomic(Path(run) / RESUME_DIR / PROGRESS, record)


def clear_progress(run: Path) -> None:
    """Remove ``RUN/.resume`` (the run is complete)."""
    import shutil

    shutil.rmtree(Path(run) / RESUME_DIR, ignore_errors=True)


def years_of(run: Path, kind: str = "ddt") -> list[int]:
    """Years present as ``RUN/<kind>/<kind>_YYYY.tif`` (kind: ``ddt`` or ``alt``)."""
    folder = Path(run) / kind
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.glob(f"{kind}_[0-9][0-9][0-9][0-9].tif") if (m := _YEAR.search(p.name)))


def require_run(run: str | Path, need: str = "ddt") -> Path:
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


def _kind(rel: str) -> str:
    top = rel.split("/", 1)[0]
    return top if "/" in rel else Path(rel).stem


def write_manifest(run: str | Path, settings: dict | None = None, exclude_dirs: tuple[str, ...] = ("inputs", "truth")) -> dict:
    """Write ``RUN/manifest.json`` listing every product file with size and sha256.

    Files under ``exclude_dirs`` (demo inputs and truth) are listed by count only; temporary
    files of interrupted writes are never listed.
    """
    run = Path(run)
    files, skipped = [], {}
    for p in sorted(run.rglob("*")):
        if not p.is_file() or p.name == MANIFEST or p.name.startswith(".tmp-"):
            continue
        rel = p.relative_to(run).as_posix()
        top = rel.split("/", 1)[0]
        if top in exclude_dirs:
            skipped[top] = skipped.get(top, 0) + 1
            continue
        entry = {"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p), "kind": _kind(rel)}
        if m := _YEAR.search(p.name):
            entry["year"] = int(m.group(1))
        files.append(entry)
    manifest = {"gee_alt_version": __version__, "written_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "settings": settings or {}, "files": files, "not_listed": skipped}
    write_json_atomic(run / MANIFEST, manifest)
    return manifest
