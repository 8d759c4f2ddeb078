"""A small synthetic set of raw files (as NASA/USGS distribute them) for ``gee-alt prepare`` tests,
with the composites they should give computed here, independently of :mod:`gee_alt.prepare`.

- DEM: two EPSG:4326 1-arcsecond GeoTIFF tiles (split at 99.1 E);
- MOD11A1 (Terra, 2 looks per window) and MYD11A1 (Aqua, 1 look) HDF4 granules over the thaw
  season, one window left without any granule and one with cloud-flagged pixels;
- MOD13Q1 HDF4 granules (4 composites in the growing season);
- two Landsat 8 C2 L2 scenes on the 30 m grid's lattice, one a folder and one a ``.tar``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tarfile
import warnings
from pathlib import Path

import numpy as np

from gee_alt.config import load_config
from gee_alt.grid import shape_yx
from gee_alt.prepare.lst import lst_grid, season_windows
from gee_alt.prepare.ndvi import ndvi_grid
from tests.helpers.modis_files import lst_layers, write_hdf

BBOX = (99.0, 38.0, 99.2, 38.15)
YEAR = 2019
EMPTY_WINDOW = 10
CLOUDY_WINDOW = 11
NDVI_DATES = [dt.date(YEAR, 6, 10), dt.date(YEAR, 6, 26), dt.date(YEAR, 7, 12), dt.date(YEAR, 7, 28)]
SCENE_DATES = [dt.date(YEAR, 7, 15), dt.date(YEAR, 8, 16)]


def raw_cfg():
    return dataclasses.replace(load_config(None), bbox=BBOX, aoi_geometry=None, crs=None, years=(YEAR, YEAR))


def _dem_m(lon, lat):
    return 3600.0 + 400.0 * np.sin((lon - 99.0) * 20.0) * np.cos((lat - 38.0) * 25.0) + 800.0 * (lat - 38.0)


def write_dem_tiles(folder: Path) -> list[Path]:
    import rasterio
    from affine import Affine

    folder.mkdir(parents=True, exist_ok=True)
    px = 1.0 / 3600.0
    out = []
    for west in (98.95, 99.1):
        w, n = west, 38.2
        nx, ny = round(0.15 / px), round(0.25 / px)
        lon = w + (np.arange(nx) + 0.5) * px
        lat = n - (np.arange(ny) + 0.5) * px
        z = _dem_m(lon[None, :], lat[:, None]).astype("float32")
        p = folder / f"Copernicus_DSM_COG_10_N38_00_E0{int(west * 100)}_DEM.tif"
        with rasterio.open(
            p,
            "w",
            driver="GTiff",
            width=nx,
            height=ny,
            count=1,
            dtype="float32",
            crs="EPSG:4326",
            transform=Affine(px, 0, w, 0, -px, n),
            nodata=-32767.0,
        ) as dst:
            dst.write(z, 1)
        out.append(p)
    return out


def _tile_ul(grid, pad):
    a, _, c, _, _, f = grid["crs_transform"]
    return (c - pad * a, f + pad * a)


def lst_day_night_dn(k: int, shape, look: int):
    """Day and night DNs of look ``look`` in window ``k`` (spatial gradients, a seasonal cycle)."""
    h, w = shape
    r, c = np.mgrid[0:h, 0:w]
    t_day = 22.0 * np.sin(np.pi * (k + 0.5) / 35.0) - 4.0 + 0.25 * c - 0.3 * r + 1.0 * look
    t_night = t_day - 13.0 + 0.1 * r
    to_dn = lambda t: np.round((t + 273.15) / 0.02).astype("uint16")  # noqa: E731
    return to_dn(t_day), to_dn(t_night)


def write_lst(folder: Path, cfg) -> tuple[list[Path], np.ndarray]:
    """The LST granules and the expected window composites (°C, float64) on the 1 km lattice."""
    folder.mkdir(parents=True, exist_ok=True)
    grid = lst_grid(cfg.grid())
    pad = 2
    h, w = shape_yx(grid)
    shape = (h + 2 * pad, w + 2 * pad)
    ul = _tile_ul(grid, pad)
    windows = season_windows(cfg, YEAR)
    expected = np.full((len(windows), h, w), np.nan)
    files = []
    for k, win in enumerate(windows):
        if k == EMPTY_WINDOW:
            continue
        start = dt.date.fromisoformat(win.start)
        day_sum, day_n = np.zeros(shape), np.zeros(shape)
        night_sum, night_n = np.zeros(shape), np.zeros(shape)
        for look, (product, offset) in enumerate((("MOD11A1", 0), ("MYD11A1", 1), ("MOD11A1", 3))):
            date = start + dt.timedelta(days=offset)
            if date.isoformat() >= win.end:
                continue
            d, n = lst_day_night_dn(k, shape, look)
            qc = np.zeros(shape, "uint8")
            if k == CLOUDY_WINDOW and product == "MOD11A1":
                qc[pad : pad + 3, pad : pad + 3] = 0b10  # cloud flag: the DN is fill as in real files
                d = d.copy()
                d[qc == 0b10] = 0
            name = f"{product}.A{date.year}{date.timetuple().tm_yday:03d}.h25v05.061.2020001000000.hdf"
            files.append(write_hdf(folder / name, product, date, ul, lst_layers(d, n, qc_day=qc)))
            ok = d > 0
            day_sum += np.where(ok, d * 0.02 - 273.15, 0)
            day_n += ok
            night_sum += n * 0.02 - 273.15
            night_n += 1
        comp = (day_sum / np.maximum(day_n, 1) + night_sum / night_n) / 2
        comp[day_n == 0] = np.nan
        expected[k] = comp[pad : pad + h, pad : pad + w]
    return files, expected


def write_ndvi(folder: Path, cfg) -> tuple[list[Path], np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    grid = ndvi_grid(cfg.grid())
    pad = 3
    h, w = shape_yx(grid)
    shape = (h + 2 * pad, w + 2 * pad)
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    stack, files = [], []
    for i, date in enumerate(NDVI_DATES):
        dn = np.round(2000 + 40 * c + 25 * r + 300 * i).clip(-2000, 10000).astype("int16")
        qa = np.zeros(shape, "int8")
        qa[pad + 1, pad + 1] = 3  # cloudy
        name = f"MOD13Q1.A{date.year}{date.timetuple().tm_yday:03d}.h25v05.061.2020001000000.hdf"
        files.append(
            write_hdf(
                folder / name,
                "MOD13Q1",
                date,
                _tile_ul(grid, pad),
                {"250m 16 days NDVI": dn, "250m 16 days pixel reliability": qa},
            )
        )
        stack.append(np.where(qa == 0, dn * 0.0001, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-cloud pixel
        expected = np.nanmedian(np.stack(stack), axis=0)[pad : pad + h, pad : pad + w]
    return files, expected


def write_landsat(folder: Path, cfg) -> tuple[list[Path], np.ndarray]:
    import rasterio
    from affine import Affine

    folder.mkdir(parents=True, exist_ok=True)
    fine = cfg.grid()
    pad = 5
    h, w = shape_yx(fine)
    a, _, x0, _, _, y0 = fine["crs_transform"]
    shape = (h + 2 * pad, w + 2 * pad)
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    sources, ndvis = [], []
    for i, date in enumerate(SCENE_DATES):
        pid = f"LC08_L2SP_133033_{date:%Y%m%d}_20200827_02_T1"
        red = (9000 + 3 * ((c + r) % 200) + 500 * i).astype("uint16")
        nir = (16000 + 5 * ((c * 2 + r) % 300) - 300 * i).astype("uint16")
        qa = np.full(shape, 21824, "uint16")  # the clear-land value of real C2 scenes (bits 6, 8, 10, 12, 14)
        qa[pad + 10 : pad + 20, pad + 10 : pad + 20] = 21824 | 0b1010  # cloud (bit 3) + dilated cloud (bit 1)
        rad = np.zeros(shape, "uint16")
        rad[pad + 30, pad + 30] = 1 << 3
        d = folder / pid
        d.mkdir()
        for band, arr in (("SR_B4", red), ("SR_B5", nir), ("QA_PIXEL", qa), ("QA_RADSAT", rad)):
            with rasterio.open(
                d / f"{pid}_{band}.TIF",
                "w",
                driver="GTiff",
                width=shape[1],
                height=shape[0],
                count=1,
                dtype="uint16",
                crs=fine["crs"],
                transform=Affine(a, 0, x0 - pad * a, 0, -a, y0 + pad * a),
                nodata=0 if band.startswith("SR") else None,
            ) as dst:
                dst.write(arr, 1)
        (d / f"{pid}_MTL.txt").write_text(f'LANDSAT_PRODUCT_ID = "{pid}"\n')
        if i == 1:  # the second scene as a .tar, the way USGS delivers it
            tar = folder / f"{pid}.tar"
            with tarfile.open(tar, "w") as tf:
                for f in sorted(d.iterdir()):
                    tf.add(f, arcname=f.name)
            for f in d.iterdir():
                f.unlink()
            d.rmdir()
            sources.append(tar)
        else:
            sources.append(d)
        rr = red * 0.0000275 - 0.2
        nn = nir * 0.0000275 - 0.2
        v = (nn - rr) / (nn + rr)
        clear = ((qa & 0b111111) == 0) & (rad == 0)
        ndvis.append(np.where(clear, v, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels masked in both scenes
        expected = np.nanmedian(np.stack(ndvis), axis=0)[pad : pad + h, pad : pad + w]
    return sources, expected
