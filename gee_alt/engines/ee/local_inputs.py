"""``--sharpen local``: Earth Engine composites pulled into the local engine's input layout.

Earth Engine does the QA-masked compositing and xee pulls the small results; the local engine
(:mod:`gee_alt.engines.local`) then sharpens them, so both engines share one sharpening code
path. Written into ``RUN/inputs`` (:mod:`gee_alt.engines.local.layout`):

- ``dem.tif``: the configured DEM (m), bilinear, on the 30 m output grid (once per run);
- ``landsat_ndvi/ndvi_YYYY.tif``: growing-season median Landsat NDVI on the 30 m grid (NaN = no
  clear look);
- ``modis_ndvi/ndvi_YYYY.tif``: growing-season MODIS NDVI on the MODIS 250 m sinusoidal lattice;
- ``modis_lst/lst_YYYY.tif``: the whole year's windows (``season.lst_step_days``, from 1 January;
  the local engine takes the thaw season for DDT and the autumn before, from the previous year's
  file, for the freezing index) as the local day/night layout: per
  window, Terra then Aqua, the mean clear day and night LST (°C) and their mean view times (local
  solar hours), NaN = no look (description = first day, tags ``days``, ``sensor``, ``look``), on
  the MODIS 1 km sinusoidal lattice; the local engine makes its Terra-referenced daily mean
  (:mod:`gee_alt.science.daily_lst`, Aqua offset over every year) from them.

Coarse grids: the MODIS lattice covering the 30 m grid with one cell of margin
(:func:`gee_alt.grid.modis_grid`), requested as ``SR-ORG:6974`` (Earth Engine's name for the
MODIS sinusoidal projection) and written with its PROJ definition. Each pulled year is
recorded in the run's resume record (key: the hash of its graphs).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from gee_alt import runs
from gee_alt.config import StudyConfig
from gee_alt.engines.local.layout import InputPaths
from gee_alt.errors import GeeAltError
from gee_alt.grid import MODIS_1KM, MODIS_250M, MODIS_SINUSOIDAL_EE, Grid, make_grid, modis_grid

INPUT_KIND = "gee_alt_input"  # property telling the pulled images apart (1 dem, 2 landsat, 3 modis ndvi, 4 lst)
KINDS = {"dem": 1, "landsat_ndvi": 2, "modis_ndvi": 3, "modis_lst": 4}
DEM_KEY = "inputs_dem"
#: The pulled LST files' ``quantity`` tag: the local layout's day/night looks with view times.
LST_QUANTITY = "day/night land surface temperature with view times, Terra and Aqua window composites (Earth Engine)"


def pull_grids(cfg: StudyConfig) -> dict[str, Grid]:
    """The grids the inputs are pulled on: ``fine`` (the 30 m output grid), ``modis_ndvi``
    (250 m) and ``modis_lst`` (1 km) MODIS sinusoidal lattices covering it."""
    fine = cfg.grid()
    return {"fine": fine, "modis_ndvi": modis_grid(fine, MODIS_250M), "modis_lst": modis_grid(fine, MODIS_1KM)}


def request_grid(grid: Grid) -> Grid:
    """The grid as Earth Engine is asked for it (MODIS sinusoidal as ``SR-ORG:6974``)."""
    crs = MODIS_SINUSOIDAL_EE if grid["crs"].startswith("+proj=sinu") else grid["crs"]
    return make_grid(crs, grid["crs_transform"], grid["shape_2d"])


def lst_band_plan(windows) -> list[tuple[str, object, str, str]]:
    """The pulled LST bands of the local day/night layout, in its order
    (:func:`gee_alt.engines.local.layout.day_night_bands`: per window Terra then Aqua, day, night,
    day and night view time): ``(band name, window, sensor, look)``."""
    from gee_alt.engines.local.layout import LST_LOOKS, LST_SENSORS

    return [
        (f"w{k:02d}_{sensor}_{look}", w, sensor, look)
        for k, w in enumerate(windows)
        for sensor in LST_SENSORS
        for look in LST_LOOKS
    ]


#: the span of the pulled LST windows: the whole calendar year (the local engine cuts the seasons)
PULL_START, PULL_END = "01-01", "12-31"


def pull_windows(cfg: StudyConfig, year: int) -> list:
    """The year's LST windows to pull: ``season.lst_step_days`` days from 1 January to 31 December."""
    from gee_alt.engines.ee import composite

    return composite.lst_windows(year, PULL_START, PULL_END, cfg.season.lst_step_days)


def year_images(cfg: StudyConfig, year: int, grid: Grid) -> dict:
    """The year's composites as graphs: ``{kind: (image, band names)}`` (pure). LST: per window
    and sensor the mean clear day/night LST and view times (the local day/night layout), so the
    local engine makes its own Terra-referenced daily mean (Aqua offset over every year)."""
    import ee

    from gee_alt.engines.ee import composite, daily_lst, thaw

    region = thaw.region_geometry(cfg)
    fine_proj = thaw.fine_projection(grid)
    windows = pull_windows(cfg, year)
    start, end = composite.season_bounds(year, PULL_START, PULL_END)
    sensors = {
        name: None if daily is None else daily_lst.unwrap_night_view(daily)
        for name, daily in composite.lst_sensors(cfg, start, end, region).items()
    }
    band_of_look = dict(zip(("day", "night", "day_view_time", "night_view_time"), daily_lst.LOOK_BANDS, strict=True))
    looks = {}
    bands = []
    for name, w, sensor, look in lst_band_plan(windows):
        key = (w.start, sensor)
        if key not in looks:
            looks[key] = daily_lst.sensor_window_looks(sensors[sensor], w.start, w.end)
        bands.append(looks[key].select(band_of_look[look]).rename(name))
    names = [b[0] for b in lst_band_plan(windows)]
    return {
        "landsat_ndvi": (composite.landsat_ndvi_composite(cfg, year, region, fine_proj), ["landsat_ndvi"]),
        "modis_ndvi": (composite.modis_ndvi_composite(cfg, year, region), ["modis_ndvi"]),
        # one flat list (a cat of hundreds of bands nests too deep for the serializer)
        "modis_lst": (ee.ImageCollection.fromImages(bands).toBands().rename(names), names),
    }


def dem_image(cfg: StudyConfig):
    """The configured DEM (band ``elevation_m``, m), bilinear."""
    from gee_alt.engines.ee import collections as col

    return col.dem_elevation_m(cfg.collections.dem).resample("bilinear")


def _hash(*images) -> str:
    import ee

    h = hashlib.sha256()
    for img in images:
        h.update(ee.serializer.toJSON(img).encode("utf-8"))
    return h.hexdigest()


def pull_inputs(
    cfg: StudyConfig,
    inputs: str | Path,
    record: runs.Progress,
    *,
    progress: Callable[[int | str, str], None] | None = None,
    sleep=time.sleep,
) -> dict[int, str]:
    """Pull the DEM and every year's composites into ``inputs`` (skipping what ``record`` holds
    with the same graphs); returns the years that failed (year -> one-line reason)."""
    import ee

    from gee_alt.engines.ee import pull
    from gee_alt.export.cog import write_cog

    paths = InputPaths(inputs)
    grids = pull_grids(cfg)
    fine = grids["fine"]
    retry = dict(max_retries=cfg.pull.max_retries, initial_delay_s=cfg.pull.initial_delay_s, sleep=sleep)
    tags = {"source": "Google Earth Engine composites (gee-alt --sharpen local)", "engine": "ee"}

    def fetch(image, names, kind, year, grid):
        with pull.retrying_ee_calls(**retry):
            return pull.pull_image(
                image,
                tuple(names),
                request_grid(grid),
                year=year,
                max_workers=cfg.pull.max_workers,
                properties={INPUT_KIND: KINDS[kind]},
            )

    dem = dem_image(cfg)
    key = _hash(dem)
    if not record.is_done(DEM_KEY, key=key):
        data = fetch(dem, ["elevation_m"], "dem", 0, fine)
        path = write_cog(
            runs.dem_path(inputs), data[0], fine, tags={**tags, "units": "m"}, band_descriptions=["elevation_m"]
        )
        record.mark_done(DEM_KEY, [path], key=key)
    if progress:
        progress(DEM_KEY, "pulled")
    missing: dict[int, str] = {}
    for year in cfg.year_list():
        step = f"inputs_{year}"
        try:
            images = year_images(cfg, year, fine)
            key = _hash(*(img for img, _ in images.values()))
            if record.is_done(step, key=key):
                if progress:
                    progress(year, "skipped")
                continue
            img, names = images["landsat_ndvi"]
            landsat = fetch(img, names, "landsat_ndvi", year, fine)
            img, names = images["modis_ndvi"]
            ndvi = fetch(img, names, "modis_ndvi", year, grids["modis_ndvi"])
            img, names = images["modis_lst"]
            lst = fetch(img, names, "modis_lst", year, grids["modis_lst"])
        except (GeeAltError, ee.EEException) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            record.mark_failed(year, reason)
            missing[year] = reason
            if progress:
                progress(year, "failed")
            continue
        plan = lst_band_plan(pull_windows(cfg, year))
        written = [
            write_cog(paths.landsat_ndvi_path(year), landsat[0], fine, tags={**tags, "units": "1"}),
            write_cog(paths.modis_ndvi_path(year), ndvi[0], grids["modis_ndvi"], tags={**tags, "units": "1"}),
            write_cog(
                paths.modis_lst_path(year),
                lst,
                grids["modis_lst"],
                tags={**tags, "units": "degC", "quantity": LST_QUANTITY},
                band_descriptions=[w.start for _, w, _, _ in plan],
                band_tags=[{"days": w.days, "sensor": sensor, "look": look} for _, w, sensor, look in plan],
            ),
        ]
        record.mark_done(step, written, key=key)
        if progress:
            progress(year, "pulled")
    return missing
