"""The **ideal** synthetic world (``gee-alt demo --world ideal``): a fast plumbing check.

Its truth is built in the model's own image (LST linear in the forest's predictors, the engine's
illumination, ALT = E(land cover)·√DDT with the engine's DDT formula), so its good scores are
expected and say little about real data; :mod:`gee_alt.demo.realistic` is the honest yardstick.

A 30 m "true" world is generated on a window of the real study-area grid (UTM 47N, 30 m, the
Datong River source region), observed by synthetic sensors (Landsat-like 30 m NDVI with
cloud gaps, MODIS-like 250 m NDVI and 1 km LST composites on the real MODIS sinusoidal
lattice, with a point-spread blur, noise and cloud gaps) and written in the local input
layout (:mod:`gee_alt.engines.local.layout`), together with synthetic boreholes. Because the truth is
known, every stage of the method can be scored.

Nothing here is a measurement: every output is tagged ``synthetic=1``.

The true surface temperature of composite ``b`` in year ``Y`` at pixel ``p`` (daily-mean °C) is

    T = S(doy_b) + 0.06 (Y - 2012) + year_anom + composite_anom (+ its large-scale gradient)
        - lapse(doy_b) (z - 4000 m) + illum_gain(doy_b) (illum - mean)
        - veg_gain(doy_b) (NDVI - 0.4) + landcover offset
        + 3 (NDVI - 0.4) (z - 4000 m)/1000     (a nonlinear interaction)
        + U(p, Y)                             (spatially correlated, explained by no predictor)

DDT = sum over composites of max(T, 0) x 8 days; ALT = E(land cover) x sqrt(DDT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, uniform_filter

from gee_alt import runs
from gee_alt.demo.fields import fractal_surface, smooth_field
from gee_alt.demo.fields import rng_for as _rng
from gee_alt.demo.window import demo_window
from gee_alt.demo.writer import TruthSample, sample_index
from gee_alt.engines.local.layout import InputPaths
from gee_alt.grid import (
    coarsen,
    pixel_size,
    rowcol_to_lonlat,
)
from gee_alt.science.resample import aggregate
from gee_alt.science.terrain import illumination
from gee_alt.units import KELVIN_AT_0_DEGC

WORLD = "ideal"
WARMING_DEGC_PER_YR = 0.06
LANDCOVER_CLASSES = {
    1: "alpine meadow",
    2: "swamp meadow",
    3: "alpine steppe",
    4: "bare rock and scree",
    5: "mining spoil",
}
# Stefan coefficient per class, m (degC day)^-1/2 (within the plateau range 0.03-0.07).
E_BY_CLASS = {1: 0.046, 2: 0.041, 3: 0.050, 4: 0.052, 5: 0.055}
LST_OFFSET_DEGC = {1: 0.0, 2: -1.0, 3: 0.5, 4: 1.0, 5: 2.0}
NDVI_BASE = {1: 0.55, 2: 0.66, 3: 0.33, 4: 0.08, 5: 0.05}


@dataclass(frozen=True)
class IdealSpec:
    """What the demo scene looks like (all defaults give the documented demo).

    ``size_px`` is the width/height of the 30 m window (512 px = 15.4 km), centred on
    ``center_lonlat`` (degrees; default near the Muli coal field in the Datong source region).
    """

    seed: int = 42
    years: tuple[int, ...] = tuple(range(2000, 2025))
    size_px: int = 512
    center_lonlat: tuple[float, float] = (99.17, 38.10)
    season_start_doy: int = 91  # 1 April
    n_composites: int = 27  # 27 x 8 days: 1 April - 2 November
    composite_days: int = 8
    n_sites: int = 60
    heterogeneous_fraction: float = 0.2
    pad_px: int = 80  # truth is generated beyond the window so coarse pixels at its edge are real

    def composite_doys(self) -> np.ndarray:
        """First day of year of each thaw-season composite."""
        return self.season_start_doy + self.composite_days * np.arange(self.n_composites)


class IdealScene:
    """The synthetic world: terrain, land cover, yearly NDVI and LST truth, sensors, boreholes.

    Every quantity is a deterministic function of ``spec`` (seeded per year and per purpose),
    so truth can be recomputed at any time without storing it.
    """

    world = WORLD

    def __init__(self, spec: IdealSpec = IdealSpec()):
        self.spec = spec
        w = demo_window(spec.center_lonlat, spec.size_px, spec.pad_px)
        self.grid, self.outer_grid, self.ndvi_grid, self.lst_grid = w.grid, w.outer_grid, w.ndvi_grid, w.lst_grid
        self.inner = w.inner

    # ------------------------------------------------------------- static truth
    @cached_property
    def dem_outer_m(self) -> np.ndarray:
        """Elevation (m) on the padded grid, 3400-4800 m: a broad, gently sloping valley floor
        (where meadows and most monitoring sites are) between steep, rough ridges."""
        n = self.outer_grid["shape_2d"][1]
        rng = _rng(self.spec.seed, 1)
        yy, xx = np.mgrid[0:n, 0:n] / n
        valley_y = 0.55 + 0.12 * np.sin(2 * np.pi * (xx * 1.3 + rng.uniform()))
        d = np.abs(yy - valley_y)
        floor = 0.07  # half-width of the valley floor (fraction of n)
        relief = np.clip((d - floor) / (0.6 - floor), 0, None) ** 0.9  # 0 on the floor, rising to the ridges
        rough = fractal_surface((n, n), 3.4, rng)
        z = 0.3 * d + relief + (0.03 + 0.2 * np.clip(relief, 0, 1)) * rough
        lo, hi = np.percentile(z, [0.5, 99.5])
        return (3400.0 + 1400.0 * np.clip((z - lo) / (hi - lo), 0, 1.02)).astype("float32")

    @cached_property
    def illumination_outer(self) -> np.ndarray:
        return illumination(self.dem_outer_m, pixel_size(self.grid))

    @cached_property
    def landcover_outer(self) -> np.ndarray:
        """Land-cover class (1-5, :data:`LANDCOVER_CLASSES`) on the padded grid."""
        rng = _rng(self.spec.seed, 2)
        z = self.dem_outer_m
        shape = z.shape
        wet = smooth_field(shape, 10, rng)
        dry = smooth_field(shape, 14, rng)
        from gee_alt.science.terrain import slope_deg

        slope = slope_deg(z, pixel_size(self.grid))
        lc = np.ones(shape, "uint8")  # alpine meadow
        lc[
            (
                dry + 0.8 * (self.illumination_outer - self.illumination_outer.mean()) / self.illumination_outer.std()
                > 0.9
            )
            & (z < 4400)
        ] = 3  # steppe on dry, sunny slopes
        lc[(z < 3700) & (wet > 0.2) & (slope < 10)] = 2  # swamp meadow on wet valley floors
        lc[(z > 4450) | ((z > 4250) & (slope > 28))] = 4  # bare rock and scree
        # mining spoil: a few rectangular pits and dumps (Muli-like), off the valley floor
        n = shape[0]
        for _ in range(3):
            cy, cx = rng.integers(int(0.2 * n), int(0.8 * n), size=2)
            hy, hx = rng.integers(8, 22, size=2)
            lc[cy - hy : cy + hy, cx - hx : cx + hx] = 5
        return lc

    @cached_property
    def e_outer(self) -> np.ndarray:
        """True Stefan coefficient E, m (°C·day)^-1/2: per class with a smooth +-3 % variation."""
        rng = _rng(self.spec.seed, 3)
        lc = self.landcover_outer
        e = np.zeros(lc.shape, "float64")
        for k, v in E_BY_CLASS.items():
            e[lc == k] = v
        return (e * (1.0 + 0.03 * smooth_field(lc.shape, 20, rng))).astype("float32")

    @cached_property
    def persistent_unexplained_outer(self) -> np.ndarray:
        """The persistent part of the LST field no predictor explains (°C, std 0.45, ~300 m correlation)."""
        return (0.45 * smooth_field(self.dem_outer_m.shape, 10, _rng(self.spec.seed, 4))).astype("float32")

    # ------------------------------------------------------------- yearly truth
    def ndvi_true_outer(self, year: int) -> np.ndarray:
        """Growing-season NDVI truth (unitless) for ``year`` on the padded grid."""
        rng = _rng(self.spec.seed, 10, year)
        lc = self.landcover_outer
        base = np.zeros(lc.shape, "float64")
        for k, v in NDVI_BASE.items():
            base[lc == k] = v
        z = self.dem_outer_m
        veg = lc <= 3
        ndvi = base - veg * 0.12 * (z - 4000.0) / 1000.0
        ndvi += veg * 0.05 * smooth_field(lc.shape, 6, _rng(self.spec.seed, 11))
        ndvi += veg * (0.002 * (year - 2012) + 0.02 * rng.standard_normal())
        ndvi += 0.01 * smooth_field(lc.shape, 3, rng)
        return np.clip(ndvi, 0.0, 0.9).astype("float32")

    def lst_true_outer(self, year: int, ndvi_outer: np.ndarray | None = None) -> np.ndarray:
        """True daily-mean surface temperature (°C), ``(composite, y, x)`` on the padded grid."""
        s = self.spec
        rng = _rng(s.seed, 20, year)
        ndvi = self.ndvi_true_outer(year) if ndvi_outer is None else ndvi_outer
        z_km = (self.dem_outer_m.astype("float64") - 4000.0) / 1000.0
        il = self.illumination_outer - self.illumination_outer.mean()
        lc_off = np.zeros(z_km.shape)
        for k, v in LST_OFFSET_DEGC.items():
            lc_off[self.landcover_outer == k] = v
        unexplained = self.persistent_unexplained_outer + 0.25 * smooth_field(z_km.shape, 8, rng)
        year_anom = 0.5 * rng.standard_normal()
        ny, nx = z_km.shape
        yy, xx = np.mgrid[0:ny, 0:nx] / max(ny, nx) - 0.5
        dn = ndvi.astype("float64") - 0.4
        basis = np.stack([np.ones_like(z_km), xx, yy, z_km, il, dn, lc_off, dn * z_km, unexplained]).reshape(9, -1)
        doys = s.composite_doys() + s.composite_days / 2.0
        coef = np.empty((len(doys), 9))
        for b, doy in enumerate(doys):
            season = math.sin(2 * math.pi * (doy - 105.0) / 365.0)  # 1 in mid July
            summer = max(season, 0.0)
            t0 = 0.5 + 13.5 * season + WARMING_DEGC_PER_YR * (year - 2012) + year_anom + 1.0 * rng.standard_normal()
            gx, gy = 0.6 * rng.standard_normal(2)
            coef[b] = [
                t0,
                gx,
                gy,
                -(5.5 + 2.0 * summer),
                2.0 + 3.0 * summer,
                -(4.0 + 6.0 * summer),
                0.5 + 0.5 * summer,
                3.0,
                1.0,
            ]
        return (coef @ basis).reshape(len(doys), ny, nx).astype("float32")

    def ddt_true_outer(self, lst_outer: np.ndarray) -> np.ndarray:
        """DDT truth (°C·day) from true composite LST."""
        return (np.clip(lst_outer, 0.0, None).sum(axis=0) * self.spec.composite_days).astype("float32")

    def crop(self, a: np.ndarray) -> np.ndarray:
        """The window (inner grid) part of a padded-grid array (last two axes)."""
        return a[(..., *self.inner)]

    # ---------------------------------------------------------------- sensors
    def landsat_ndvi(self, year: int, ndvi_outer: np.ndarray) -> np.ndarray:
        """Landsat-like 30 m NDVI on the window: truth + noise, NaN under clouds (0-35 % per year)."""
        rng = _rng(self.spec.seed, 30, year)
        ndvi = self.crop(ndvi_outer) + 0.02 * rng.standard_normal(self.crop(ndvi_outer).shape)
        cloud = smooth_field(ndvi.shape, 25, rng)
        cover = rng.uniform(0.0, 0.35)
        ndvi[cloud > np.quantile(cloud, 1.0 - cover)] = np.nan
        return ndvi.astype("float32")

    def modis_ndvi(self, year: int, ndvi_outer: np.ndarray) -> np.ndarray:
        """MODIS-like 250 m NDVI (sinusoidal): blurred, aggregated truth + noise."""
        rng = _rng(self.spec.seed, 31, year)
        blurred = gaussian_filter(ndvi_outer.astype("float64"), 2.5)
        mean, _, cover = aggregate(blurred, self.outer_grid, self.ndvi_grid, with_std=False)
        obs = mean[0] + 0.015 * rng.standard_normal(mean[0].shape)
        obs[cover < 0.99] = np.nan
        return obs.astype("float32")

    def modis_lst(self, year: int, lst_outer: np.ndarray) -> np.ndarray:
        """MODIS-like 1 km LST composites (°C, sinusoidal): PSF-blurred radiance aggregate + noise, cloud gaps."""
        rng = _rng(self.spec.seed, 32, year)
        # radiance-like signal, block-averaged to 120 m, blurred by the point-spread function, then
        # area-averaged onto the sinusoidal 1 km pixels
        rad = (lst_outer.astype("float64") + KELVIN_AT_0_DEGC) ** 4
        n_b, ny, nx = rad.shape
        rad = rad.reshape(n_b, ny // 4, 4, nx // 4, 4).mean(axis=(2, 4))
        rad = uniform_filter(uniform_filter(rad, (1, 4, 4), mode="nearest"), (1, 4, 4), mode="nearest")
        mean, _, cover = aggregate(rad, coarsen(self.outer_grid, 4), self.lst_grid, with_std=False)
        obs = mean**0.25 - KELVIN_AT_0_DEGC + 0.4 * rng.standard_normal(mean.shape)
        obs[:, cover < 0.99] = np.nan
        for b in range(obs.shape[0]):  # clouds left in the 8-day composite: 0-20 % of pixels
            f = smooth_field(obs.shape[1:], 1.5, rng)
            obs[b][f > np.quantile(f, 1.0 - rng.uniform(0.0, 0.2))] = np.nan
        return obs.astype("float32")

    # ------------------------------------------------------------- boreholes
    def sites(self) -> dict[str, np.ndarray]:
        """Synthetic borehole/probe sites: row, col on the window, lon, lat, homogeneous (truth), method."""
        s = self.spec
        rng = _rng(s.seed, 40)
        lc = self.crop(self.landcover_outer)
        n = lc.shape[0]
        from scipy.ndimage import maximum_filter, minimum_filter

        mixed = maximum_filter(lc, size=9) != minimum_filter(lc, size=9)
        edge = 12
        ok = np.zeros_like(mixed)
        ok[edge : n - edge, edge : n - edge] = True
        # boreholes sit on gentle, uniform ground (DEM std in a 7 x 7 window < 8 m) as real
        # monitoring sites do; heterogeneous ones straddle a land-cover edge
        from scipy.ndimage import uniform_filter as _uf

        z = self.crop(self.dem_outer_m).astype("float64")
        z_std = np.sqrt(np.clip(_uf(z * z, 7) - _uf(z, 7) ** 2, 0, None))
        cand_h = np.argwhere(ok & ~mixed & (lc != 5) & (z_std < 8.0))
        cand_x = np.argwhere(ok & mixed & (lc != 5))
        n_het = int(round(s.n_sites * s.heterogeneous_fraction))
        # homogeneous sites: stratified by land cover in proportion to its area (at least one each)
        n_h = s.n_sites - n_het
        classes = [k for k in (1, 2, 3, 4) if np.any(lc[cand_h[:, 0], cand_h[:, 1]] == k)]
        share = np.array([(lc == k).mean() for k in classes])
        quota = np.maximum(1, np.round(n_h * share / share.sum())).astype(int)
        quota[np.argmax(quota)] += n_h - quota.sum()
        picks = []
        for k, q in zip(classes, quota, strict=True):
            ck = cand_h[lc[cand_h[:, 0], cand_h[:, 1]] == k]
            picks.append(ck[rng.choice(len(ck), min(q, len(ck)), replace=False)])
        pick_h = np.vstack(picks)
        pick_x = cand_x[rng.choice(len(cand_x), n_het, replace=False)]
        rc = np.vstack([pick_h, pick_x])
        homog = np.r_[np.ones(len(pick_h), bool), np.zeros(len(pick_x), bool)]
        order = rng.permutation(len(rc))
        rc, homog = rc[order], homog[order]
        lon, lat = rowcol_to_lonlat(self.grid, rc[:, 0] + 0.5, rc[:, 1] + 0.5)
        method = np.where(rng.uniform(size=len(rc)) < 0.3, "probe", "borehole")
        return {"row": rc[:, 0], "col": rc[:, 1], "lon": lon, "lat": lat, "homogeneous": homog, "method": method}


@dataclass
class YearTruth:
    """Truth for one year on the window: NDVI, composite LST (°C), DDT (°C·day), ALT (m)."""

    ndvi: np.ndarray
    lst_degc: np.ndarray
    ddt_degc_days: np.ndarray
    alt_m: np.ndarray


def year_truth(scene: IdealScene, year: int) -> YearTruth:
    """Recompute the truth of ``year`` on the demo window."""
    ndvi_o = scene.ndvi_true_outer(year)
    lst_o = scene.lst_true_outer(year, ndvi_o)
    ddt = scene.crop(scene.ddt_true_outer(lst_o))
    alt = scene.crop(scene.e_outer) * np.sqrt(ddt)
    return YearTruth(scene.crop(ndvi_o), scene.crop(lst_o), ddt, alt.astype("float32"))


PROBE_MAX_M = 3.0


def borehole_records(scene: IdealScene, alt_by_year: dict[int, np.ndarray]) -> list[dict]:
    """In-situ records in the tidy schema from true ALT: homogeneous sites measure the pixel's ALT
    with 5 cm noise; heterogeneous sites measure a spot of another surface within 4 px (a
    representativeness error) with 15 cm noise; probes cannot measure beyond 3 m (censored ``>``)."""
    s = scene.spec
    st = scene.sites()
    rng = _rng(s.seed, 41)
    lc = scene.crop(scene.landcover_outer)
    years = sorted(alt_by_year)
    recs = []
    for i in range(len(st["row"])):
        r, c = int(st["row"][i]), int(st["col"][i])
        n_years = int(rng.integers(3, 11))
        ys = sorted(rng.choice(years, size=min(n_years, len(years)), replace=False).tolist())
        spot = (r, c)
        if not st["homogeneous"][i]:
            win = lc[r - 4 : r + 5, c - 4 : c + 5]
            other = np.argwhere(win != lc[r, c])
            if len(other):
                dr, dc = other[rng.integers(len(other))] - 4
                spot = (r + int(dr), c + int(dc))
        flag = "" if st["homogeneous"][i] or rng.uniform() < 0.6 else "false"
        for y in ys:
            true = float(alt_by_year[y][spot])
            val = true + rng.normal(0, 0.05 if st["homogeneous"][i] else 0.15)
            censored = ""
            if st["method"][i] == "probe" and val > PROBE_MAX_M:
                val, censored = PROBE_MAX_M, ">"
            recs.append(
                {
                    "site_id": f"SYN{i + 1:03d}",
                    "lon": round(float(st["lon"][i]), 6),
                    "lat": round(float(st["lat"][i]), 6),
                    "year": int(y),
                    "alt_m": round(val, 3),
                    "method": str(st["method"][i]),
                    "source": "synthetic demo (gee-alt)",
                    "homogeneous": flag,
                    "censored": censored,
                }
            )
    return recs


INSITU_COLUMNS = ["site_id", "lon", "lat", "year", "alt_m", "method", "source", "homogeneous", "censored"]


def _write_year(scene: IdealScene, inputs_dir: Path, truth_dir: Path, year: int, index: np.ndarray) -> dict:
    """Write one year's synthetic inputs and truth; returns the truth sample and the true ALT."""
    import datetime as dt

    from gee_alt.export.cog import write_cog

    syn = {"synthetic": 1, "source": "gee-alt synthetic demo scene (not a measurement)", "seed": scene.spec.seed}
    ndvi_o = scene.ndvi_true_outer(year)
    lst_o = scene.lst_true_outer(year, ndvi_o)
    ddt = scene.crop(scene.ddt_true_outer(lst_o))
    alt = (scene.crop(scene.e_outer) * np.sqrt(ddt)).astype("float32")
    ytag = {**syn, "year": year}
    layout = InputPaths(inputs_dir)
    write_cog(
        layout.landsat_ndvi_path(year),
        scene.landsat_ndvi(year, ndvi_o),
        scene.grid,
        tags={**ytag, "units": "1", "sensor": "Landsat-like (synthetic)"},
        band_descriptions=["ndvi"],
    )
    write_cog(
        layout.modis_ndvi_path(year),
        scene.modis_ndvi(year, ndvi_o),
        scene.ndvi_grid,
        tags={**ytag, "units": "1", "sensor": "MODIS-like 250 m (synthetic)"},
        band_descriptions=["ndvi"],
    )
    starts = [(dt.date(year, 1, 1) + dt.timedelta(days=int(d) - 1)).isoformat() for d in scene.spec.composite_doys()]
    write_cog(
        layout.modis_lst_path(year),
        scene.modis_lst(year, lst_o),
        scene.lst_grid,
        tags={
            **ytag,
            "units": "degC",
            "sensor": "MODIS-like 1 km LST (synthetic)",
            "quantity": "daily-mean land surface temperature, 8-day composite",
        },
        band_descriptions=starts,
        band_tags=[{"days": scene.spec.composite_days}] * len(starts),
    )
    write_cog(
        truth_dir / runs.truth_name("ddt", year),
        ddt,
        scene.grid,
        tags={**ytag, "units": "degC day", "quantity": "true DDT"},
    )
    write_cog(
        truth_dir / runs.truth_name("alt", year), alt, scene.grid, tags={**ytag, "units": "m", "quantity": "true ALT"}
    )
    return {
        "year": year,
        "ndvi": scene.crop(ndvi_o).reshape(-1)[index],
        "lst": scene.crop(lst_o).reshape(lst_o.shape[0], -1)[:, index],
        "alt": alt,
    }


_SCENES: dict = {}


def _write_year_in_worker(spec: IdealSpec, inputs_dir, truth_dir, year, index) -> dict:
    if spec not in _SCENES:  # one scene per worker process: terrain is built once
        _SCENES.clear()
        _SCENES[spec] = IdealScene(spec)
    return _write_year(_SCENES[spec], Path(inputs_dir), Path(truth_dir), year, index)


def write_demo_inputs(
    scene: IdealScene,
    inputs_dir: str | Path,
    truth_dir: str | Path,
    years: list[int],
    progress=None,
    n_sample: int = 20000,
    workers: int = 1,
) -> TruthSample:
    """Write the scene's synthetic inputs (the local layout) and its truth; returns a truth sample.

    ``inputs_dir`` gets dem.tif, landcover.tif, landsat_ndvi/, modis_ndvi/, modis_lst/ and
    insitu.csv; ``truth_dir`` gets ddt_YYYY.tif, alt_YYYY.tif (truth) and e.tif. Everything is
    tagged ``synthetic=1``. ``progress(advance)`` is called once per year. Years are written
    in ``workers`` processes; the output does not depend on their number.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from gee_alt.export.cog import write_cog
    from gee_alt.io import write_text_atomic

    inputs_dir, truth_dir = Path(inputs_dir), Path(truth_dir)
    syn = {"synthetic": 1, "source": "gee-alt synthetic demo scene (not a measurement)", "seed": scene.spec.seed}
    write_cog(
        runs.dem_path(inputs_dir),
        scene.crop(scene.dem_outer_m),
        scene.grid,
        tags={**syn, "units": "m"},
        band_descriptions=["elevation_m"],
    )
    write_cog(
        runs.landcover_path(inputs_dir),
        scene.crop(scene.landcover_outer).astype("float32"),
        scene.grid,
        tags={**syn, "units": "class", "classes": LANDCOVER_CLASSES},
        band_descriptions=["landcover"],
    )
    write_cog(
        truth_dir / runs.truth_name("e"),
        scene.crop(scene.e_outer),
        scene.grid,
        tags={**syn, "units": "m (degC day)^-0.5", "quantity": "true Stefan coefficient E"},
    )
    lc = scene.crop(scene.landcover_outer)
    lc_tags = {**syn, "units": "class"}
    write_cog(truth_dir / runs.truth_name("landcover"), lc.astype("float32"), scene.grid, tags=lc_tags)
    mine = np.where(lc == 5, 1, 0).astype("float32")  # spoil predates the record: no before/after
    write_cog(truth_dir / runs.truth_name("mine"), mine, scene.grid, tags={**syn, "units": "year"})
    sample = TruthSample(
        index=sample_index(scene.spec.seed, scene.spec.size_px**2, n_sample),
        world={"name": WORLD, "warming_degc_per_yr": WARMING_DEGC_PER_YR},
    )
    alt_by_year = {}

    def consume(res):
        alt_by_year[res["year"]] = res["alt"]
        sample.ndvi[res["year"]] = res["ndvi"]
        sample.lst_degc[res["year"]] = res["lst"]
        if progress:
            progress(1)

    workers = min(workers, len(years))
    if workers <= 1:
        for year in years:
            consume(_write_year(scene, inputs_dir, truth_dir, year, sample.index))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [
                pool.submit(_write_year_in_worker, scene.spec, str(inputs_dir), str(truth_dir), y, sample.index)
                for y in years
            ]
            for fut in futures:
                consume(fut.result())
    recs = borehole_records(scene, alt_by_year)
    lines = [",".join(INSITU_COLUMNS)] + [",".join(str(r[c]) for c in INSITU_COLUMNS) for r in recs]
    write_text_atomic(runs.insitu_csv_path(inputs_dir), "\n".join(lines) + "\n")
    return sample
