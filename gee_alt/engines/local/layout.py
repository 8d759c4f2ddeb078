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
                                   tag ``quantity`` saying what each band is: it must state a
                                   daily mean (e.g. "daily-mean land surface temperature,
                                   8-day composite"); files without it are refused.
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
from gee_alt.grid import Grid, bounds, require_projected, same_grid
from gee_alt.io import Raster, read_raster
from gee_alt.units import KELVIN_AT_0_DEGC

LANDSAT_NDVI_DIR, MODIS_NDVI_DIR, MODIS_LST_DIR = "landsat_ndvi", "modis_ndvi", "modis_lst"
YEAR_FILE = re.compile(r"^(?:ndvi|lst)_(\d{4})\.tif$")
DEFAULT_COMPOSITE_DAYS = 8
#: What the ``quantity`` tag of an LST file must state: each band is a daily mean.
LST_DAILY_MEAN = re.compile(r"daily[- _]mean", re.IGNORECASE)


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
        found = [_years_in(self.root / d) for d in (LANDSAT_NDVI_DIR, MODIS_NDVI_DIR, MODIS_LST_DIR)]
        self.years: list[int] = sorted(set.intersection(*found))
        if not self.years:
            raise GeeAltError(
                f"{self.root}: no year has all of landsat_ndvi/ndvi_YYYY.tif, modis_ndvi/ndvi_YYYY.tif "
                "and modis_lst/lst_YYYY.tif"
            )
        insitu = runs.insitu_csv_path(self.root)
        self.insitu_path: Path | None = insitu if insitu.exists() else None

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
        """MODIS LST composites of ``year`` in °C with their dates and lengths."""
        path = self.modis_lst_path(year)
        r = _valid(self._coarse(read_raster(path)), MODIS_LST_DIR)
        units = r.tags.get("units", "degC").strip()
        if units in ("K", "kelvin", "Kelvin"):
            r.data = r.data - KELVIN_AT_0_DEGC
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
        days = np.asarray(_band_days(path, r.data.shape[0]), "float64")
        if np.any(r.data[np.isfinite(r.data)] < -90) or np.any(r.data[np.isfinite(r.data)] > 90):
            raise GeeAltError(
                f"{path.name}: LST values outside -90..90 degC; set the units tag to K if they are kelvin"
            )
        quantity = r.tags.get("quantity", "").strip()
        if not LST_DAILY_MEAN.search(quantity):
            said = f"says '{quantity[:60]}'" if quantity else "has no 'quantity' tag"
            raise GeeAltError(
                f"{path.name} {said}: tag the file quantity='daily-mean land surface temperature' "
                "(each band the composite's daily mean LST); day/night looks are not read by the local engine"
            )
        return LstComposites(r, starts, days)


def _valid(r: Raster, folder: str) -> Raster:
    if not np.isfinite(r.data).any():
        raise GeeAltError(
            f"{folder}/{Path(r.path).name} has no valid pixel (all nodata); replace it or leave the year out"
        )
    return r


def _band_days(path: Path, count: int) -> list[float]:
    import rasterio

    with rasterio.open(path) as src:
        return [float(src.tags(i + 1).get("days", DEFAULT_COMPOSITE_DAYS)) for i in range(count)]
