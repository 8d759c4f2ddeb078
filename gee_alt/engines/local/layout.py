"""The local input layout: a directory of GeoTIFFs the local engine reads.

::

    INPUTS/
      dem.tif                      30 m DEM (m). Defines the output grid (any projected CRS).
      landcover.tif                optional: integer land-cover classes on the DEM grid.
      landsat_ndvi/ndvi_YYYY.tif   growing-season Landsat NDVI (unitless) on the DEM grid; NaN = gap.
      modis_ndvi/ndvi_YYYY.tif     MODIS NDVI (~250 m), any CRS (e.g. MODIS sinusoidal).
      modis_lst/lst_YYYY.tif       MODIS LST composites (~1 km), any CRS, covering the thaw
                                   season or the whole year (the engine takes the thaw season
                                   for DDT and the rest for the freezing index): one band per
                                   composite, band description = first day ("YYYY-MM-DD"),
                                   band tag ``days`` = composite length in days (default 8),
                                   dataset tag ``units`` = "degC" (default) or "K", and dataset
                                   tag ``quantity`` saying what the bands are, one of
                                   - a daily mean (e.g. "daily-mean land surface temperature,
                                     8-day composite"): one band per composite;
                                   - "day/night ... with view times" (MOD11A2 + MYD11A2): per
                                     composite, bands with tags ``sensor`` (terra|aqua) and
                                     ``look`` (day|night|day_view_time|night_view_time; view
                                     times in local solar hours), all with the same start date
                                     description; the engine makes one Terra-referenced daily
                                     mean from them (:mod:`gee_alt.science.daily_lst`).
                                   Files saying neither are refused.
                                   NaN (or the nodata value) = cloud gap.
      insitu.csv                   optional: in-situ ALT (site_id, lon, lat, year, alt_m, ...).

A year is processed when all three yearly files exist. Coarse rasters must overlap the DEM.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, bounds, grid_from_rasterio, require_projected, same_grid
from gee_alt.io import Raster, read_raster
from gee_alt.units import KELVIN_AT_0_DEGC

LANDSAT_NDVI_DIR, MODIS_NDVI_DIR, MODIS_LST_DIR = "landsat_ndvi", "modis_ndvi", "modis_lst"
YEAR_FILE = re.compile(r"^(?:ndvi|lst)_(\d{4})\.tif$")
DEFAULT_COMPOSITE_DAYS = 8
#: What the ``quantity`` tag of an LST file must state: each band is a daily mean.
LST_DAILY_MEAN = re.compile(r"daily[- _]mean", re.IGNORECASE)
#: ... or that the bands are day and night looks with their view times.
LST_DAY_NIGHT = re.compile(r"day[- _]?(/|and)[- _]?night", re.IGNORECASE)
LST_SENSORS = ("terra", "aqua")
LST_LOOKS = ("day", "night", "day_view_time", "night_view_time")


def day_night_bands(looks: dict, view_hours: dict, starts: list[dt.date], days) -> tuple[np.ndarray, list, list]:
    """The day/night layout's bands from ``looks``/``view_hours`` ``{"terra_day": (window, y, x), ...}``:
    (data, band descriptions, band tags), per window Terra then Aqua, day, night and view times."""
    data, desc, tags = [], [], []
    for i, (d, n) in enumerate(zip(starts, days, strict=True)):
        for sensor in LST_SENSORS:
            for look in LST_LOOKS:
                part = look.split("_")[0]
                src = view_hours if look.endswith("view_time") else looks
                data.append(src[f"{sensor}_{part}"][i])
                desc.append(d.isoformat())
                tags.append({"days": int(n), "sensor": sensor, "look": look})
    return np.stack(data).astype("float32"), desc, tags


@dataclass
class LstComposites:
    """One year's coarse LST composites: ``raster.data`` in °C, first day and length (days) of each."""

    raster: Raster
    start_dates: list[dt.date]
    days: np.ndarray


def _years_in(folder: Path) -> set[int]:
    if not folder.is_dir():
        return set()
    return {int(m.group(1)) for p in folder.iterdir() if (m := YEAR_FILE.match(p.name))}


def _overlaps(fine: Grid, coarse: Grid) -> bool:
    from rasterio.warp import transform_bounds

    left, b, r, t = transform_bounds(coarse["crs"], fine["crs"], *bounds(coarse), densify_pts=21)
    fl, fb, fr, ft = bounds(fine)
    return left < fr and r > fl and b < ft and t > fb


def _input_years(root: Path) -> list[int]:
    """The years that have all of Landsat NDVI, MODIS NDVI and MODIS LST under ``root``."""
    found = [_years_in(root / d) for d in (LANDSAT_NDVI_DIR, MODIS_NDVI_DIR, MODIS_LST_DIR)]
    return sorted(set.intersection(*found))


class InputPaths:
    """The file names of the input layout under ``root`` (no file is read; writers use it too)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def landsat_ndvi_path(self, year: int) -> Path:
        """``INPUTS/landsat_ndvi/ndvi_YYYY.tif``."""
        return self.root / LANDSAT_NDVI_DIR / f"ndvi_{year}.tif"

    def modis_ndvi_path(self, year: int) -> Path:
        """``INPUTS/modis_ndvi/ndvi_YYYY.tif``."""
        return self.root / MODIS_NDVI_DIR / f"ndvi_{year}.tif"

    def modis_lst_path(self, year: int) -> Path:
        """``INPUTS/modis_lst/lst_YYYY.tif``."""
        return self.root / MODIS_LST_DIR / f"lst_{year}.tif"


class InputLayout(InputPaths):
    """An input directory in the documented layout (see the module docstring), opened and checked."""

    def __init__(self, root: str | Path):
        super().__init__(root)
        if not self.root.is_dir():
            raise GeeAltError(f"input directory not found: {self.root}")
        dem_path = runs.dem_path(self.root)
        if not dem_path.exists():
            raise GeeAltError(
                f"{self.root} has no {runs.DEM} (the 30 m DEM that defines the grid); "
                "see the input layout in the README"
            )
        self.dem = read_raster(dem_path, bands=1)
        require_projected(self.dem.grid["crs"], runs.DEM)
        if not np.isfinite(self.dem.data).any():
            raise GeeAltError(f"{runs.DEM} has no valid pixel (all nodata)")
        self.grid: Grid = self.dem.grid
        lc = runs.landcover_path(self.root)
        self.landcover: Raster | None = self._on_grid(read_raster(lc, bands=1)) if lc.exists() else None
        self.years: list[int] = _input_years(self.root)
        if not self.years:
            raise GeeAltError(
                f"{self.root}: no year has all of landsat_ndvi/ndvi_YYYY.tif, modis_ndvi/ndvi_YYYY.tif "
                "and modis_lst/lst_YYYY.tif"
            )
        insitu = runs.insitu_csv_path(self.root)
        self.insitu_path: Path | None = insitu if insitu.exists() else None

    @classmethod
    def for_tasks(cls, root: str | Path) -> InputLayout:
        """The layout as the engine's tasks use it (file names, the DEM's grid, the coarse inputs
        read when asked for), checked already by the driver's :class:`InputLayout`: the grid from
        the DEM's header, the DEM and land-cover rasters not read (``dem`` and ``landcover`` unset:
        a task process would otherwise hold a second copy of them for the whole run)."""
        import rasterio

        self = cls.__new__(cls)
        InputPaths.__init__(self, root)
        with rasterio.open(runs.dem_path(self.root)) as src:
            self.grid = grid_from_rasterio(src.crs, src.transform, src.width, src.height)
        self.years = _input_years(self.root)
        self.insitu_path = None
        return self

    def _on_grid(self, r: Raster) -> Raster:
        if not same_grid(r.grid, self.grid):
            raise GeeAltError(
                f"{Path(r.path).parent.name}/{Path(r.path).name} is not on the DEM grid "
                f"(CRS, transform and size must match {runs.DEM}); resample it to the DEM grid"
            )
        return r

    def _coarse(self, r: Raster) -> Raster:
        if not _overlaps(self.grid, r.grid):
            raise GeeAltError(
                f"{Path(r.path).parent.name}/{Path(r.path).name} does not overlap {runs.DEM}; "
                "check its CRS and georeferencing"
            )
        return r

    def check_years(self, years: list[int]) -> list[int]:
        """The requested years, each of which must be present; raises naming the missing ones."""
        missing = [y for y in years if y not in self.years]
        if missing:
            raise GeeAltError(
                f"no inputs for year(s) {', '.join(map(str, missing))} in {self.root} "
                f"(available: {self.years[0]}-{self.years[-1]})"
            )
        return years

    def preflight(self, years: list[int]) -> list[int]:
        """Open and check every input file of ``years`` (grid, overlap, bands, dates, units, valid
        pixels) so bad input stops before any output is written; returns ``years``."""
        self.check_years(years)
        any_landsat = False
        for y in years:
            any_landsat |= bool(np.isfinite(self.landsat_ndvi(y).data).any())
            self.modis_ndvi(y)
            self.modis_lst(y)
        if not any_landsat:
            raise GeeAltError(
                f"{self.root}/landsat_ndvi: no valid pixel in any year {years[0]}-{years[-1]} "
                "(all nodata); give Landsat NDVI with clear pixels"
            )
        return years

    def landsat_ndvi(self, year: int) -> Raster:
        """Landsat NDVI of ``year`` on the DEM grid."""
        return self._on_grid(read_raster(self.landsat_ndvi_path(year), bands=1))

    def modis_ndvi(self, year: int) -> Raster:
        """MODIS NDVI of ``year`` (its own grid)."""
        return _valid(self._coarse(read_raster(self.modis_ndvi_path(year), bands=1)), MODIS_NDVI_DIR)

    def modis_lst(self, year: int) -> LstComposites:
        """MODIS LST composites of ``year``: daily means in °C with their dates and lengths (from
        day/night looks when the file has those; see the module docstring)."""
        path = self.modis_lst_path(year)
        r = _valid(self._coarse(read_raster(path)), MODIS_LST_DIR)
        quantity = r.tags.get("quantity", "").strip()
        band_tags = _band_tags(path, r.data.shape[0])
        day_night = bool(LST_DAY_NIGHT.search(quantity)) and not LST_DAILY_MEAN.search(quantity)
        is_time = np.array([t.get("look", "").endswith("view_time") for t in band_tags])
        units = r.tags.get("units", "degC").strip()
        if units in ("K", "kelvin", "Kelvin"):
            r.data[~is_time] = r.data[~is_time] - KELVIN_AT_0_DEGC
        elif units not in ("degC", "C", "celsius", "Celsius", "deg_C"):
            raise GeeAltError(f"{path.name}: units tag '{units}' is not degC or K")
        starts = []
        for i, d in enumerate(r.descriptions):
            try:
                starts.append(dt.date.fromisoformat(d.strip()[:10]))
            except ValueError:
                raise GeeAltError(
                    f"{path.name}: band {i + 1} description '{d}' is not a start date YYYY-MM-DD"
                ) from None
        days = np.asarray([float(t.get("days", DEFAULT_COMPOSITE_DAYS)) for t in band_tags], "float64")
        lst = r.data[~is_time]
        if np.any(lst[np.isfinite(lst)] < -90) or np.any(lst[np.isfinite(lst)] > 90):
            raise GeeAltError(
                f"{path.name}: LST values outside -90..90 degC; set the units tag to K if they are kelvin"
            )
        if not (day_night or LST_DAILY_MEAN.search(quantity)):
            said = f"says '{quantity[:60]}'" if quantity else "has no 'quantity' tag"
            raise GeeAltError(
                f"{path.name} {said}: tag the file quantity='daily-mean land surface temperature' (one band per "
                "composite) or 'day/night land surface temperature with view times' (sensor/look band tags)"
            )
        if not day_night:
            return LstComposites(r, starts, days)
        looks = _day_night_looks(path, r, band_tags, starts, days)
        return self._terra_referenced(year, looks, r)

    def _terra_referenced(self, year: int, looks: dict, r: Raster) -> LstComposites:
        """One Terra-referenced daily-mean record from a year's day/night looks (with the Aqua
        offset fitted over every year of the inputs)."""
        from gee_alt.science.daily_lst import terra_referenced

        terra, aqua, doy = self._sensor_means(year, looks, r.grid)
        daily = terra_referenced(terra, aqua, self._aqua_offset()).astype("float32")
        out = Raster(daily, r.grid, [d.isoformat() for d in looks["starts"]], dict(r.tags), r.path)
        return LstComposites(out, looks["starts"], looks["days"])

    def _sensor_means(self, year: int, looks: dict, grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per sensor the daily mean of each composite from its day/night pair (diurnal model),
        cold outliers screened: ``(terra, aqua, middle day of year)``."""
        from gee_alt.science.daily_lst import daily_mean_from_pair, screen_cold_outliers

        starts, days = looks["starts"], looks["days"]
        doy = np.array([s.timetuple().tm_yday + (n - 1) / 2 for s, n in zip(starts, days, strict=True)])
        doy3 = doy[:, None, None]
        lat = self._latitude()
        means = []
        for sensor in LST_SENSORS:
            b = looks[sensor]
            m = daily_mean_from_pair(b["day"], b["night"], b["day_view_time"], b["night_view_time"], doy3, lat)
            means.append(screen_cold_outliers(m))
        return means[0], means[1], doy

    def _latitude(self) -> float:
        from rasterio.warp import transform_bounds

        _, s, _, n = transform_bounds(self.grid["crs"], "EPSG:4326", *bounds(self.grid))
        return 0.5 * (s + n)

    def _aqua_offset(self) -> np.ndarray:
        """``(window, y, x)`` Aqua − Terra offset (K) over every year of the inputs whose LST
        has day/night looks (cached)."""
        if getattr(self, "_offset", None) is None:
            from gee_alt.science.daily_lst import aqua_offset

            terra, aqua = [], []
            for y in self.years:
                path = self.modis_lst_path(y)
                r = read_raster(path)
                if not LST_DAY_NIGHT.search(r.tags.get("quantity", "")):
                    continue
                if r.tags.get("units", "degC").strip() in ("K", "kelvin", "Kelvin"):
                    tags = _band_tags(path, r.data.shape[0])
                    is_time = np.array([t.get("look", "").endswith("view_time") for t in tags])
                    r.data[~is_time] -= KELVIN_AT_0_DEGC
                starts = [dt.date.fromisoformat(d.strip()[:10]) for d in r.descriptions]
                tags = _band_tags(path, r.data.shape[0])
                days = np.asarray([float(t.get("days", DEFAULT_COMPOSITE_DAYS)) for t in tags])
                t, a, _ = self._sensor_means(y, _day_night_looks(path, r, tags, starts, days), r.grid)
                terra.append(t)
                aqua.append(a)
            self._offset = aqua_offset(terra, aqua) if terra else None
        return self._offset


def _band_tags(path: Path, count: int) -> list[dict]:
    import rasterio

    with rasterio.open(path) as src:
        return [dict(src.tags(i + 1)) for i in range(count)]


def _day_night_looks(path: Path, r: Raster, band_tags: list[dict], starts: list, days: np.ndarray) -> dict:
    """``{"terra": {"day": (window, y, x), "night": ..., "day_view_time": ..., ...}, "aqua": ...,
    "starts": [...], "days": array}`` from the day/night layout's bands (missing sensor: NaN)."""
    windows = sorted(set(starts))
    index = {d: i for i, d in enumerate(windows)}
    shape = (len(windows), *r.data.shape[1:])
    out = {s: {look: np.full(shape, np.nan, "float32") for look in LST_LOOKS} for s in LST_SENSORS}
    wdays = np.full(len(windows), float(DEFAULT_COMPOSITE_DAYS))
    for k, (t, d) in enumerate(zip(band_tags, starts, strict=True)):
        sensor, look = t.get("sensor", "").lower(), t.get("look", "").lower()
        if sensor not in LST_SENSORS or look not in LST_LOOKS:
            raise GeeAltError(
                f"{path.name}: band {k + 1} needs tags sensor=terra|aqua and look=day|night|day_view_time|"
                f"night_view_time (day/night layout), has sensor='{sensor}' look='{look}'"
            )
        out[sensor][look][index[d]] = r.data[k]
        wdays[index[d]] = days[k]
    for s in LST_SENSORS:
        for part in ("day", "night"):
            h = out[s][f"{part}_view_time"]
            if np.any((h[np.isfinite(h)] < 0) | (h[np.isfinite(h)] > 24)):
                raise GeeAltError(f"{path.name}: {s} {part}_view_time outside 0..24 h (local solar time)")
    return {**out, "starts": windows, "days": wdays}


def _valid(r: Raster, folder: str) -> Raster:
    if not np.isfinite(r.data).any():
        raise GeeAltError(
            f"{folder}/{Path(r.path).name} has no valid pixel (all nodata); replace it or leave the year out"
        )
    return r
