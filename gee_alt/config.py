"""The study config: AOI, years, grid, collections, seasons, QA thresholds, RF and pull settings.

A TOML file (read with :mod:`tomllib`) is merged over the shipped defaults
(``gee_alt/default_config.toml`` = the Datong River source study) and validated; every
problem is one :class:`~gee_alt.errors.GeeAltError` line naming the key and the fix.
Only this module reads config files; everything else takes a :class:`StudyConfig`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, grid_from_bbox, require_projected

# First year with MODIS LST (Terra MOD11A1 starts 2000-02-24).
FIRST_DATA_YEAR = 2000

LST_COLLECTIONS = ("MODIS/061/MOD11A1", "MODIS/061/MYD11A1")
NDVI_COLLECTIONS = ("MODIS/061/MOD13Q1", "MODIS/061/MOD09GQ")
LANDSAT_COLLECTIONS = ("LANDSAT/LT05/C02/T1_L2", "LANDSAT/LE07/C02/T1_L2",
                       "LANDSAT/LC08/C02/T1_L2", "LANDSAT/LC09/C02/T1_L2")
DEM_CHOICES = ("copernicus", "srtm", "nasadem")
MAX_GRID_SIDE_PX = 100_000          # output grid limits (a side; all pixels) that keep a study tractable
MAX_GRID_PIXELS = 2_000_000_000


@dataclass(frozen=True)
class CollectionsConfig:
    """Earth Engine collection ids (``lst``: MODIS daily LST; ``ndvi``: MODIS 250 m NDVI source;
    ``landsat``: Collection 2 Level 2 missions; ``dem``: one of :data:`DEM_CHOICES`)."""

    lst: tuple[str, ...]
    ndvi: str
    landsat: tuple[str, ...]
    dem: str


@dataclass(frozen=True)
class SeasonConfig:
    """Seasons as ``MM-DD`` day-of-year bounds (inclusive) and the LST window length (days)."""

    thaw_start: str
    thaw_end: str
    lst_step_days: int
    growing_start: str
    growing_end: str
    min_valid_fraction: float


@dataclass(frozen=True)
class QaConfig:
    """QA thresholds: MODIS LST error class (K, 1/2/3, 4 = any), Landsat snow masking,
    MOD13Q1 SummaryQA ceiling (0 good, 1 marginal)."""

    lst_max_error_k: int
    landsat_mask_snow: bool
    modis_ndvi_max_summary_qa: int


@dataclass(frozen=True)
class RfConfig:
    """Random-forest sharpening settings (``0`` = Earth Engine default for
    ``variables_per_split`` and ``max_nodes``); ``seed`` seeds sampling and the forest."""

    number_of_trees: int
    variables_per_split: int
    min_leaf_population: int
    bag_fraction: float
    max_nodes: int
    seed: int
    num_samples: int
    homogeneity_keep_fraction: float
    reduce_max_pixels: int
    tile_scale: int


@dataclass(frozen=True)
class PullConfig:
    """xee pull settings: concurrent requests, retries, first backoff delay (s), endpoint."""

    max_workers: int
    max_retries: int
    initial_delay_s: float
    high_volume: bool


@dataclass(frozen=True)
class StudyConfig:
    """A validated study config.

    - ``bbox``: AOI bounds ``(west, south, east, north)`` in degrees (from the GeoJSON when given);
    - ``aoi_geometry``: the GeoJSON geometry dict (degrees) or ``None`` for a plain bbox;
    - ``years``: inclusive ``(first, last)``; ``scale_m``: pixel size (m); ``crs``: grid CRS
      (``None`` = UTM zone of the AOI centre).
    """

    name: str
    years: tuple[int, int]
    bbox: tuple[float, float, float, float]
    aoi_geometry: dict | None
    scale_m: float
    crs: str | None
    collections: CollectionsConfig
    season: SeasonConfig
    qa: QaConfig
    rf: RfConfig
    pull: PullConfig
    source: str = "<defaults>"
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    def year_list(self) -> list[int]:
        """All study years, ascending."""
        return list(range(self.years[0], self.years[1] + 1))

    def grid(self) -> Grid:
        """The output :class:`~gee_alt.grid.Grid` (``scale_m`` pixels covering ``bbox``)."""
        return grid_from_bbox(self.bbox, self.scale_m, self.crs)

    def aoi_geojson(self) -> dict:
        """The AOI as a GeoJSON geometry (degrees): the polygon, or the bbox as a Polygon."""
        if self.aoi_geometry is not None:
            return self.aoi_geometry
        w, s, e, n = self.bbox
        return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}

    def to_dict(self) -> dict:
        """The merged config as plain TOML-like data (for plans and run records)."""
        return json.loads(json.dumps(self.raw))


# --------------------------------------------------------------------------- loading


def default_config_text() -> str:
    """The shipped default config (TOML text)."""
    return resources.files("gee_alt").joinpath("default_config.toml").read_text(encoding="utf-8")


def load_config(path: str | Path | None = None) -> StudyConfig:
    """Load and validate a study config; ``None`` gives the default (Datong) study.

    Raises :class:`GeeAltError` (one line) for a missing/unreadable file, bad TOML,
    unknown keys, wrong types and out-of-range values.
    """
    defaults = tomllib.loads(default_config_text())
    if path is None:
        return config_from_dict(defaults, base_dir=None, source="<defaults>")
    p = Path(path)
    if not p.is_file():
        raise GeeAltError(f"config file not found: {p}")
    try:
        user = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise GeeAltError(f"{p.name}: invalid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GeeAltError(f"cannot read config {p}: {exc}") from None
    merged = merge_config(defaults, user)
    return config_from_dict(merged, base_dir=p.parent, source=str(p))


def merge_config(defaults: dict, user: dict) -> dict:
    """Overlay ``user`` tables on ``defaults``; unknown tables/keys raise :class:`GeeAltError`.

    A user ``[aoi]`` table replaces the default AOI entirely (bbox *or* geojson).
    """
    out = {k: dict(v) for k, v in defaults.items()}
    for table, values in user.items():
        if table not in defaults:
            raise GeeAltError(f"unknown config table [{table}] (known: {', '.join(sorted(defaults))})")
        if not isinstance(values, dict):
            raise GeeAltError(f"config [{table}] must be a table")
        known = set(defaults[table]) | ({"geojson"} if table == "aoi" else set())
        for key in values:
            if key not in known:
                raise GeeAltError(f"unknown config key {table}.{key} (known: {', '.join(sorted(known))})")
        if table == "aoi":
            out["aoi"] = dict(values)
        else:
            out[table].update(values)
    return out


def _get(d: dict, table: str, key: str, kind: type | tuple[type, ...]):
    """``d[table][key]`` checked against ``kind`` (``float`` accepts ints; bools are not ints)."""
    try:
        v = d[table][key]
    except KeyError:
        raise GeeAltError(f"config key {table}.{key} is missing") from None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = any((isinstance(v, int) and not isinstance(v, bool)) if k is int else
             (isinstance(v, (int, float)) and not isinstance(v, bool)) if k is float else isinstance(v, k)
             for k in kinds)
    if not ok:
        names = " or ".join(k.__name__ for k in kinds)
        raise GeeAltError(f"config key {table}.{key} must be {names}, got {type(v).__name__} {v!r}")
    return float(v) if kinds == (float,) else v


def _mmdd(table: str, key: str, v: str) -> str:
    """Validate a ``MM-DD`` string (a day that exists in a leap year)."""
    try:
        _dt.date(2000, int(v[:2]), int(v[3:5]))
        if len(v) != 5 or v[2] != "-":
            raise ValueError
    except ValueError:
        raise GeeAltError(f"config key {table}.{key} must be a MM-DD date like \"04-01\", got {v!r}") from None
    return v


def _check_lonlat_box(w: float, s: float, e: float, n: float, what: str) -> None:
    """Raise unless ``(w, s, e, n)`` (degrees) is a non-empty box inside the world."""
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise GeeAltError(f"{what} has non-finite coordinates")
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise GeeAltError(f"{what} ({w}, {s}, {e}, {n}) is outside the world (lon -180..180, lat -90..90)")
    if not (w < e and s < n):
        raise GeeAltError(f"{what} must be west < east and south < north, got ({w}, {s}, {e}, {n})")


def read_geojson_aoi(path: str | Path) -> dict:
    """The AOI geometry (a GeoJSON Polygon/MultiPolygon dict, degrees) from a GeoJSON file.

    Accepts a geometry, a Feature or a FeatureCollection (its polygons are unioned into a
    MultiPolygon). Raises :class:`GeeAltError` for a missing, invalid or empty file.
    """
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

    p = Path(path)
    if not p.is_file():
        raise GeeAltError(f"AOI GeoJSON not found: {p}")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GeeAltError(f"AOI GeoJSON {p.name} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise GeeAltError(f"AOI GeoJSON {p.name} must be a geometry, Feature or FeatureCollection")
    if obj.get("type") == "FeatureCollection":
        geoms = [f.get("geometry") for f in obj.get("features") or [] if isinstance(f, dict)]
    elif obj.get("type") == "Feature":
        geoms = [obj.get("geometry")]
    else:
        geoms = [obj]
    geoms = [g for g in geoms if g]
    if not geoms:
        raise GeeAltError(f"AOI GeoJSON {p.name} holds no geometry")
    try:
        shapes = [shape(g) for g in geoms]
    except Exception as exc:  # shapely raises several types for malformed geometry
        raise GeeAltError(f"AOI GeoJSON {p.name} has an invalid geometry ({exc})") from None
    if any(s.geom_type not in ("Polygon", "MultiPolygon") for s in shapes):
        raise GeeAltError(f"AOI GeoJSON {p.name} must hold Polygon or MultiPolygon geometries")
    geom = unary_union(shapes) if len(shapes) > 1 else shapes[0]
    if geom.is_empty or geom.area <= 0:
        raise GeeAltError(f"AOI GeoJSON {p.name} has an empty geometry")
    _check_lonlat_box(*geom.bounds, what=f"AOI GeoJSON {p.name} bounds")
    return json.loads(json.dumps(mapping(geom)))


def config_from_dict(d: dict, base_dir: Path | None = None, source: str = "<dict>") -> StudyConfig:
    """Validate merged config data (as from TOML) into a :class:`StudyConfig`."""
    name = _get(d, "study", "name", str)
    years = _get(d, "study", "years", list)
    if len(years) != 2 or not all(isinstance(y, int) and not isinstance(y, bool) for y in years):
        raise GeeAltError(f"config key study.years must be [first, last] integers, got {years!r}")
    y0, y1 = years
    last_year = _dt.date.today().year
    if y0 > y1:
        raise GeeAltError(f"study.years is reversed: {y0} > {y1}")
    if y0 < FIRST_DATA_YEAR or y1 > last_year:
        raise GeeAltError(f"study.years {y0}-{y1} outside the data range {FIRST_DATA_YEAR}-{last_year} "
                          "(MODIS LST starts in 2000)")

    aoi = d.get("aoi") or {}
    if "bbox" in aoi and "geojson" in aoi:
        raise GeeAltError("config [aoi] must give either bbox or geojson, not both")
    geometry = None
    if "geojson" in aoi:
        gpath = Path(_get(d, "aoi", "geojson", str))
        if base_dir is not None and not gpath.is_absolute():
            gpath = base_dir / gpath
        geometry = read_geojson_aoi(gpath)
        from shapely.geometry import shape
        bbox = tuple(float(v) for v in shape(geometry).bounds)
    elif "bbox" in aoi:
        bb = _get(d, "aoi", "bbox", list)
        if len(bb) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bb):
            raise GeeAltError(f"config key aoi.bbox must be [west, south, east, north] numbers, got {bb!r}")
        bbox = tuple(float(v) for v in bb)
        _check_lonlat_box(*bbox, what="aoi.bbox")
    else:
        raise GeeAltError("config [aoi] needs bbox = [west, south, east, north] or geojson = \"FILE\"")

    scale_m = _get(d, "grid", "scale_m", float)
    if not (math.isfinite(scale_m) and scale_m > 0):
        raise GeeAltError(f"grid.scale_m must be positive, got {scale_m}")
    w_, s_, e_, n_ = bbox
    width_px = (e_ - w_) * 111_320.0 * math.cos(math.radians(max(abs(s_), abs(n_)) if s_ * n_ > 0 else 0.0)) / scale_m
    height_px = (n_ - s_) * 110_574.0 / scale_m
    if width_px > MAX_GRID_SIDE_PX or height_px > MAX_GRID_SIDE_PX or width_px * height_px > MAX_GRID_PIXELS:
        raise GeeAltError(f"grid.scale_m {scale_m:g} m gives a grid of about {width_px:,.0f} x {height_px:,.0f} px over the AOI; "
                          f"use a coarser scale (e.g. 30) or a smaller AOI (at most {MAX_GRID_SIDE_PX} px a side)")
    crs = _get(d, "grid", "crs", str).strip() or None
    if crs is not None:
        from pyproj import CRS
        from pyproj.exceptions import CRSError
        try:
            CRS.from_user_input(crs)
        except CRSError:
            raise GeeAltError(f"grid.crs {crs!r} is not a known CRS (use e.g. \"EPSG:32647\")") from None
        require_projected(crs, "grid.crs (scale_m is in metres)")

    lst = _get(d, "collections", "lst", list)
    for c in lst:
        if c not in LST_COLLECTIONS:
            raise GeeAltError(f"unknown LST collection {c!r} (known: {', '.join(LST_COLLECTIONS)})")
    if LST_COLLECTIONS[0] not in lst:
        raise GeeAltError(f"collections.lst must include Terra {LST_COLLECTIONS[0]} (the only LST before 2002-07)")
    ndvi = _get(d, "collections", "ndvi", str)
    if ndvi not in NDVI_COLLECTIONS:
        raise GeeAltError(f"unknown NDVI collection {ndvi!r} (known: {', '.join(NDVI_COLLECTIONS)})")
    landsat = _get(d, "collections", "landsat", list)
    if not landsat:
        raise GeeAltError("collections.landsat must list at least one Landsat collection")
    for c in landsat:
        if c not in LANDSAT_COLLECTIONS:
            raise GeeAltError(f"unknown Landsat collection {c!r} (known: {', '.join(LANDSAT_COLLECTIONS)})")
    dem = _get(d, "collections", "dem", str)
    if dem not in DEM_CHOICES:
        raise GeeAltError(f"unknown DEM {dem!r} (choose {' | '.join(DEM_CHOICES)})")

    s = "season"
    season = SeasonConfig(
        thaw_start=_mmdd(s, "thaw_start", _get(d, s, "thaw_start", str)),
        thaw_end=_mmdd(s, "thaw_end", _get(d, s, "thaw_end", str)),
        lst_step_days=_get(d, s, "lst_step_days", int),
        growing_start=_mmdd(s, "growing_start", _get(d, s, "growing_start", str)),
        growing_end=_mmdd(s, "growing_end", _get(d, s, "growing_end", str)),
        min_valid_fraction=_get(d, s, "min_valid_fraction", float),
    )
    if season.thaw_start >= season.thaw_end:
        raise GeeAltError(f"season.thaw_start {season.thaw_start} must come before thaw_end {season.thaw_end}")
    if season.growing_start >= season.growing_end:
        raise GeeAltError(f"season.growing_start {season.growing_start} must come before growing_end")
    if not 1 <= season.lst_step_days <= 32:
        raise GeeAltError(f"season.lst_step_days must be 1..32, got {season.lst_step_days}")
    if not 0 <= season.min_valid_fraction <= 1:
        raise GeeAltError(f"season.min_valid_fraction must be in 0..1, got {season.min_valid_fraction}")

    qa = QaConfig(
        lst_max_error_k=_get(d, "qa", "lst_max_error_k", int),
        landsat_mask_snow=_get(d, "qa", "landsat_mask_snow", bool),
        modis_ndvi_max_summary_qa=_get(d, "qa", "modis_ndvi_max_summary_qa", int),
    )
    if qa.lst_max_error_k not in (1, 2, 3, 4):
        raise GeeAltError(f"qa.lst_max_error_k must be 1, 2, 3 or 4 (any), got {qa.lst_max_error_k}")
    if qa.modis_ndvi_max_summary_qa not in (0, 1, 2, 3):
        raise GeeAltError(f"qa.modis_ndvi_max_summary_qa must be 0..3, got {qa.modis_ndvi_max_summary_qa}")

    r = "rf"
    rf = RfConfig(**{k: _get(d, r, k, float if k in ("bag_fraction", "homogeneity_keep_fraction") else int)
                     for k in RfConfig.__dataclass_fields__})
    if rf.number_of_trees < 1 or rf.num_samples < 10 or rf.min_leaf_population < 1:
        raise GeeAltError("rf.number_of_trees and rf.min_leaf_population must be >= 1 and rf.num_samples >= 10")
    if rf.variables_per_split < 0 or rf.max_nodes < 0 or rf.tile_scale < 1 or rf.reduce_max_pixels < 1:
        raise GeeAltError("rf.variables_per_split/max_nodes must be >= 0, rf.tile_scale/reduce_max_pixels >= 1")
    if not (0 < rf.bag_fraction <= 1 and 0 < rf.homogeneity_keep_fraction <= 1):
        raise GeeAltError("rf.bag_fraction and rf.homogeneity_keep_fraction must be in (0, 1]")

    pull = PullConfig(
        max_workers=_get(d, "pull", "max_workers", int),
        max_retries=_get(d, "pull", "max_retries", int),
        initial_delay_s=_get(d, "pull", "initial_delay_s", float),
        high_volume=_get(d, "pull", "high_volume", bool),
    )
    if not 1 <= pull.max_workers <= 40:
        raise GeeAltError(f"pull.max_workers must be 1..40 (Earth Engine's concurrency limit), got {pull.max_workers}")
    if pull.max_retries < 0 or pull.initial_delay_s < 0:
        raise GeeAltError("pull.max_retries and pull.initial_delay_s must be >= 0")

    raw = json.loads(json.dumps(d))
    return StudyConfig(name=name, years=(y0, y1), bbox=bbox, aoi_geometry=geometry, scale_m=scale_m, crs=crs,
                       collections=CollectionsConfig(tuple(lst), ndvi, tuple(landsat), dem),
                       season=season, qa=qa, rf=rf, pull=pull, source=source, raw=raw)
