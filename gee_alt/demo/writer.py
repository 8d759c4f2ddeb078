"""Writing a synthetic world: its inputs in the local engine's layout, its truth, its boreholes.

Both worlds (:mod:`gee_alt.demo.ideal`, :mod:`gee_alt.demo.realistic`) write through these
functions, so the files a demo run starts from look the same whatever world made them, and every
file is tagged ``synthetic=1``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.engines.local.layout import InputPaths
from gee_alt.grid import Grid


def synthetic_tags(world: str, seed: int) -> dict:
    """Dataset tags every synthetic file carries."""
    return {
        "synthetic": 1,
        "source": f"gee-alt synthetic demo scene, {world} world (not a measurement)",
        "world": world,
        "seed": seed,
    }


@dataclass
class TruthSample:
    """Truth kept in memory for scoring: values at a fixed random sample of window pixels, and
    per-year facts of the world (``facts[year]``: e.g. the true mine effect on ALT)."""

    index: np.ndarray  # flat pixel indices into the window
    ndvi: dict[int, np.ndarray] = field(default_factory=dict)  # year -> (n,)
    lst_degc: dict[int, np.ndarray] = field(default_factory=dict)  # year -> (composite, n)
    facts: dict[int, dict] = field(default_factory=dict)
    world: dict = field(default_factory=dict)  # world-level facts (e.g. land-cover error rate)


def sample_index(seed: int, n_pix: int, n_sample: int) -> np.ndarray:
    """The fixed, sorted random sample of window pixels scored against truth."""
    from gee_alt.demo.fields import rng_for

    return np.sort(rng_for(seed, 50).choice(n_pix, size=min(n_sample, n_pix), replace=False))


def write_static_inputs(inputs_dir: Path, grid: Grid, dem_m: np.ndarray, landcover: np.ndarray, tags: dict, classes):
    """``INPUTS/dem.tif`` and ``INPUTS/landcover.tif``."""
    from gee_alt.export.cog import write_cog

    write_cog(runs.dem_path(inputs_dir), dem_m, grid, tags={**tags, "units": "m"}, band_descriptions=["elevation_m"])
    write_cog(
        runs.landcover_path(inputs_dir),
        landcover.astype("float32"),
        grid,
        tags={**tags, "units": "class", "classes": classes},
        band_descriptions=["landcover"],
    )


def write_year_inputs(
    inputs_dir: Path,
    year: int,
    tags: dict,
    *,
    landsat: tuple[np.ndarray, Grid, str],
    modis_ndvi: tuple[np.ndarray, Grid],
    modis_lst: tuple[np.ndarray, Grid],
    lst_starts: list[dt.date],
    lst_days: np.ndarray,
    lst_quantity: str,
    lst_looks: tuple[dict, dict] | None = None,
) -> None:
    """One year's Landsat NDVI, MODIS NDVI and MODIS LST composites in the input layout.

    ``lst_looks`` = ``(looks, view_hours)`` (each ``{"terra_day": (window, y, x), ...}``): the
    day/night layout instead of daily means (see :mod:`gee_alt.engines.local.layout`)."""
    from gee_alt.export.cog import write_cog

    layout = InputPaths(inputs_dir)
    ytag = {**tags, "year": year}
    write_cog(
        layout.landsat_ndvi_path(year),
        landsat[0],
        landsat[1],
        tags={**ytag, "units": "1", "sensor": landsat[2]},
        band_descriptions=["ndvi"],
    )
    write_cog(
        layout.modis_ndvi_path(year),
        modis_ndvi[0],
        modis_ndvi[1],
        tags={**ytag, "units": "1", "sensor": "MODIS-like 250 m (synthetic)"},
        band_descriptions=["ndvi"],
    )
    data, desc, btags = modis_lst[0], [d.isoformat() for d in lst_starts], [{"days": int(d)} for d in lst_days]
    if lst_looks is not None:
        from gee_alt.engines.local.layout import day_night_bands

        data, desc, btags = day_night_bands(lst_looks[0], lst_looks[1], lst_starts, lst_days)
    write_cog(
        layout.modis_lst_path(year),
        data,
        modis_lst[1],
        tags={**ytag, "units": "degC", "sensor": "MODIS-like 1 km LST (synthetic)", "quantity": lst_quantity},
        band_descriptions=desc,
        band_tags=btags,
    )


def write_truth(
    truth_dir: Path, quantity: str, array: np.ndarray, grid: Grid, tags: dict, units: str, what: str, year=None
):
    """``RUN/truth/<quantity>[_YYYY].tif``."""
    from gee_alt.export.cog import write_cog

    extra = {"year": year} if year is not None else {}
    write_cog(
        Path(truth_dir) / runs.truth_name(quantity, year),
        array,
        grid,
        tags={**tags, **extra, "units": units, "quantity": what},
    )


def write_insitu_csv(inputs_dir: Path, columns: list[str], records: list[dict], name: str = runs.INSITU_CSV) -> None:
    """``INPUTS/insitu.csv`` (the tidy in-situ schema plus any extra columns), or another table ``name``."""
    from gee_alt.io import write_text_atomic

    lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in records]
    write_text_atomic(Path(inputs_dir) / name, "\n".join(lines) + "\n")
