"""The study config: AOI, years, grid, collections, seasons, QA thresholds, forest, EE sampling, pull.

A TOML file (read with :mod:`tomllib`) is merged over the shipped defaults
(``gee_alt/default_config.toml`` = the Datong River source study) and validated with pydantic
models (strict types, unknown keys forbidden); the first problem found becomes one
:class:`~gee_alt.errors.GeeAltError` line naming the key and the fix. Only this module reads
config files; everything else takes a :class:`StudyConfig`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, grid_from_bbox, require_projected
from gee_alt.science.forest import RandomForestSettings

# First year with MODIS LST (Terra MOD11A1 starts 2000-02-24).
FIRST_DATA_YEAR = 2000

LST_COLLECTIONS = ("MODIS/061/MOD11A1", "MODIS/061/MYD11A1")
NDVI_COLLECTIONS = ("MODIS/061/MOD13Q1", "MODIS/061/MOD09GQ")
LANDSAT_COLLECTIONS = (
    "LANDSAT/LT05/C02/T1_L2",
    "LANDSAT/LE07/C02/T1_L2",
    "LANDSAT/LC08/C02/T1_L2",
    "LANDSAT/LC09/C02/T1_L2",
)
DEM_CHOICES = ("copernicus", "srtm", "nasadem")
MAX_GRID_SIDE_PX = 100_000  # output grid limits (a side; all pixels) that keep a study tractable
MAX_GRID_PIXELS = 2_000_000_000


class _Table(BaseModel):
    """A config table: strict types (``"30"`` is not a float, ``1`` is not a bool; an int is a
    float), unknown keys forbidden, frozen. Validators raise ``ValueError`` with the full line."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _lonlat_box_problem(w: float, s: float, e: float, n: float, what: str) -> str | None:
    """What is wrong with ``(w, s, e, n)`` (degrees) as a non-empty box inside the world, or ``None``."""
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        return f"{what} has non-finite coordinates"
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        return f"{what} ({w}, {s}, {e}, {n}) is outside the world (lon -180..180, lat -90..90)"
    if not (w < e and s < n):
        return f"{what} must be west < east and south < north, got ({w}, {s}, {e}, {n})"
    return None


class _StudyTable(_Table):
    """``[study]``: ``name`` and inclusive ``years = [first, last]``."""

    name: str
    years: list

    @field_validator("years")
    @classmethod
    def _years_with_data(cls, years: list) -> list:
        if len(years) != 2 or not all(isinstance(y, int) and not isinstance(y, bool) for y in years):
            raise ValueError(f"config key study.years must be [first, last] integers, got {years!r}")
        y0, y1 = years
        last_year = _dt.date.today().year
        if y0 > y1:
            raise ValueError(f"study.years is reversed: {y0} > {y1}")
        if y0 < FIRST_DATA_YEAR or y1 > last_year:
            raise ValueError(
                f"study.years {y0}-{y1} outside the data range {FIRST_DATA_YEAR}-{last_year} (MODIS LST starts in 2000)"
            )
        return years


class _AoiTable(_Table):
    """``[aoi]``: a lon/lat ``bbox`` (degrees) *or* a ``geojson`` file (read by :func:`config_from_dict`)."""

    bbox: list | None = None
    geojson: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bbox_or_geojson(cls, data):
        if isinstance(data, dict):
            if "bbox" in data and "geojson" in data:
                raise ValueError("config [aoi] must give either bbox or geojson, not both")
            if "bbox" not in data and "geojson" not in data:
                raise ValueError('config [aoi] needs bbox = [west, south, east, north] or geojson = "FILE"')
        return data

    @field_validator("bbox")
    @classmethod
    def _box_in_the_world(cls, bb: list | None) -> list | None:
        if bb is None:
            return None
        if len(bb) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bb):
            raise ValueError(f"config key aoi.bbox must be [west, south, east, north] numbers, got {bb!r}")
        box = [float(v) for v in bb]
        problem = _lonlat_box_problem(*box, what="aoi.bbox")
        if problem:
            raise ValueError(problem)
        return box


class _GridTable(_Table):
    """``[grid]``: pixel size ``scale_m`` (m), ``crs`` (projected; ``""`` = UTM zone of the AOI centre)
    and ``origin_offset_m`` (m): pixel edges at this offset plus multiples of ``scale_m``
    (15 = Landsat Collection 2's UTM pixel edges; 0 = multiples of ``scale_m``)."""

    scale_m: float
    crs: str
    origin_offset_m: float = 0.0

    @field_validator("origin_offset_m")
    @classmethod
    def _offset_finite(cls, o: float) -> float:
        if not (math.isfinite(o) and o >= 0):
            raise ValueError(f"grid.origin_offset_m must be >= 0 (m), got {o}")
        return o

    @field_validator("scale_m")
    @classmethod
    def _positive(cls, scale_m: float) -> float:
        if not (math.isfinite(scale_m) and scale_m > 0):
            raise ValueError(f"grid.scale_m must be positive, got {scale_m}")
        return scale_m

    @field_validator("crs")
    @classmethod
    def _known_projected_crs(cls, crs: str) -> str:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        crs = crs.strip()
        if crs:
            try:
                CRS.from_user_input(crs)
            except CRSError:
                raise ValueError(f'grid.crs {crs!r} is not a known CRS (use e.g. "EPSG:32647")') from None
            require_projected(crs, "grid.crs (scale_m is in metres)")  # its GeeAltError passes through pydantic
        return crs


class CollectionsConfig(_Table):
    """Earth Engine collection ids (``lst``: MODIS daily LST; ``ndvi``: MODIS 250 m NDVI source;
    ``landsat``: Collection 2 Level 2 missions; ``dem``: one of :data:`DEM_CHOICES`)."""

    lst: tuple[str, ...] = Field(strict=False)  # TOML arrays arrive as lists
    ndvi: str
    landsat: tuple[str, ...] = Field(strict=False)
    dem: str

    @field_validator("lst")
    @classmethod
    def _known_lst(cls, lst: tuple[str, ...]) -> tuple[str, ...]:
        for c in lst:
            if c not in LST_COLLECTIONS:
                raise ValueError(f"unknown LST collection {c!r} (known: {', '.join(LST_COLLECTIONS)})")
        if LST_COLLECTIONS[0] not in lst:
            raise ValueError(f"collections.lst must include Terra {LST_COLLECTIONS[0]} (the only LST before 2002-07)")
        return lst

    @field_validator("ndvi")
    @classmethod
    def _known_ndvi(cls, ndvi: str) -> str:
        if ndvi not in NDVI_COLLECTIONS:
            raise ValueError(f"unknown NDVI collection {ndvi!r} (known: {', '.join(NDVI_COLLECTIONS)})")
        return ndvi

    @field_validator("landsat")
    @classmethod
    def _known_landsat(cls, landsat: tuple[str, ...]) -> tuple[str, ...]:
        if not landsat:
            raise ValueError("collections.landsat must list at least one Landsat collection")
        for c in landsat:
            if c not in LANDSAT_COLLECTIONS:
                raise ValueError(f"unknown Landsat collection {c!r} (known: {', '.join(LANDSAT_COLLECTIONS)})")
        return landsat

    @field_validator("dem")
    @classmethod
    def _known_dem(cls, dem: str) -> str:
        if dem not in DEM_CHOICES:
            raise ValueError(f"unknown DEM {dem!r} (choose {' | '.join(DEM_CHOICES)})")
        return dem


class SeasonConfig(_Table):
    """Seasons as ``MM-DD`` day-of-year bounds (inclusive), the LST window length (days) and the
    fewest valid windows (fraction 0..1) for a DDT value; how permafrost is decided
    (``permafrost_criterion``: a presence-probability model fitted on drill holes, the fitted
    frost-number threshold, or ``frost_number_min`` as given; ALT is written only on permafrost)
    and how the frost number of a year
    is formed (``frost_number_method`` over ``frost_number_years``, :mod:`gee_alt.science.frost_climate`)."""

    thaw_start: str
    thaw_end: str
    lst_step_days: int
    growing_start: str
    growing_end: str
    min_valid_fraction: float
    frost_number_min: float = 0.5
    permafrost_criterion: str = "probability"
    permafrost_shift_weights: bool = True
    frost_number_method: str = "memory"
    frost_number_years: int = 4

    @field_validator("frost_number_method")
    @classmethod
    def _frost_method(cls, v: str) -> str:
        from gee_alt.science.frost_climate import FROST_NUMBER_METHODS

        if v not in FROST_NUMBER_METHODS:
            raise ValueError(f"season.frost_number_method must be one of {', '.join(FROST_NUMBER_METHODS)}, got {v!r}")
        return v

    @field_validator("frost_number_years")
    @classmethod
    def _frost_years(cls, n: int, info: ValidationInfo) -> int:
        from gee_alt.science.frost_climate import check_setting

        try:
            check_setting(info.data.get("frost_number_method", "memory"), n)
        except ValueError as exc:
            raise ValueError(f"season.frost_number_years: {exc}") from None
        return n

    @field_validator("permafrost_criterion")
    @classmethod
    def _criterion(cls, v: str) -> str:
        if v not in ("probability", "boreholes", "frost_number"):
            raise ValueError(
                f'season.permafrost_criterion must be "probability", "boreholes" or "frost_number", got {v!r}'
            )
        return v

    @field_validator("thaw_start", "thaw_end", "growing_start", "growing_end")
    @classmethod
    def _mmdd(cls, v: str, info: ValidationInfo) -> str:
        """A ``MM-DD`` string (a day that exists in a leap year)."""
        try:
            _dt.date(2000, int(v[:2]), int(v[3:5]))
            if len(v) != 5 or v[2] != "-":
                raise ValueError
        except ValueError:
            raise ValueError(
                f'config key season.{info.field_name} must be a MM-DD date like "04-01", got {v!r}'
            ) from None
        return v

    @field_validator("lst_step_days")
    @classmethod
    def _step_in_a_month(cls, days: int) -> int:
        if not 1 <= days <= 32:
            raise ValueError(f"season.lst_step_days must be 1..32, got {days}")
        return days

    @field_validator("min_valid_fraction")
    @classmethod
    def _fraction(cls, f: float) -> float:
        if not 0 <= f <= 1:
            raise ValueError(f"season.min_valid_fraction must be in 0..1, got {f}")
        return f

    @field_validator("frost_number_min")
    @classmethod
    def _frost(cls, f: float) -> float:
        if not 0 < f < 1:
            raise ValueError(f"season.frost_number_min must be between 0 and 1, got {f}")
        return f

    @model_validator(mode="after")
    def _start_before_end(self) -> SeasonConfig:
        if self.thaw_start >= self.thaw_end:
            raise ValueError(f"season.thaw_start {self.thaw_start} must come before thaw_end {self.thaw_end}")
        if self.growing_start >= self.growing_end:
            raise ValueError(f"season.growing_start {self.growing_start} must come before growing_end")
        return self


class QaConfig(_Table):
    """QA thresholds: MODIS LST error class (K, 1/2/3, 4 = any), Landsat snow masking,
    MOD13Q1 SummaryQA ceiling (0 good, 1 marginal)."""

    lst_max_error_k: int
    landsat_mask_snow: bool
    modis_ndvi_max_summary_qa: int

    @field_validator("lst_max_error_k")
    @classmethod
    def _error_class(cls, k: int) -> int:
        if k not in (1, 2, 3, 4):
            raise ValueError(f"qa.lst_max_error_k must be 1, 2, 3 or 4 (any), got {k}")
        return k

    @field_validator("modis_ndvi_max_summary_qa")
    @classmethod
    def _summary_qa(cls, q: int) -> int:
        if q not in (0, 1, 2, 3):
            raise ValueError(f"qa.modis_ndvi_max_summary_qa must be 0..3, got {q}")
        return q


class EeSamplingConfig(_Table):
    """Earth Engine engine only: how coarse training pixels are drawn and 30 m pixels aggregated.

    - ``num_samples``: coarse training pixels drawn per forest (``Image.sample`` ``numPixels``);
    - ``reduce_max_pixels``: a floor for ``reduceResolution`` ``maxPixels`` (30 m pixels per coarse
      pixel); 0 = measured from the MODIS cell footprint on the AOI and grid
      (:mod:`gee_alt.engines.ee.footprint`; ≈ 2300 at 1 km over Datong), which is used whenever larger;
    - ``tile_scale``: ``tileScale`` (1..16) of sampling and region reductions; raise it when
      Earth Engine reports "User memory limit exceeded".
    """

    num_samples: int = Field(ge=10)
    reduce_max_pixels: int = Field(ge=0)
    tile_scale: int = Field(ge=1, le=16)


class PullConfig(_Table):
    """xee pull settings: concurrent requests, retries, first backoff delay (s), endpoint."""

    max_workers: int
    max_retries: int = Field(ge=0)
    initial_delay_s: float = Field(ge=0.0)
    high_volume: bool

    @field_validator("max_workers")
    @classmethod
    def _ee_concurrency(cls, n: int) -> int:
        if not 1 <= n <= 40:
            raise ValueError(f"pull.max_workers must be 1..40 (Earth Engine's concurrency limit), got {n}")
        return n


class EeRunConfig(_Table):
    """Earth Engine engine: where the sharpening runs and how each year is computed.

    - ``sharpen``: ``server`` (random forests on Earth Engine) or ``local`` (Earth Engine
      composites only, pulled into the local input layout and sharpened by the local engine);
    - ``path``: ``auto``, ``interactive`` (``computePixels`` through xee) or ``batch``
      (``Export.image.toAsset`` tasks, then a pull of the finished asset); ``auto`` takes
      ``batch`` when a year's 30 m pixels x forests evaluated at 30 m exceed
      ``interactive_max_forest_px``;
    - ``asset_root``: folder for the exported yearly assets (``""`` =
      ``projects/<project>/assets/gee-alt``); ``poll_interval_s``: seconds between task polls.
    """

    sharpen: str = "server"
    path: str = "auto"
    asset_root: str = ""
    interactive_max_forest_px: int = Field(default=20_000_000, ge=0)
    poll_interval_s: float = Field(default=30.0, ge=0.0)

    @field_validator("sharpen")
    @classmethod
    def _sharpen(cls, v: str) -> str:
        if v not in ("server", "local"):
            raise ValueError(f"ee_run.sharpen must be 'server' or 'local', got {v!r}")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if v not in ("auto", "interactive", "batch"):
            raise ValueError(f"ee_run.path must be 'auto', 'interactive' or 'batch', got {v!r}")
        return v


class _ConfigFile(BaseModel):
    """The merged TOML: one field per table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    study: _StudyTable
    aoi: _AoiTable
    grid: _GridTable
    collections: CollectionsConfig
    season: SeasonConfig
    qa: QaConfig
    rf: RandomForestSettings
    ee_sampling: EeSamplingConfig
    pull: PullConfig
    ee_run: EeRunConfig = EeRunConfig()


@dataclass(frozen=True)
class StudyConfig:
    """A validated study config.

    - ``bbox``: AOI bounds ``(west, south, east, north)`` in degrees (from the GeoJSON when given);
    - ``aoi_geometry``: the GeoJSON geometry dict (degrees) or ``None`` for a plain bbox;
    - ``years``: inclusive ``(first, last)``; ``scale_m``: pixel size (m); ``crs``: grid CRS
      (``None`` = UTM zone of the AOI centre);
    - ``rf``: the random forests (both engines); ``ee_sampling``: Earth Engine sampling only.
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
    rf: RandomForestSettings
    ee_sampling: EeSamplingConfig
    pull: PullConfig
    source: str = "<defaults>"
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    origin_offset_m: float = 0.0
    ee_run: EeRunConfig = field(default_factory=EeRunConfig)

    def year_list(self) -> list[int]:
        """All study years, ascending."""
        return list(range(self.years[0], self.years[1] + 1))

    def grid(self) -> Grid:
        """The output :class:`~gee_alt.grid.Grid` (``scale_m`` pixels covering ``bbox``)."""
        return grid_from_bbox(self.bbox, self.scale_m, self.crs, self.origin_offset_m)

    def aoi_geojson(self) -> dict:
        """The AOI as a GeoJSON geometry (degrees): the polygon, or the bbox as a Polygon."""
        if self.aoi_geometry is not None:
            return self.aoi_geometry
        w, s, e, n = self.bbox
        return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}

    def to_dict(self) -> dict:
        """The merged config as plain TOML-like data (for plans and run records)."""
        return json.loads(json.dumps(self.raw))


# --------------------------------------------------------------------------- errors

_TYPE_NAMES = {
    "int_type": "int",
    "float_type": "float",
    "bool_type": "bool",
    "string_type": "str",
    "list_type": "list",
    "tuple_type": "list",
}
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def _unknown_message(loc: tuple) -> str:
    """``unknown config table [t] (known: ...)`` or ``unknown config key t.k (known: ...)``."""
    tables = _ConfigFile.model_fields
    if len(loc) == 1 or loc[0] not in tables:
        return f"unknown config table [{loc[0]}] (known: {', '.join(sorted(tables))})"
    known = sorted(tables[loc[0]].annotation.model_fields)
    return f"unknown config key {loc[0]}.{loc[1]} (known: {', '.join(known)})"


def _config_error(exc: ValidationError) -> GeeAltError:
    """The first problem of a config validation as one :class:`GeeAltError` line naming the key
    (dotted: ``rf.n_estimators``; list items as ``collections.lst.0``)."""
    err = exc.errors(include_url=False)[0]
    kind, loc, value = err["type"], tuple(err["loc"]), err.get("input")
    key = ".".join(str(p) for p in loc)
    if kind == "value_error":  # a validator's own line
        return GeeAltError(str(err["ctx"]["error"]))
    if kind == "extra_forbidden":
        return GeeAltError(_unknown_message(loc))
    if len(loc) == 1 and kind == "model_type":
        return GeeAltError(f"config [{key}] must be a table")
    if len(loc) == 1 and kind == "missing":
        return GeeAltError(f"config table [{key}] is missing")
    if kind == "missing":
        return GeeAltError(f"config key {key} is missing")
    if kind in _TYPE_NAMES:
        return GeeAltError(f"config key {key} must be {_TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}")
    if kind in _BOUNDS:
        op, bound = _BOUNDS[kind]
        return GeeAltError(f"config key {key} must be {op} {err['ctx'][bound]}, got {value!r}")
    return GeeAltError(f"config key {key or '(top level)'}: {err['msg']}")


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
    """Overlay ``user`` tables on ``defaults`` key by key; an unknown table or a non-table raises
    :class:`GeeAltError` (unknown keys are left to :func:`config_from_dict`, which names them).

    A user ``[aoi]`` table replaces the default AOI entirely (bbox *or* geojson).
    """
    out = {k: dict(v) for k, v in defaults.items()}
    for table, values in user.items():
        if table not in _ConfigFile.model_fields:
            raise GeeAltError(_unknown_message((table,)))
        if not isinstance(values, dict):
            raise GeeAltError(f"config [{table}] must be a table")
        out[table] = dict(values) if table == "aoi" else {**out.get(table, {}), **values}
    return out


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
    problem = _lonlat_box_problem(*geom.bounds, what=f"AOI GeoJSON {p.name} bounds")
    if problem:
        raise GeeAltError(problem)
    return json.loads(json.dumps(mapping(geom)))


def _check_grid_size(bbox: tuple[float, float, float, float], scale_m: float) -> None:
    """Raise unless ``scale_m`` pixels over ``bbox`` (degrees) stay within the grid limits."""
    w, s, e, n = bbox
    width_px = (e - w) * 111_320.0 * math.cos(math.radians(max(abs(s), abs(n)) if s * n > 0 else 0.0)) / scale_m
    height_px = (n - s) * 110_574.0 / scale_m
    if width_px > MAX_GRID_SIDE_PX or height_px > MAX_GRID_SIDE_PX or width_px * height_px > MAX_GRID_PIXELS:
        raise GeeAltError(
            f"grid.scale_m {scale_m:g} m gives a grid of about {width_px:,.0f} x {height_px:,.0f} px over the AOI; "
            f"use a coarser scale (e.g. 30) or a smaller AOI (at most {MAX_GRID_SIDE_PX} px a side)"
        )


def config_from_dict(d: dict, base_dir: Path | None = None, source: str = "<dict>") -> StudyConfig:
    """Validate merged config data (as from TOML) into a :class:`StudyConfig`; a relative
    ``aoi.geojson`` is read from ``base_dir``."""
    try:
        tables = _ConfigFile.model_validate(d)
    except ValidationError as exc:
        raise _config_error(exc) from None
    geometry = None
    if tables.aoi.geojson is not None:
        from shapely.geometry import shape

        gpath = Path(tables.aoi.geojson)
        if base_dir is not None and not gpath.is_absolute():
            gpath = base_dir / gpath
        geometry = read_geojson_aoi(gpath)
        bbox = tuple(float(v) for v in shape(geometry).bounds)
    else:
        bbox = tuple(tables.aoi.bbox)
    _check_grid_size(bbox, tables.grid.scale_m)
    y0, y1 = tables.study.years
    return StudyConfig(
        name=tables.study.name,
        years=(y0, y1),
        bbox=bbox,
        aoi_geometry=geometry,
        scale_m=tables.grid.scale_m,
        crs=tables.grid.crs or None,
        collections=tables.collections,
        season=tables.season,
        qa=tables.qa,
        rf=tables.rf,
        ee_sampling=tables.ee_sampling,
        pull=tables.pull,
        source=source,
        raw=json.loads(json.dumps(d)),
        origin_offset_m=tables.grid.origin_offset_m,
        ee_run=tables.ee_run,
    )
