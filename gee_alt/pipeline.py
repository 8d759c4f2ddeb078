"""Orchestration: engine -> DDT cube -> run directory -> calibration -> ALT -> validation -> report.

Every step reads and writes the run directory (:mod:`gee_alt.runs`), so each can be rerun
alone (``gee-alt calibrate``, ``gee-alt alt``, ...). Progress is reported through a callback
factory ``progress(description, total) -> advance(n)`` so this module stays free of UI code.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from gee_alt import __version__, runs
from gee_alt.cube import DDT_SD_VAR, DDT_VAR, NOBS_VAR, grid_of, make_ddt_cube, validate_ddt_cube
from gee_alt.errors import GeeAltError
from gee_alt.grid import bounds, same_grid
from gee_alt.io import read_raster, write_cog, write_json_atomic

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n=1: None


def parse_years(text: str | None, default: tuple[int, int] = (2000, 2024), lo: int = 1980, hi: int = 2100) -> list[int]:
    """``"2000-2024"``, ``"2005"`` or ``"2000,2003,2010"`` -> sorted list of years; one-line error otherwise."""
    if text is None or str(text).strip() == "":
        return list(range(default[0], default[1] + 1))
    s = str(text).strip()
    try:
        if "-" in s[1:]:
            a, b = s.split("-", 1)
            y0, y1 = int(a), int(b)
            if y0 > y1:
                raise GeeAltError(f"year range '{s}' is reversed; write it as {y1}-{y0}")
            years = list(range(y0, y1 + 1))
        else:
            years = sorted({int(v) for v in s.split(",") if v.strip()})
    except ValueError:
        raise GeeAltError(f"years must look like 2000-2024, 2005 or 2000,2005; got '{s}'") from None
    if not years:
        raise GeeAltError("no year given")
    bad = [y for y in years if not lo <= y <= hi]
    if bad:
        raise GeeAltError(f"year {bad[0]} is outside {lo}-{hi}")
    return years


# ---------------------------------------------------------------------------- DDT cube <-> run
def write_ddt(run: Path, cube: xr.Dataset, *, tags: dict | None = None) -> list[Path]:
    """Write each year of the cube to ``RUN/ddt/ddt_YYYY.tif`` (3 bands: DDT, its sd, n_obs)."""
    validate_ddt_cube(cube)
    grid = grid_of(cube)
    paths = []
    for year in cube["year"].values:
        year = int(year)
        sel = cube.sel(year=year)
        bands = [sel[DDT_VAR].values]
        names = [DDT_VAR]
        for var in (DDT_SD_VAR, NOBS_VAR):
            if var in cube:
                bands.append(sel[var].values.astype("float32"))
                names.append(var)
        t = {"units": "degC day", "year": year, "quantity": "thawing degree-days of land surface temperature",
             "engine": cube.attrs.get("engine", ""), "method": cube.attrs.get("method", ""),
             "thaw_season": cube.attrs.get("thaw_season", ""), "synthetic": cube.attrs.get("synthetic", 0)}
        t.update(tags or {})
        paths.append(write_cog(runs.ddt_path(run, year), np.stack(bands), grid, tags=t, band_descriptions=names))
    return paths


def read_ddt(run: Path, years: list[int] | None = None, *, extras: bool = True) -> xr.Dataset:
    """The DDT cube of a run, read back from ``RUN/ddt/ddt_YYYY.tif`` (``extras=False``: DDT only,
    a third of the memory)."""
    run = runs.require_run(run, "ddt")
    have = runs.years_of(run, "ddt")
    years = years or have
    missing = [y for y in years if y not in have]
    if missing:
        raise GeeAltError(f"{run}/ddt has no file for year(s) {missing}")
    arrays, grid, tags = {}, None, {}
    for y in years:
        r = read_raster(runs.ddt_path(run, y))
        if grid is None:
            grid, tags = r.grid, r.tags
        elif not same_grid(grid, r.grid):
            raise GeeAltError(f"ddt_{y}.tif is on another grid than ddt_{years[0]}.tif")
        names = r.descriptions if all(r.descriptions) else [DDT_VAR, DDT_SD_VAR, NOBS_VAR][:r.data.shape[0]]
        for name, band in zip(names, r.data):
            if extras or name == DDT_VAR:
                arrays.setdefault(name, []).append(band)
    if DDT_VAR not in arrays:
        raise GeeAltError(f"{run}/ddt files have no '{DDT_VAR}' band")
    sd = np.stack(arrays[DDT_SD_VAR]) if DDT_SD_VAR in arrays else None
    nobs = np.nan_to_num(np.stack(arrays[NOBS_VAR])).astype("int16") if NOBS_VAR in arrays else None
    return make_ddt_cube(np.stack(arrays[DDT_VAR]), years, grid, ddt_sd_degc_days=sd, n_obs=nobs,
                         engine=tags.get("engine", ""), synthetic=tags.get("synthetic", "0") in ("1", "True"),
                         thaw_season=tags.get("thaw_season", ""), extra_attrs={"method": tags.get("method", "")})


# ----------------------------------------------------------------------------- calibration
def _homogeneity_fields(run: Path, cube: xr.Dataset) -> dict:
    """DEM and NDVI on the cube grid for the site screen, when the run has them (``inputs/``)."""
    fields = {}
    grid = grid_of(cube)
    for name, rel in (("dem", "dem.tif"), ("ndvi", "ndvi_mean.tif")):
        p = run / rel
        if p.exists() and name not in fields:
            r = read_raster(p)
            if same_grid(r.grid, grid):
                fields[name] = r.data[0]
    return fields


LANDCOVER = "landcover.tif"


def site_classes(run: Path, grid, table) -> np.ndarray | None:
    """Land-cover class (int) at each in-situ row's site from ``RUN/landcover.tif``, or None without one."""
    from gee_alt.grid import lonlat_to_rowcol

    p = Path(run) / LANDCOVER
    if not p.exists():
        return None
    lc = read_raster(p)
    if not same_grid(lc.grid, grid):
        raise GeeAltError(f"{p} is not on the DDT grid")
    r, c = lonlat_to_rowcol(grid, table.lon, table.lat)
    h, w = lc.data.shape[1:]
    ok = np.isfinite(r) & np.isfinite(c) & (r >= 0) & (c >= 0) & (r < h) & (c < w)
    out = np.full(len(table), -1, dtype=object)
    vals = lc.data[0][r[ok].astype(int), c[ok].astype(int)]
    out[ok] = [int(v) if np.isfinite(v) else -1 for v in vals]
    return out


def calibrate(run: str | Path, insitu_csv: str | Path, *, thresholds: dict | None = None, n_boot: int = 2000,
              seed: int = 0, by_class: bool | str = "auto") -> dict:
    """Screen in-situ sites and fit E on the run's DDT; writes ``calibration.json`` and ``insitu_used.csv``.

    With ``by_class`` ("auto": when ``RUN/landcover.tif`` exists) one E is fitted per land-cover
    class that has enough sites (others use the global E). Returns the calibration dict (E,
    E_ci95, n_used, n_dropped with reasons, loo, block CV, E_by_class, ...).
    """
    from gee_alt.insitu.table import read_insitu, write_insitu
    from gee_alt.science.sites import calibrate_from_cube
    from gee_alt.science.stefan import block_cv

    run = runs.require_run(run, "ddt")
    cube = read_ddt(run, extras=False)
    grid = grid_of(cube)
    from rasterio.warp import transform_bounds

    bbox = transform_bounds(grid["crs"], "EPSG:4326", *bounds(grid), densify_pts=21)
    table = read_insitu(insitu_csv, bbox=bbox)
    classes = site_classes(run, grid, table) if by_class in (True, "auto") else None
    if by_class is True and classes is None:
        raise GeeAltError(f"--by-class needs a land-cover raster on the run grid: {run / LANDCOVER}")
    fields = _homogeneity_fields(run, cube)
    if thresholds:      # a screen on a field the run does not have (e.g. no DEM in RUN/inputs) is skipped
        have = {"ddt", *fields}
        thresholds = {k: v for k, v in thresholds.items() if k == "min_valid_frac" or k.split("_")[0] in have}
    res = calibrate_from_cube(table, cube, fields=fields, thresholds=thresholds,
                              n_boot=n_boot, random_state=seed, classes=classes, by_class=classes is not None)
    cal = res.calibration
    out = cal.to_dict()
    keep = res.keep
    n_sites = len(set(table.site_id[keep]))
    if n_sites < 2:
        raise GeeAltError(f"only {n_sites} in-situ site left after screening ({int(keep.sum())} rows): the confidence "
                          "interval and cross-validation need at least 2 sites; add in-situ sites")
    write_insitu(run / runs.INSITU_USED, table)
    sqrt_ddt = np.sqrt(np.clip(res.ddt_degc_days, 0, None))
    fitted = cal.predict(res.ddt_degc_days, classes)
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", grid["crs"], always_xy=True).transform(table.lon, table.lat)
    block_m = 5000.0
    out["block_cv"] = {**block_cv(sqrt_ddt[keep], table.alt_m[keep], np.asarray(x)[keep], np.asarray(y)[keep], block_m,
                                  censored=table.censored[keep]), "block_m": block_m}
    out["n_dropped"] = int((~keep).sum())
    out["dropped"] = [{"row": int(i), "site_id": str(table.site_id[i]), "year": int(table.year[i]), "reason": res.reasons[i]}
                      for i in np.nonzero(~keep)[0]]
    by_site: dict = {}
    for d in out["dropped"]:
        e = by_site.setdefault(d["site_id"], {"site_id": d["site_id"], "rows": 0, "reason": d["reason"]})
        e["rows"] += 1
    out["dropped_sites"] = [{**e, "reason": f"{e['reason']} ({e['rows']} rows)"} for e in by_site.values()]
    out["n_rejected_rows"] = len(table.rejected)
    out["rejected_rows"] = [{"line": int(r), "reason": str(m)} for r, m in table.rejected]
    out["insitu_file"] = str(Path(insitu_csv).name)
    out["pairs"] = [{"site_id": str(table.site_id[i]), "year": int(table.year[i]), "alt_obs_m": float(table.alt_m[i]),
                     "censored": str(table.censored[i]), "ddt_degc_days": float(res.ddt_degc_days[i]),
                     "alt_fit_m": float(fitted[i]), "alt_loo_m": float(p),
                     "class": None if classes is None else int(classes[i])}
                    for i, p in zip(np.nonzero(keep)[0], cal.loo_pred_m_)]
    out["thresholds"] = thresholds or {}
    out["screen_fields"] = sorted({"ddt", *fields})
    out["gee_alt_version"] = __version__
    write_json_atomic(run / runs.CALIBRATION, out)
    val_path = run / runs.VALIDATION
    val = json.loads(val_path.read_text()) if val_path.exists() else {}
    val.update({"insitu": [{"site_id": p["site_id"], "year": p["year"], "alt_obs_m": p["alt_obs_m"],
                            "alt_pred_m": p["alt_loo_m"]} for p in out["pairs"] if not p["censored"]],
                "insitu_note": "predictions are leave-one-site-out (E refitted without the site)",
                "insitu_loo": out["loo"], "insitu_block_cv": out["block_cv"]})
    write_json_atomic(val_path, val)
    return out


def check_insitu_bbox(insitu_csv: str | Path, bbox) -> None:
    """Fail early (before any computing) when the in-situ table has no usable row inside ``bbox``
    (``west, south, east, north`` degrees); row-level problems are left to the calibration report."""
    from gee_alt.insitu.table import read_insitu

    read_insitu(insitu_csv, bbox=bbox)


def check_insitu_for(layout, insitu_csv: str | Path | None) -> None:
    """:func:`check_insitu_bbox` for a local input layout (its DEM grid), or its own insitu.csv."""
    from rasterio.warp import transform_bounds

    insitu_csv = insitu_csv or layout.insitu_path
    if insitu_csv is None:
        raise GeeAltError(f"no in-situ table: pass --insitu CSV or put insitu.csv in {layout.root}")
    check_insitu_bbox(insitu_csv, transform_bounds(layout.grid["crs"], "EPSG:4326", *bounds(layout.grid), densify_pts=21))


def load_calibration(run: Path) -> dict:
    """``RUN/calibration.json`` with a one-line error if missing or broken."""
    run = runs.require_run(run, "calibration")
    try:
        cal = json.loads((run / runs.CALIBRATION).read_text(encoding="utf-8"))
        e = float(cal["E"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        why = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise GeeAltError(f"{run / runs.CALIBRATION} is not a valid calibration ({why}); rerun 'gee-alt calibrate'") from None
    if not (np.isfinite(e) and 0 < e < 1):
        raise GeeAltError(f"{run / runs.CALIBRATION}: E = {e} is not a plausible Stefan coefficient (0 < E < 1); "
                          "rerun 'gee-alt calibrate'")
    return cal


# --------------------------------------------------------------------------------------- ALT
def write_alt(run: str | Path, *, progress: ProgressFactory = _no_progress, stac: bool = True) -> list[Path]:
    """ALT (m) and its 1-sigma uncertainty (m) for every DDT year: ``RUN/alt/alt[_sd]_YYYY.tif``.

    ALT = E·√DDT; sd² = DDT·sd(E)² + (E / (2√DDT))²·sd(DDT)² (first order).
    """
    from gee_alt.science.stefan import alt_from_ddt, alt_sd

    run = Path(run)
    cal = load_calibration(run)
    years = runs.years_of(run, "ddt")
    e, e_sd = float(cal["E"]), float(cal.get("E_sd") or 0.0)
    e_map, e_sd_map = e, e_sd
    if cal.get("E_by_class") and (run / LANDCOVER).exists():      # per-class E on the land-cover map
        lc = read_raster(run / LANDCOVER).data[0]
        e_map, e_sd_map = np.full(lc.shape, e), np.full(lc.shape, e_sd)
        for k, v in cal["E_by_class"].items():
            e_map[lc == float(k)] = float(v)
            lo, hi = cal.get("E_ci_by_class", {}).get(k, [np.nan, np.nan])
            if np.isfinite(lo) and np.isfinite(hi):
                e_sd_map[lc == float(k)] = (hi - lo) / 3.92
    adv = progress("ALT maps", len(years))
    paths = []
    for y in years:
        r = read_raster(runs.ddt_path(run, y))
        ddt = r.data[0]
        ddt_sd = r.data[1] if r.data.shape[0] > 1 else np.zeros_like(ddt)
        alt = alt_from_ddt(ddt, e_map).astype("float32")
        sd = alt_sd(ddt, ddt_sd, e_map, e_sd_map).astype("float32")
        base = {"year": y, "engine": r.tags.get("engine", ""), "synthetic": r.tags.get("synthetic", "0"),
                "E": f"{e:.6f}", "E_ci95": json.dumps(cal.get("E_ci95")), "method": "Stefan ALT = E*sqrt(DDT)",
                "E_by_class": json.dumps(cal.get("E_by_class") or {})}
        paths.append(write_cog(runs.alt_path(run, y), alt, r.grid, tags={**base, "units": "m",
                               "quantity": "active-layer thickness"}, band_descriptions=["alt_m"]))
        paths.append(write_cog(runs.alt_sd_path(run, y), sd, r.grid, tags={**base, "units": "m",
                               "quantity": "1-sigma uncertainty of active-layer thickness"}, band_descriptions=["alt_sd_m"]))
        if stac:
            from gee_alt.export.stac import stac_item_for_cog, write_stac_item

            write_stac_item(run / runs.ALT_DIR / f"alt_{y}.stac.json",
                            stac_item_for_cog(runs.alt_path(run, y), y, href=f"alt_{y}.tif"))
        adv(1)
    return paths


def read_alt_stack(run: Path, years: list[int] | None = None) -> tuple[np.ndarray, list[int], dict]:
    """ALT (m) as ``(year, y, x)`` float32 with its years and grid."""
    run = runs.require_run(run, "alt")
    years = years or runs.years_of(run, "alt")
    rs = [read_raster(runs.alt_path(run, y)) for y in years]
    return np.stack([r.data[0] for r in rs]), years, rs[0].grid


# ---------------------------------------------------------------------------------- trend
def write_trend(run: str | Path, *, min_valid_years: int = 8, mask_geojson: str | Path | None = None,
                ring_width_px: int = 10) -> dict:
    """Per-pixel Theil-Sen slope of ALT (cm/yr) and Mann-Kendall p; area-mean series; optional
    inside-vs-ring contrast for a polygon. Writes ``RUN/trend/*.tif`` and returns a summary."""
    from gee_alt.science.trend import area_mean_series, disturbance_contrast, rasterize_geojson, series_trend, trend_cube

    run = Path(run)
    alt, years, grid = read_alt_stack(run)
    if len(years) < 3:
        raise GeeAltError(f"a trend needs at least 3 years of ALT, the run has {len(years)}; run more years")
    inside = None
    if mask_geojson is not None:                 # checked before anything is written
        p = Path(mask_geojson)
        if not p.is_file():
            raise GeeAltError(f"mask polygon not found: {p}")
        try:
            inside = rasterize_geojson(p, grid)
        except GeeAltError as exc:
            raise GeeAltError(f"mask {p.name}: {exc}; give a Polygon GeoJSON in lon/lat") from None
        except Exception as exc:                 # malformed coordinates (rasterio/shapely raise several types)
            raise GeeAltError(f"mask {p.name} has an invalid geometry ({type(exc).__name__}); "
                              "give a Polygon GeoJSON in lon/lat") from None
        if not inside.any():
            raise GeeAltError(f"{p.name} does not cover any pixel of the run's grid")
    res = trend_cube(alt, years, min_valid_years=min(min_valid_years, len(years)))
    slope_cm = (res["slope"] * 100.0).astype("float32")
    tags = {"years": f"{years[0]}-{years[-1]}", "method": "Theil-Sen slope, Mann-Kendall test (tie-corrected)"}
    write_cog(run / runs.TREND_DIR / "alt_trend_cm_per_yr.tif", slope_cm, grid, tags={**tags, "units": "cm/yr"})
    write_cog(run / runs.TREND_DIR / "alt_trend_p.tif", res["p_value"].astype("float32"), grid, tags={**tags, "units": "1"})
    series = area_mean_series(alt, years)
    out = {"years": years, "area_mean_alt_m": series, "area_trend": series_trend(years, series["mean"]),
           "pixels_significant_frac_p05": float(np.nanmean(res["p_value"] < 0.05)),
           "median_slope_cm_per_yr": float(np.nanmedian(slope_cm))}
    if inside is not None:
        out["disturbance"] = {"alt_slope_cm_per_yr": disturbance_contrast(slope_cm, inside, ring_width_px),
                              "alt_mean_m": disturbance_contrast(np.nanmean(alt, axis=0), inside, ring_width_px)}
    write_json_atomic(run / runs.TREND_DIR / "trend.json", out)
    return out


# ------------------------------------------------------------------------------ engines
LOCAL_METHOD = "RF sharpening (local engine, scikit-learn)"
RESUME_FORMAT = 1
# what a resumed local run may clean up (never inputs/ or truth/, never foreign files)
_PRODUCT_ENTRIES = {runs.ALT_DIR, runs.TREND_DIR, runs.REPORT_DIR, runs.CALIBRATION, runs.VALIDATION,
                    runs.INSITU_USED, runs.CUBE_NC, runs.MANIFEST, "ndvi_mean.tif", "landcover.tif"}


def _ddt_tags(year: int, *, engine: str, method: str, thaw_season: str, synthetic) -> dict:
    return {"units": "degC day", "year": year, "quantity": "thawing degree-days of land surface temperature",
            "engine": engine, "method": method, "thaw_season": thaw_season, "synthetic": synthetic}


def write_ddt_year(run: Path, year: int, ddt: np.ndarray, ddt_sd: np.ndarray | None, n_obs: np.ndarray | None, grid,
                   tags: dict) -> Path:
    """One year's ``RUN/ddt/ddt_YYYY.tif`` (bands DDT, its sd, n_obs), written atomically."""
    bands, names = [np.asarray(ddt, "float32")], [DDT_VAR]
    for var, arr in ((DDT_SD_VAR, ddt_sd), (NOBS_VAR, n_obs)):
        if arr is not None:
            bands.append(np.asarray(arr).astype("float32"))
            names.append(var)
    return write_cog(runs.ddt_path(run, year), np.stack(bands), grid, tags=tags, band_descriptions=names)


def _input_fingerprint(layout, years: list[int]) -> dict:
    """Name, size and mtime of every input file the years depend on (Landsat gap filling uses all years)."""
    files = [layout.root / "dem.tif", layout.root / "landcover.tif"]
    for y in years:
        files += [layout.root / "landsat_ndvi" / f"ndvi_{y}.tif", layout.root / "modis_ndvi" / f"ndvi_{y}.tif",
                  layout.root / "modis_lst" / f"lst_{y}.tif"]
    out = {}
    for f in files:
        if f.exists():
            st = f.stat()
            out[f.relative_to(layout.root).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def _describe_difference(old: dict, new: dict) -> str:
    for k in ("engine", "inputs", "years", "seed", "trees", "synthetic", "format"):
        if old.get(k) != new.get(k):
            return f"{k} {old.get(k)} vs {new.get(k)} now"
    changed = sorted(set(old.get("input_files", {})) ^ set(new.get("input_files", {}))) or \
        sorted(k for k in new.get("input_files", {}) if old.get("input_files", {}).get(k) != new["input_files"][k])
    return f"input file {changed[0]} changed" if changed else "settings changed"


def resume_state(run: str | Path, settings: dict) -> dict[int, dict]:
    """The finished years of an interrupted local run in ``run`` (year -> record), after checks.

    Raises :class:`GeeAltError` when the interrupted run was made with other settings or
    inputs (resuming would mix runs). Years whose files are missing or do not match their
    recorded sha256 are not finished (they are recomputed).
    """
    from gee_alt.io import sha256_file

    run = Path(run)
    rec = runs.read_progress(run)
    if rec is None:
        return {}
    if rec.get("settings") != settings:
        raise GeeAltError(f"{run} holds an interrupted run with other settings ({_describe_difference(rec.get('settings') or {}, settings)}); "
                          "rerun with the same settings to resume it, or pass --overwrite to start over")
    done = {}
    for key, y in (rec.get("years") or {}).items():
        year = int(key)
        ddt, nd = runs.ddt_path(run, year), runs.resume_ndvi_path(run, year)
        try:
            if sha256_file(ddt) == y.get("sha256") and sha256_file(nd) == y.get("ndvi_sha256"):
                done[year] = y
        except OSError:
            continue
    return done


def _clean_for_resume(run: Path, keep_years: set[int]) -> None:
    """Remove what an interrupted run left that will be redone: temporaries, products, unfinished years."""
    from gee_alt.io import TMP_PREFIX

    for top in (run, run / runs.DDT_DIR, run / runs.RESUME_DIR):
        if not top.is_dir():
            continue
        for p in top.iterdir():
            name = p.name
            if name.startswith(TMP_PREFIX):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            elif top == run and name in _PRODUCT_ENTRIES:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            elif top == run / runs.DDT_DIR and p.is_file() and runs.year_of(name) not in keep_years:
                p.unlink()
            elif top == run / runs.RESUME_DIR and name.startswith("ndvi_") and runs.year_of(name) not in keep_years:
                p.unlink()


def run_local_inputs(inputs: str | Path, insitu: str | Path | None, out: str | Path, *, years: list[int] | None = None,
                     seed: int = 0, trees: int = 40, progress: ProgressFactory = _no_progress,
                     synthetic: bool = False, on_year=None, workers: int | None = None, resume: bool = False,
                     on_resume: Callable[[list[int], list[int]], None] | None = None) -> dict:
    """The local engine on a user's input directory, then calibration and ALT. Returns a summary.

    Each year's DDT is written as soon as it is computed and recorded (with its sha256) in
    ``RUN/.resume/progress.json``. With ``resume`` an interrupted run in ``out`` is continued:
    finished years are not recomputed (``on_resume(done, todo)`` is told which), stray
    temporaries and later products are removed, and calibration, ALT, trend and the NetCDF
    cube are redone; the result is byte-identical to an uninterrupted run.
    """
    from gee_alt.io import sha256_file
    from gee_alt.engines.local.engine import LocalEngineParams, run_local
    from gee_alt.engines.local.layout import InputLayout
    from gee_alt.science.forest import RandomForestSettings

    layout = InputLayout(inputs)
    years = layout.check_years(years) if years else layout.years
    insitu = Path(insitu) if insitu else layout.insitu_path
    if insitu is None:
        raise GeeAltError(f"no in-situ table: pass --insitu CSV or put insitu.csv in {inputs}")
    if not Path(insitu).exists():
        raise GeeAltError(f"in-situ table not found: {insitu}")
    out = Path(out)
    settings = {"format": RESUME_FORMAT, "engine": "local", "inputs": str(Path(inputs).resolve()), "years": list(years),
                "seed": seed, "trees": trees, "synthetic": bool(synthetic),
                "input_files": _input_fingerprint(layout, years)}
    done = resume_state(out, settings) if resume else {}
    done = {y: r for y, r in done.items() if y in years}
    if resume:
        _clean_for_resume(out, set(done))
    else:
        shutil.rmtree(out / runs.RESUME_DIR, ignore_errors=True)
    prev = runs.read_progress(out) if resume else None
    attempt = int((prev or {}).get("attempts", 0)) + 1
    record = {"settings": settings, "attempts": attempt, "years": {str(y): done[y] for y in sorted(done)}}
    runs.write_progress(out, record)
    todo = [y for y in years if y not in done]
    if on_resume and done:
        on_resume(sorted(done), todo)
    params = LocalEngineParams(rf=RandomForestSettings(n_estimators=trees, random_state=seed), workers=workers)
    syn_tag = int(bool(synthetic))

    def keep_ndvi(year, products):
        from gee_alt.io import atomic_path

        with atomic_path(runs.resume_ndvi_path(out, year)) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(products["ndvi_30m"], "float32"))
        if on_year:
            on_year(year, products)

    def finished(res):
        year = res["year"]
        path = write_ddt_year(out, year, res["ddt"], res["ddt_sd"], res["n_obs"], layout.grid,
                              _ddt_tags(year, engine="local", method=LOCAL_METHOD, thaw_season=res["season"],
                                        synthetic=syn_tag))
        record["years"][str(year)] = {"sha256": sha256_file(path),
                                      "ndvi_sha256": sha256_file(runs.resume_ndvi_path(out, year)),
                                      "attempt": attempt}
        runs.write_progress(out, record)

    adv = progress("Sharpening NDVI and LST, DDT", len(todo))
    run_local(layout, years, params, synthetic=synthetic, on_year=keep_ndvi, progress=adv,
              skip_years=set(done), on_result=finished)
    cube = read_ddt(out, years)
    write_cog(out / "dem.tif", layout.dem.data[0], layout.grid, tags={"units": "m", "source": "inputs"})
    cube.attrs.update({"engine": "local", "synthetic": syn_tag, "method": LOCAL_METHOD,
                       "thaw_season": read_raster(runs.ddt_path(out, years[-1])).tags.get("thaw_season", ""),
                       "n_estimators": trees, "seed": seed})
    if layout.landcover is not None:
        write_cog(out / LANDCOVER, layout.landcover.data[0], layout.grid, tags={"units": "class", "source": "inputs"})
    ndvi_sum = 0
    for y in years:
        ndvi_sum = ndvi_sum + np.load(runs.resume_ndvi_path(out, y))
    write_cog(out / "ndvi_mean.tif", (ndvi_sum / len(years)).astype("float32"), layout.grid,
              tags={"units": "1", "quantity": "mean 30 m NDVI over the run's years", "synthetic": syn_tag})
    cal = calibrate(out, insitu, seed=seed)
    write_alt(out, progress=progress)
    finish_products(out, cube, progress=progress)
    return {"years": years, "calibration": cal, "cube": cube, "resumed_years": sorted(done)}


def finish_products(run: Path, cube: xr.Dataset, *, progress: ProgressFactory = _no_progress) -> dict:
    """Trend (when >= 3 years) and the NetCDF cube of all years (ALT, ALT sd, DDT)."""
    from gee_alt.export.netcdf import write_alt_netcdf

    run = Path(run)
    years = [int(y) for y in cube["year"].values]
    adv = progress("Trend and NetCDF cube", 2)
    summary = {}
    if len(years) >= 3:
        summary["trend"] = write_trend(run)
    adv(1)
    alt = np.stack([read_raster(runs.alt_path(run, y)).data[0] for y in years])
    alt_sd = np.stack([read_raster(runs.alt_sd_path(run, y)).data[0] for y in years])
    write_alt_netcdf(run / runs.CUBE_NC, cube, alt, alt_sd, calibration=load_calibration(run))
    adv(1)
    return summary


def run_demo(out: str | Path, *, years: list[int] | None = None, seed: int = 42, trees: int = 40,
             size_px: int = 512, workers: int | None = None, progress: ProgressFactory = _no_progress) -> dict:
    """Generate the synthetic demo scene, run the local engine, calibrate, write ALT and score
    every stage against the truth. Returns the validation dict (also in ``validation.json``)."""
    from gee_alt.demo.world import DemoScene, DemoSpec, write_demo_inputs
    from gee_alt.science.resample import interpolate

    years = years or list(range(2000, 2025))
    out = Path(out)
    scene = DemoScene(DemoSpec(seed=seed, years=tuple(years), size_px=size_px))
    adv = progress("Synthetic scene (inputs + truth)", len(years))
    from gee_alt.engines.local.engine import default_workers

    sample = write_demo_inputs(scene, out / "inputs", out / "truth", years, progress=adv,
                               workers=workers or default_workers())

    scores: dict[str, list] = {"lst_sharp": [], "lst_bilinear": [], "ndvi_sharp": [], "ndvi_bilinear": []}

    def score(year, p):
        idx = sample.index
        comp = slice(None)                      # all composites, at the sampled pixels
        lst = p["lst_30m_degc"][comp].reshape(-1, p["lst_30m_degc"][0].size)[:, idx]
        bil = interpolate(p["lst_coarse"].values[comp], scene.lst_grid, scene.grid, "bilinear", index=idx)
        truth = sample.lst_degc[year][comp]
        scores["lst_sharp"].append(lst - truth)
        scores["lst_bilinear"].append(bil - truth)
        nd_b = interpolate(p["ndvi_coarse"].values, scene.ndvi_grid, scene.grid, "bilinear", index=idx)[0]
        scores["ndvi_sharp"].append(p["ndvi_30m"].reshape(-1)[idx] - sample.ndvi[year])
        scores["ndvi_bilinear"].append(nd_b - sample.ndvi[year])

    res = run_local_inputs(out / "inputs", out / "inputs" / "insitu.csv", out, years=years, seed=seed, trees=trees,
                           progress=progress, synthetic=True, on_year=score, workers=workers)
    validation = json.loads((out / runs.VALIDATION).read_text())
    validation.update({"synthetic": True, "scene": {"seed": seed, "size_px": size_px, "grid": scene.grid,
                                                    "years": [years[0], years[-1]]}})
    validation["truth"] = _truth_scores(out, scene, years, scores, res["calibration"])
    if len(years) >= 5:
        validation["truth"]["alt_trend"] = _trend_vs_truth(out, years)
    validation["truth_table"] = truth_table(validation["truth"])
    write_json_atomic(out / runs.VALIDATION, validation)
    return validation


def _trend_vs_truth(run: Path, years: list[int]) -> dict:
    """The ALT trend of the run against the trend of the true ALT maps (cm/yr)."""
    from gee_alt.science.trend import series_trend, theil_sen_mk

    truth = np.stack([read_raster(run / "truth" / f"alt_{y}.tif").data[0] for y in years])
    ours = np.stack([read_raster(runs.alt_path(run, y)).data[0] for y in years])
    pick = np.random.default_rng(0).choice(truth[0].size, size=min(20000, truth[0].size), replace=False)
    t_px = theil_sen_mk(truth.reshape(len(years), -1)[:, pick], years, min_valid_years=len(years))["slope"] * 100.0
    o_px = read_raster(run / runs.TREND_DIR / "alt_trend_cm_per_yr.tif").data[0].reshape(-1)[pick]
    t_area = series_trend(years, np.nanmean(truth, axis=(1, 2)))
    o_area = series_trend(years, np.nanmean(ours, axis=(1, 2)))
    return {"truth_median_cm_per_yr": float(np.nanmedian(t_px)), "median_cm_per_yr": float(np.nanmedian(o_px)),
            "truth_area_mean_cm_per_yr": 100.0 * float(t_area["slope"]),
            "area_mean_cm_per_yr": 100.0 * float(o_area["slope"]),
            "rel_error_area_mean": float(o_area["slope"] / t_area["slope"] - 1.0),
            "pixel_rmse_cm_per_yr": float(np.sqrt(np.nanmean((o_px - t_px) ** 2)))}


def truth_table(t: dict) -> dict:
    """The demo's scores as one readable table (numbers for machines are in ``truth``):
    stage -> {gee-alt, reference, comparison, units}."""
    e, tr = t["E"], t.get("alt_trend")
    rows = {
        "NDVI 30 m, RMSE": {"gee-alt": f"{t['ndvi']['sharpened']['rmse']:.4f}",
                            "reference": f"bilinear {t['ndvi']['bilinear']['rmse']:.4f}",
                            "comparison": f"ratio {t['ndvi']['rmse_ratio']:.2f}", "units": "1"},
        "LST 30 m, RMSE": {"gee-alt": f"{t['lst_degc']['sharpened']['rmse']:.3f}",
                           "reference": f"bilinear {t['lst_degc']['bilinear']['rmse']:.3f}",
                           "comparison": f"ratio {t['lst_degc']['rmse_ratio']:.2f}", "units": "degC"},
        "DDT, RMSE": {"gee-alt": f"{t['ddt_degc_days']['rmse']:.1f}", "reference": "truth",
                      "comparison": f"bias {t['ddt_degc_days']['bias']:+.1f}", "units": "degC day"},
        "E (Stefan)": {"gee-alt": f"{e['estimated']:.5f}", "reference": f"truth at sites {e['truth_at_sites']:.5f}",
                       "comparison": f"error {100 * e['rel_error_vs_sites']:+.1f} %", "units": "m (degC day)^-0.5"},
        "ALT, RMSE": {"gee-alt": f"{t['alt_m']['rmse']:.3f}", "reference": "truth",
                      "comparison": f"bias {t['alt_m']['bias']:+.3f}", "units": "m"},
    }
    if tr:
        rows["ALT trend, area mean"] = {"gee-alt": f"{tr['area_mean_cm_per_yr']:+.2f}",
                                        "reference": f"truth {tr['truth_area_mean_cm_per_yr']:+.2f}",
                                        "comparison": f"error {100 * tr['rel_error_area_mean']:+.0f} %", "units": "cm/yr"}
    return rows


def _metrics(err: np.ndarray) -> dict:
    err = np.asarray(err, "float64")
    err = err[np.isfinite(err)]
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "bias": float(np.mean(err)), "n": int(err.size)}


def _truth_scores(run: Path, scene, years, scores, cal) -> dict:
    """Every stage against the synthetic truth (NDVI, LST, DDT, E, ALT)."""
    lst_s, lst_b = _metrics(np.concatenate([e.ravel() for e in scores["lst_sharp"]])), \
        _metrics(np.concatenate([e.ravel() for e in scores["lst_bilinear"]]))
    nd_s, nd_b = _metrics(np.concatenate(scores["ndvi_sharp"])), _metrics(np.concatenate(scores["ndvi_bilinear"]))
    ddt_err, alt_err = [], []
    e_true = read_raster(run / "truth" / "e.tif").data[0]
    num = den = 0.0
    pairs = {(p["site_id"], p["year"]) for p in cal["pairs"]}
    from gee_alt.insitu.table import read_insitu

    table = read_insitu(run / runs.INSITU_USED)
    for y in years:
        t_ddt = read_raster(run / "truth" / f"ddt_{y}.tif").data[0]
        t_alt = read_raster(run / "truth" / f"alt_{y}.tif").data[0]
        ddt_err.append((read_raster(runs.ddt_path(run, y)).data[0] - t_ddt).ravel())
        alt_err.append((read_raster(runs.alt_path(run, y)).data[0] - t_alt).ravel())
        # the E a perfect calibration would find on the rows actually used (true DDT, true ALT)
        from gee_alt.grid import lonlat_to_rowcol

        sel = np.array([(s, int(yy)) in pairs for s, yy in zip(table.site_id, table.year)]) & (table.year == y)
        if sel.any():
            r, c = lonlat_to_rowcol(scene.grid, table.lon[sel], table.lat[sel])
            r, c = r.astype(int), c.astype(int)
            x = np.sqrt(t_ddt[r, c])
            num += float(np.sum(x * e_true[r, c] * x))
            den += float(np.sum(x * x))
    e_sites = num / den if den else float("nan")
    e_area = float(np.mean(e_true))
    e_hat = float(cal["E"])
    return {
        "ndvi": {"sharpened": nd_s, "bilinear": nd_b, "rmse_ratio": nd_s["rmse"] / nd_b["rmse"]},
        "lst_degc": {"sharpened": lst_s, "bilinear": lst_b, "rmse_ratio": lst_s["rmse"] / lst_b["rmse"]},
        "ddt_degc_days": _metrics(np.concatenate(ddt_err)),
        "E": {"estimated": e_hat, "ci95": cal["E_ci95"], "truth_at_sites": e_sites, "truth_area_mean": e_area,
              "rel_error_vs_sites": e_hat / e_sites - 1.0, "rel_error_vs_area_mean": e_hat / e_area - 1.0},
        "alt_m": _metrics(np.concatenate(alt_err)),
    }
