"""The realistic world: statics, one year of truth and observations, and the writer."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.demo.fields import rng_for, smooth_field
from gee_alt.demo.realistic import climate, ground, land, sensors, sites, terrain
from gee_alt.demo.window import demo_window, study_window
from gee_alt.demo.writer import (
    TruthSample,
    sample_index,
    synthetic_tags,
    write_insitu_csv,
    write_static_inputs,
    write_truth,
    write_year_inputs,
)
from gee_alt.grid import rowcol_to_lonlat
from gee_alt.io import TMP_PREFIX

WORLD = "realistic"
CLOUD_SCALE_M = 2200.0  # correlation length of the daily cloud patterns
N_WETTING = 6
N_CLOUD_PATTERNS = 8
PF_WARMING_FRACTION = 0.8  # permafrost temperature follows 80 % of the (remembered) surface warming
FULL = "full"  # ``size_px`` of the whole study grid
DEFAULT_TILE_PX = 512  # side of the tiles the daily passes run on (does not change the output)


@dataclass(frozen=True)
class SkyYear:
    """One year of :class:`RealisticScene` before the ground: weather, daily coefficients, ground
    state, NDVI (with and without the mine), cloud cooling (K, 1 km blocks),
    snow, the clear-sky daily skin temperature (°C, 1 km blocks) and the MODIS LST looks."""

    weather: climate.YearWeather
    coef: np.ndarray
    ground_state: dict
    ndvi: np.ndarray
    ndvi_undisturbed: np.ndarray
    cooling: np.ndarray
    snow: ground.SnowSeason
    clear_sky: np.ndarray
    lst: sensors.LstComposites


@dataclass(frozen=True)
class RealisticSpec:
    """What the realistic world looks like. ``size_px``: the side of a square window of the study
    grid (px), or ``"full"`` for the whole study grid. ``warming_degc_per_yr`` is the climate trend
    of the surface temperature (0 gives a world without trend, for false-positive rates)."""

    seed: int = 42
    years: tuple[int, ...] = tuple(range(2000, 2025))
    size_px: int | str = 512
    center_lonlat: tuple[float, float] = (99.17, 38.10)
    warming_degc_per_yr: float = 0.05
    pad_px: int = 80


class RealisticScene:
    """The realistic synthetic world on a window of the study grid (see :mod:`gee_alt.demo.realistic`).

    Static 2-D fields live on the whole outer grid (float32; at the full study grid about 30 MB
    each, 12 for the monthly exposure); everything that runs over the days of a year (the
    ``(K, pixel)`` basis of the skin temperature and the daily passes) runs tile by tile, on
    ``tile_px`` squares of the window, and gives the same bytes whatever the tile size.
    """

    world = WORLD

    def __init__(self, spec: RealisticSpec = RealisticSpec(), tile_px: int = DEFAULT_TILE_PX):
        self.spec = spec
        p = spec.pad_px
        if spec.size_px == FULL:
            self.block_px = 8
            w = study_window(p, self.block_px)
        else:
            w = demo_window(spec.center_lonlat, spec.size_px, p)
            # MODIS LST is simulated on 240 m blocks of the 30 m truth (120 m when the window is not
            # a multiple of 8 px); the window and the pad are whole blocks
            self.block_px = 8 if spec.size_px % 8 == 0 and p % 8 == 0 else 4
        self.grid, self.outer_grid, self.ndvi_grid, self.lst_grid = w.grid, w.outer_grid, w.ndvi_grid, w.lst_grid
        self.inner = w.inner
        self.shape = (w.grid["shape_2d"][1], w.grid["shape_2d"][0])  # window (rows, cols)
        self.outer_shape = (w.outer_grid["shape_2d"][1], w.outer_grid["shape_2d"][0])
        if tile_px < 1 or tile_px % self.block_px:
            raise ValueError(f"tile_px must be a positive multiple of {self.block_px}, got {tile_px}")
        self.tile_px = tile_px

    def release(self) -> None:
        """Drop the cached statics (about 1.5 GB on the full study grid); they are rebuilt, the
        same, if asked for again. The grids and the spec stay."""
        for name in [k for k, v in type(self).__dict__.items() if isinstance(v, cached_property)]:
            self.__dict__.pop(name, None)

    # ------------------------------------------------------------------ statics (outer grid)
    @cached_property
    def dem_m(self) -> np.ndarray:
        ny, nx = self.outer_shape
        return terrain.elevation_m(ny if ny == nx else (ny, nx), self.spec.seed)

    @cached_property
    def slope_aspect(self) -> tuple[np.ndarray, np.ndarray]:
        return terrain.slope_aspect(self.dem_m, 30.0)

    @cached_property
    def exposure(self) -> np.ndarray:
        """``(12, y, x)`` monthly clear-sky exposure (slope / flat irradiance)."""
        return terrain.exposure_by_month(*self.slope_aspect, lat_deg=self.spec.center_lonlat[1])

    @cached_property
    def tpi_m(self) -> np.ndarray:
        return terrain.topographic_position_m(self.dem_m, 20)

    @cached_property
    def ground(self) -> land.Ground:
        summer = self.exposure[5:8].mean(axis=0)
        return land.ground_fields(self.dem_m, self.slope_aspect[0], self.tpi_m, summer, self.spec.seed)

    @cached_property
    def mine(self) -> land.Mine:
        return land.mine_history(self.dem_m, self.slope_aspect[0], self.inner, self.spec.seed)

    @cached_property
    def patterns(self) -> dict[str, np.ndarray]:
        """Random patterns no predictor carries: micro-climate, rain-cell wetting, snow noise
        (outer grid) and cloud patterns (block grid)."""
        rng = rng_for(self.spec.seed, 601)
        ny, nx = self.outer_shape
        nby, nbx = self.block_shape
        wet = np.clip(smooth_field((N_WETTING, ny, nx), 15, rng), 0, None)
        return {
            "unexplained": smooth_field((ny, nx), 10, rng).astype("float32"),
            "wetting": (wet / wet.max(axis=(1, 2), keepdims=True)).astype("float32"),
            "snow": smooth_field((2, ny, nx), 8, rng).astype("float32"),
            "cloud": smooth_field((N_CLOUD_PATTERNS, nby, nbx), CLOUD_SCALE_M / (30.0 * self.block_px), rng).astype(
                "float32"
            ),
        }

    @property
    def block_shape(self) -> tuple[int, int]:
        """Rows and columns of cloud blocks on the outer grid."""
        return self.outer_shape[0] // self.block_px, self.outer_shape[1] // self.block_px

    def tiles(self) -> list[tuple[slice, slice]]:
        """The window's tiles (``tile_px`` squares, smaller at the right and bottom edges) as
        outer-grid slices, row by row."""
        (r0, c0), (ny, nx), t = (self.inner[0].start, self.inner[1].start), self.shape, self.tile_px
        return [
            (slice(r0 + i, r0 + min(i + t, ny)), slice(c0 + j, c0 + min(j + t, nx)))
            for i in range(0, ny, t)
            for j in range(0, nx, t)
        ]

    def pixel_blocks(self, rows: np.ndarray, cols: np.ndarray) -> ground.PixelBlocks:
        """The cloud block of outer-grid pixels ``rows``, ``cols`` (flat arrays)."""
        b = self.block_px
        return ground.PixelBlocks((rows // b) * self.block_shape[1] + cols // b)

    def tile_blocks(self, rs: slice, cs: slice) -> ground.PixelBlocks:
        """The cloud block of each pixel of the tile ``rs``, ``cs`` (outer grid); block-aligned
        tiles also get their block ids, so clouds broadcast over each block."""
        b, nbx = self.block_px, self.block_shape[1]
        rr, cc = np.mgrid[rs, cs]
        pb = self.pixel_blocks(rr.ravel(), cc.ravel())
        if any(v % b for v in (rs.start, rs.stop, cs.start, cs.stop)):
            return pb
        br, bc = np.mgrid[rs.start // b : rs.stop // b, cs.start // b : cs.stop // b]
        return ground.PixelBlocks(pb.index, (br * nbx + bc).ravel(), br.shape[0], br.shape[1], b)

    @cached_property
    def exposure_blocks(self) -> np.ndarray:
        """``(12, block)`` monthly exposure of the 120 m blocks."""
        return self.blocks(self.exposure).astype("float32")

    def window_flat(self, a: np.ndarray) -> np.ndarray:
        """``(..., y, x)`` outer-grid array -> ``(..., window pixels)`` (row-major)."""
        w = self.crop(a)
        return np.ascontiguousarray(w).reshape(*w.shape[:-2], -1)

    @cached_property
    def lst_footprints(self) -> sensors.Footprints:
        return sensors.footprints(self.outer_grid, self.block_px, self.lst_grid)

    @cached_property
    def ndvi_footprints(self) -> sensors.Footprints:
        return sensors.footprints(self.outer_grid, 1, self.ndvi_grid)

    def crop(self, a: np.ndarray) -> np.ndarray:
        """The window part of an outer-grid array (last two axes)."""
        return a[(..., *self.inner)]

    def blocks(self, a: np.ndarray) -> np.ndarray:
        """``(..., y, x)`` outer-grid array -> ``(..., n_blocks)`` block means."""
        (nby, nbx), b = self.block_shape, self.block_px
        lead = a.shape[:-2]
        return a.reshape(*lead, nby, b, nbx, b).mean(axis=(-3, -1)).reshape(*lead, nby * nbx)

    # ------------------------------------------------------------------ yearly state
    def ground_in_year(self, year: int) -> dict[str, np.ndarray]:
        """Moisture, organic layer, conductivity and spoil warming (outer grid) in ``year``."""
        g, m = self.ground, self.mine
        dug = m.disturbed(year)
        theta = np.where(dug, 0.18, g.theta).astype("float32")
        organic = np.where(dug, 0.0, g.organic_m).astype("float32")
        k_min = np.where(dug, 1.6, g.k_mineral).astype("float32")
        spoil = np.where(m.active(year), 1.0, np.where(dug, 0.4, 0.0)).astype("float32")
        return {"theta": theta, "organic_m": organic, "k_mineral": k_min, "spoil": spoil}

    def _basis_fields(self, rs: slice, cs: slice, ndvi, theta, spoil, yearly: bool):
        """The fields of :func:`ground.basis_names` on the part ``rs``, ``cs`` of the outer grid,
        one ``(rows, cols)`` float32 array at a time. ``yearly`` selects how the NDVI x elevation
        field is formed (``dn * (z - 4000) / 1000`` in a year; ``dn * z_km`` in the climatology)."""
        ny, nx = self.outer_shape
        rows, cols = np.mgrid[rs, cs]
        dem = self.dem_m[rs, cs]
        z_km = (dem - 4000.0) / 1000.0
        dn = ndvi[rs, cs] - 0.4
        yield np.ones(dem.shape, "float32")
        yield (cols / nx - 0.5).astype("float32")
        del cols
        yield (rows / ny - 0.5).astype("float32")
        del rows
        yield z_km
        for m in range(12):
            yield self.exposure[m, rs, cs] - 1.0
        yield dn
        yield theta[rs, cs] - 0.25
        yield self.tpi_m[rs, cs] / 100.0
        yield dn * (dem - 4000.0) / 1000.0 if yearly else dn * z_km
        yield spoil[rs, cs]
        yield self.patterns["unexplained"][rs, cs]
        yield from self.patterns["wetting"][:, rs, cs]

    def tile_basis(
        self, rs: slice, cs: slice, ndvi: np.ndarray, theta: np.ndarray, spoil: np.ndarray, *, yearly: bool
    ) -> np.ndarray:
        """``(K, tile pixels)`` basis of the tile ``rs``, ``cs`` of the outer grid (row-major)."""
        fields = list(self._basis_fields(rs, cs, ndvi, theta, spoil, yearly))
        return np.stack(fields).astype("float32").reshape(len(fields), -1)

    def block_basis(self, ndvi: np.ndarray, theta: np.ndarray, spoil: np.ndarray, *, yearly: bool) -> np.ndarray:
        """``(K, blocks)`` block means of the basis, one field at a time."""
        whole = (slice(0, self.outer_shape[0]), slice(0, self.outer_shape[1]))
        return np.stack([self.blocks(f) for f in self._basis_fields(*whole, ndvi, theta, spoil, yearly)])

    @cached_property
    def static_block_basis(self) -> np.ndarray:
        """The block basis with the yearly rows (vegetation, moisture, spoil) at their reference."""
        zero = np.zeros_like(self.dem_m)
        return self.block_basis(zero + 0.4, zero + 0.25, zero, yearly=False)

    def block_basis_in_year(self, ndvi: np.ndarray, theta: np.ndarray, spoil: np.ndarray) -> np.ndarray:
        """``(K, blocks)`` block basis of a year: the static rows plus the year's vegetation,
        moisture and spoil rows."""
        names = ground.basis_names(N_WETTING)
        dn = ndvi - 0.4
        yearly = {
            "ndvi": dn,
            "theta": theta - 0.25,
            "ndvi_z": dn * (self.dem_m - 4000.0) / 1000.0,
            "spoil": spoil,
        }
        bb = self.static_block_basis.copy()
        for k, v in yearly.items():
            bb[names.index(k)] = self.blocks(v.astype("float32"))
        return bb

    def tiled_pass(
        self,
        basis_of,
        coef: np.ndarray,
        cooling: np.ndarray,
        snow: ground.SnowSeason,
        n_factor: np.ndarray,
        *,
        sample: np.ndarray | None = None,
        sites: np.ndarray | None = None,
        ground_mean: bool = False,
        per_tile=None,
    ) -> ground.DailySums:
        """:func:`ground.daily_pass` over the window, one tile at a time: ``basis_of(rs, cs)`` gives
        a tile's basis; ``snow`` and ``n_factor`` are outer-grid fields; ``sample`` and ``sites``
        are flat window indices. Returns the window's sums, ``(rows, cols)`` arrays instead of
        flat ones. ``per_tile(rs, cs, sums)`` is called after each tile."""
        (r0, c0), (ny, nx) = (self.inner[0].start, self.inner[1].start), self.shape
        n_days = coef.shape[0]
        skin = np.empty((ny, nx), "float32")
        thaw = np.empty((ny, nx), "float32")
        mean = np.empty((ny, nx), "float32") if ground_mean else None
        at_sample = np.empty((n_days, len(sample)), "float32") if sample is not None else None
        at_sites = np.zeros((n_days, len(sites)), "float32") if sites is not None else None

        def inside(flat, rs, cs):  # which of ``flat`` lie in the tile, and their index in it
            r, c = flat // nx + r0, flat % nx + c0
            ok = (r >= rs.start) & (r < rs.stop) & (c >= cs.start) & (c < cs.stop)
            return ok, (r[ok] - rs.start) * (cs.stop - cs.start) + (c[ok] - cs.start)

        for rs, cs in self.tiles():
            ks = ks_local = kt = kt_local = None
            if sample is not None:
                ks, ks_local = inside(sample, rs, cs)
            if sites is not None:
                kt, kt_local = inside(sites, rs, cs)
            sums = ground.daily_pass(
                basis_of(rs, cs),
                coef,
                cooling,
                self.tile_blocks(rs, cs),
                ground.SnowSeason(*(np.ascontiguousarray(a[rs, cs]).ravel() for a in _snow_fields(snow))),
                np.ascontiguousarray(n_factor[rs, cs]).ravel(),
                sample=ks_local,
                sites=kt_local,
                ground_mean=ground_mean,
            )
            w = (slice(rs.start - r0, rs.stop - r0), slice(cs.start - c0, cs.stop - c0))
            h, wd = rs.stop - rs.start, cs.stop - cs.start
            skin[w] = sums.skin_ddt.reshape(h, wd)
            thaw[w] = sums.ground_thaw.reshape(h, wd)
            if mean is not None:
                mean[w] = sums.ground_mean.reshape(h, wd)
            if at_sample is not None:
                at_sample[:, ks] = sums.at_sample
            if at_sites is not None:
                at_sites[:, kt] = sums.thaw_at_sites
            if per_tile is not None:
                per_tile(rs, cs, sums)
        return ground.DailySums(skin, thaw, mean, at_sample, at_sites)

    def cloud_blocks(self, w: climate.YearWeather) -> np.ndarray:
        """``(day, block)`` cloud fraction: the regional cloud, more over high ground, in daily
        patterns."""
        rng = rng_for(self.spec.seed, 602, w.year)
        z_b = (self.blocks(self.dem_m) - 4000.0) / 1000.0
        e = (rng.standard_normal((len(w.doy), N_CLOUD_PATTERNS)) * (0.22 / np.sqrt(N_CLOUD_PATTERNS))).astype("float32")
        cloud = e @ self.patterns["cloud"].reshape(N_CLOUD_PATTERNS, -1)
        cloud += w.cloud[:, None].astype("float32")
        cloud += (0.15 * z_b[None]).astype("float32")
        return np.clip(cloud, 0, 1, out=cloud)

    def snow(self, year: int, climatology: bool = False) -> ground.SnowSeason:
        rng = rng_for(self.spec.seed, 603, year)
        dt_warm = 0.0 if climatology else self.spec.warming_degc_per_yr * (year - 2000)
        melt = 118.0 + (0 if climatology else 7.0 * rng.standard_normal()) - 6.0 * dt_warm
        onset = 290.0 + (0 if climatology else 6.0 * rng.standard_normal()) + 6.0 * dt_warm
        return ground.snow_season(
            (self.dem_m - 4000.0) / 1000.0,
            self.exposure[3],
            self.tpi_m,
            self.ground.theta,
            (self.patterns["snow"][0], self.patterns["snow"][1]),
            melt,
            onset,
        )

    @cached_property
    def magt_climate_degc(self) -> np.ndarray:
        """Mean annual temperature at the top of permafrost (°C) on the window under the 2000
        climate without weather (undisturbed ground): ground surface + thermal offset."""
        w = climate.year_weather(self.spec.seed, 2001, 0.0, N_WETTING, climatology=True)
        g = self.ground
        zero = np.zeros_like(g.theta)
        sums = self.tiled_pass(
            lambda rs, cs: self.tile_basis(rs, cs, g.ndvi_static, g.theta, zero, yearly=False),
            ground.daily_coefficients(w),
            ground.cooling_blocks(self.cloud_blocks(w), w.doy),
            self.snow(2001, climatology=True),
            ground.thawing_n_factor(g.ndvi_static, g.organic_m),
            ground_mean=True,
        )
        return (sums.ground_mean + self.crop(ground.thermal_offset_degc(g.theta))).ravel()

    def permafrost(self, year: int) -> np.ndarray:
        """Flat window mask: permafrost exists in ``year`` (MAGT < 0 °C)."""
        return self.magt_in_year(year) < 0

    def magt_in_year(self, year: int, undisturbed: bool = False) -> np.ndarray:
        """Mean annual temperature at the top of permafrost in ``year`` (°C, flat window): the 2000
        climate's plus 80 % of the ground's memory of the realized weather
        (:func:`climate.permafrost_warming_degc`), plus the spoil's warming on dug ground."""
        warm = PF_WARMING_FRACTION * climate.permafrost_warming_degc(
            self.spec.seed, self.spec.warming_degc_per_yr, int(year)
        )
        magt = self.magt_climate_degc + warm
        if not undisturbed:
            d = self.crop(self.mine.disturbed_year).ravel()
            since = np.where((d > 0) & (d <= year), year - d + 1, 0)
            magt = magt + 1.6 * np.clip(since / 4.0, 0, 1)  # spoil: warmer, drier, no peat
        return magt

    @cached_property
    def field_sites(self) -> sites.FieldSites:
        z = self.crop(self.dem_m)
        found = (self.magt_climate_degc < -0.2).reshape(z.shape)
        return sites.place_sites(
            z,
            np.degrees(self.crop(self.slope_aspect[0])),
            found,
            self.crop(self.mine.disturbed_year),
            self.spec.seed,
            spoil_found=self.permafrost(sites.SPOIL_SURVEY_YEAR).reshape(z.shape),
        )

    @cached_property
    def absence_holes(self) -> sites.ExplorationHoles:
        """The holes drilled on ground where the climate had no permafrost while the ALT sites were
        searched for (:mod:`.sites`); the record reports what each found in its year."""
        z = self.crop(self.dem_m)
        return sites.place_absence_holes(
            z,
            np.degrees(self.crop(self.slope_aspect[0])),
            (self.magt_climate_degc < -0.2).reshape(z.shape),
            self.crop(self.mine.disturbed_year),
            list(self.spec.years),
            self.spec.seed,
        )

    def borehole_records(self) -> list[dict]:
        """Presence/absence of permafrost in the drill holes: the ALT sites and the absence holes."""
        fs, holes = self.field_sites, self.absence_holes
        return sites.borehole_records(
            fs,
            _site_lonlat(self, fs),
            holes,
            _site_lonlat(self, holes),
            self.found_when_drilled(fs.row, fs.col, fs.first_year),
            self.found_when_drilled(holes.row, holes.col, holes.year),
        )

    def found_when_drilled(self, row: np.ndarray, col: np.ndarray, year: np.ndarray) -> np.ndarray:
        """Permafrost present (bool) at window pixels ``row``/``col`` in the year each was drilled."""
        found = np.zeros(len(row), bool)
        width = self.crop(self.dem_m).shape[1]
        for y in np.unique(year):
            at = np.asarray(year) == y
            found[at] = self.permafrost(int(y))[np.asarray(row)[at] * width + np.asarray(col)[at]]
        return found

    @cached_property
    def classified_landcover(self) -> np.ndarray:
        """The land-cover map handed to the engine (a 2015 classification with errors), window."""
        truth = self.crop(land.landcover_in_year(self.ground, self.mine, 2015))
        return land.classified_landcover(truth, self.spec.seed)

    # ------------------------------------------------------------------ one year
    def sky_in_year(self, year: int) -> SkyYear:
        """The year's weather, surface and skin temperature on the 1 km blocks, and what MODIS saw."""
        s = self.spec
        w = climate.year_weather(s.seed, year, s.warming_degc_per_yr, N_WETTING)
        coef = ground.daily_coefficients(w)
        g = self.ground_in_year(year)
        ndvi, ndvi_undisturbed = land.ndvi_in_year(self.ground, self.mine, year, s.warming_degc_per_yr, s.seed)
        bb = self.block_basis_in_year(ndvi, g["theta"], g["spoil"])
        cloud = self.cloud_blocks(w)
        cooling = ground.cooling_blocks(cloud, w.doy)
        snow = self.snow(year)
        # --- MODIS LST on blocks
        # (day, block) arrays are 170 MB each on the full study grid: formed in place, freed early
        t_lin = coef.astype("float32") @ bb
        snow_frac = self._snow_fraction(snow, len(w.doy))
        clear_sky = np.minimum(t_lin, ground.SNOW_SKIN_MAX_DEGC)  # t_lin + snow_frac * (min(t_lin, s) - t_lin)
        clear_sky -= t_lin
        clear_sky *= snow_frac
        clear_sky += t_lin
        del t_lin
        summer = climate.summer_weight(w.doy)[:, None].astype("float32")
        amp = (6.0 + 6.0 * summer) * (1 + 1.2 * (0.45 - self.blocks(ndvi)[None]))
        exp_day = ground.month_weights(w.doy).astype("float32") @ self.exposure_blocks
        exp_day *= 0.5
        exp_day += 0.5
        amp *= exp_day  # amp *= 0.5 + 0.5 * exp_day
        del exp_day
        snow_frac *= 0.6
        np.subtract(1, snow_frac, out=snow_frac)
        amp *= snow_frac  # amp *= 1 - 0.6 * snow_frac
        del snow_frac
        lst = sensors.modis_lst(w, clear_sky, amp, cloud, self.lst_footprints, s.seed)
        del amp, cloud
        return SkyYear(w, coef, g, ndvi, ndvi_undisturbed, cooling, snow, clear_sky, lst)

    def year(self, year: int, sample: np.ndarray) -> dict:
        """Truth and observations of ``year`` (see :func:`write_realistic_inputs`)."""
        s = self.spec
        sky = self.sky_in_year(year)
        w, coef, g, ndvi, ndvi_undisturbed = sky.weather, sky.coef, sky.ground_state, sky.ndvi, sky.ndvi_undisturbed
        cooling, snow, lst = sky.cooling, sky.snow, sky.lst
        ndvi_obs = sensors.modis_ndvi(ndvi, self.ndvi_footprints, year, s.seed)
        landsat = sensors.landsat_ndvi(self.crop(ndvi), year, s.seed)
        # --- truth on the window, day by day and tile by tile
        fs = self.field_sites
        site_flat = fs.row * self.shape[1] + fs.col
        (r0, c0) = (self.inner[0].start, self.inner[1].start)
        alt = np.empty(self.shape, "float32")

        def thaw_depth(rs, cs, sums):
            alt[rs.start - r0 : rs.stop - r0, cs.start - c0 : cs.stop - c0] = ground.thaw_depth_m(
                sums.ground_thaw,
                *(np.ascontiguousarray(g[k][rs, cs]).ravel() for k in ("organic_m", "theta", "k_mineral")),
            ).reshape(rs.stop - rs.start, cs.stop - cs.start)

        sums = self.tiled_pass(
            lambda rs, cs: self.tile_basis(rs, cs, ndvi, g["theta"], g["spoil"], yearly=True),
            coef,
            cooling,
            snow,
            ground.thawing_n_factor(ndvi, g["organic_m"]),
            sample=sample,
            sites=site_flat,
            per_tile=thaw_depth,
        )
        pf = self.permafrost(year)
        alt = np.where(pf, alt.ravel(), np.nan).astype("float32")
        facts = {"permafrost_fraction": float(pf.mean()), "landsat": sensors.landsat_era(year)}
        facts.update(self._mine_effect(year, coef, cooling, snow, alt, sky, ndvi_undisturbed, sums.skin_ddt.ravel()))
        site_rc = (fs.row + r0, fs.col + c0)
        ground_s = {k: g[k][site_rc] for k in ("organic_m", "theta", "k_mineral")}
        # --- sites: end-of-season depth and what a probe read on its campaign day
        depth = alt[site_flat]
        thaw_cum = np.cumsum(sums.thaw_at_sites, axis=0)
        end_day = np.argmax(thaw_cum >= thaw_cum[-1:] - 1e-3, axis=0)
        rng = rng_for(s.seed, 604, year)
        campaign = {}
        for i in range(len(site_flat)):
            day = int(rng.integers(205, 259))  # 25 July - 15 September
            d_i = ground.thaw_depth_m(
                np.array([thaw_cum[day, i]]),
                ground_s["organic_m"][i : i + 1],
                ground_s["theta"][i : i + 1],
                ground_s["k_mineral"][i : i + 1],
            )[0]
            campaign[i] = (float(d_i), (dt.date(year, 1, 1) + dt.timedelta(days=day)).isoformat())
        wins = sensors.composite_windows(year, len(w.doy))
        lst_true = np.stack([sums.at_sample[d0 : d0 + nd].mean(axis=0) for d0, nd in wins])
        return {
            "year": year,
            "ndvi_true": self.crop(ndvi),
            "landsat": landsat,
            "modis_ndvi": ndvi_obs,
            "lst": lst,
            "ddt": sums.skin_ddt,
            "alt": alt.reshape(self.shape),
            "lst_true_sample": lst_true.astype("float32"),
            "facts": facts,
            "site_depth": depth,
            "site_end_day": end_day,
            "site_campaign": campaign,
        }

    def _snow_fraction(self, snow: ground.SnowSeason, n_days: int) -> np.ndarray:
        """``(day, block)`` fraction of each block's 30 m pixels under snow, with the melt-out (and
        the onset) days of a block's pixels taken as spread evenly between their min and max."""
        doy = np.arange(1, n_days + 1, dtype="float32")[:, None]

        def share_passed(days: np.ndarray) -> np.ndarray:  # share of the block's pixels with day <= doy
            (nby, nbx), b = self.block_shape, self.block_px
            per_block = days.reshape(nby, b, nbx, b)
            lo = np.ceil(per_block.min(axis=(1, 3))).ravel().astype("float32")
            hi = np.ceil(per_block.max(axis=(1, 3))).ravel().astype("float32")
            return np.clip((doy - lo + 1) / (hi - lo + 1), 0, 1)

        free = share_passed(snow.melt_doy) - share_passed(np.maximum(snow.onset_doy, snow.melt_doy))
        return (1 - free).astype("float32")

    def _mine_effect(self, year, coef, cooling, snow, alt, sky: SkyYear, ndvi_undisturbed, skin_ddt=None) -> dict:
        """The mine's true effect in ``year``: the same year recomputed on the disturbed pixels as
        if the mine had never been. On ALT: the mean difference over the pixels with permafrost in
        both (``mine_effect_alt_m``); on the thaw index: the mean difference of the all-sky skin
        DDT (the truth's ``ddt``; ``skin_ddt`` flat over the window) over all disturbed pixels
        (``mine_effect_ddt_degc_days``); on permafrost presence: the share of disturbed pixels with
        permafrost minus that share without the mine (``mine_effect_permafrost_fraction``); and the
        share of disturbed pixels whose permafrost the mine removed. Outputs only: nothing here
        feeds back into the world."""
        m = self.crop(self.mine.disturbed_year).ravel()
        dug = np.nonzero((m > 0) & (m <= year))[0]
        if dug.size == 0:
            return {"mine_pixels": 0}
        g = self.ground
        rows, cols = dug // self.shape[1] + self.inner[0].start, dug % self.shape[1] + self.inner[1].start
        rs, cs = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
        # the year's fields on the dug pixels (from the tile around them), then undo the mine
        box = self.tile_basis(rs, cs, sky.ndvi, sky.ground_state["theta"], sky.ground_state["spoil"], yearly=True)
        basis = box[:, (rows - rs.start) * (cs.stop - cs.start) + (cols - cs.start)]
        del box
        names = ground.basis_names(N_WETTING)
        nd = ndvi_undisturbed[rows, cols]
        z_km = basis[names.index("z_km")]
        basis[names.index("ndvi")] = nd - 0.4
        basis[names.index("ndvi_z")] = (nd - 0.4) * z_km
        basis[names.index("theta")] = g.theta[rows, cols] - 0.25
        basis[names.index("spoil")] = 0.0
        sub_snow = ground.SnowSeason(
            snow.melt_doy[rows, cols], snow.onset_doy[rows, cols], snow.thaw_start_doy[rows, cols]
        )
        sums = ground.daily_pass(
            basis,
            coef,
            cooling,
            self.pixel_blocks(rows, cols),
            sub_snow,
            ground.thawing_n_factor(nd, g.organic_m[rows, cols]),
        )
        alt_cf = ground.thaw_depth_m(
            sums.ground_thaw, g.organic_m[rows, cols], g.theta[rows, cols], g.k_mineral[rows, cols]
        )
        pf_cf = self.magt_in_year(year, undisturbed=True)[dug] < 0
        pf_now = np.isfinite(alt[dug])
        both = pf_cf & pf_now
        extra = {}
        if skin_ddt is not None:
            extra["mine_effect_ddt_degc_days"] = float(np.mean(skin_ddt[dug] - sums.skin_ddt))
        return {
            **extra,
            "mine_effect_permafrost_fraction": float(np.mean(pf_now) - np.mean(pf_cf)),
            "mine_effect_alt_pixels": int(both.sum()),
            "mine_pixels": int(dug.size),
            "mine_effect_alt_m": float(np.mean(alt[dug][both] - alt_cf[both])) if both.any() else float("nan"),
            "mine_permafrost_lost_fraction": float(np.mean(pf_cf & ~np.isfinite(alt[dug]))),
        }


def _snow_fields(snow: ground.SnowSeason) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return snow.melt_doy, snow.onset_doy, snow.thaw_start_doy


# ---------------------------------------------------------------------- writing the world
_SCENES: dict = {}
# statics computed once in the main process and handed to the workers through a file they
# memory-map (cheaper than rebuilding them; see :func:`_dump_statics`)
_SHARED = (
    "dem_m",
    "exposure",
    "exposure_blocks",
    "tpi_m",
    "ground",
    "mine",
    "patterns",
    "lst_footprints",
    "ndvi_footprints",
    "magt_climate_degc",
    "field_sites",
    "static_block_basis",
)


def _dump_statics(scene: RealisticScene, folder: Path) -> Path:
    """Write the statics the year workers need (:data:`_SHARED`) to one joblib file in ``folder``.

    The workers memory-map its arrays read-only (:func:`_init_worker`): the main process never
    builds a pickled copy for each worker (about 1.5 GB at the full study grid, on top of the
    statics themselves) and the workers share the pages instead of each holding a private copy."""
    import joblib

    path = folder / "statics.joblib"
    joblib.dump({name: getattr(scene, name) for name in _SHARED}, path)
    return path


def _init_worker(spec: RealisticSpec, tile_px: int, statics: str) -> None:
    """Pool initializer: one scene per worker process, its statics memory-mapped (read-only) from
    the file :func:`_dump_statics` wrote."""
    import joblib

    _SCENES.clear()
    scene = RealisticScene(spec, tile_px)
    scene.__dict__.update(joblib.load(statics, mmap_mode="r"))
    _SCENES[spec] = scene


def _write_year(scene: RealisticScene, inputs_dir: Path, truth_dir: Path, year: int, sample: np.ndarray) -> dict:
    """Write one year's synthetic inputs and truth; return what scoring and the sites need."""
    r = scene.year(year, sample)
    tags = synthetic_tags(WORLD, scene.spec.seed)
    write_year_inputs(
        inputs_dir,
        year,
        tags,
        landsat=(r["landsat"], scene.grid, f"Landsat-like {sensors.landsat_era(year)} (synthetic)"),
        modis_ndvi=(r["modis_ndvi"], scene.ndvi_grid),
        modis_lst=(r["lst"].lst_degc, scene.lst_grid),
        lst_starts=r["lst"].starts,
        lst_days=r["lst"].days,
        lst_quantity="day/night land surface temperature with view times, Terra and Aqua 8-day composites "
        "(MOD11A2/MYD11A2-like: mean clear-sky look and its mean local solar view time per overpass)",
        lst_looks=(r["lst"].looks, r["lst"].view_hours),
    )
    ytag = {**tags, "year": year}
    write_truth(truth_dir, "ddt", r["ddt"], scene.grid, ytag, "degC day", "true all-sky skin DDT", year)
    write_truth(truth_dir, "alt", r["alt"], scene.grid, ytag, "m", "true ALT (NaN: no permafrost)", year)
    return {
        "year": year,
        "ndvi": r["ndvi_true"].reshape(-1)[sample],
        "lst": r["lst_true_sample"],
        "facts": r["facts"],
        "site_depth": r["site_depth"],
        "site_end_day": r["site_end_day"],
        "site_campaign": r["site_campaign"],
    }


def _write_year_in_worker(spec, inputs_dir, truth_dir, year, sample) -> dict:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS thread per worker process: no oversubscription
        return _write_year(_SCENES[spec], Path(inputs_dir), Path(truth_dir), year, sample)


def write_realistic_inputs(
    scene: RealisticScene,
    inputs_dir: str | Path,
    truth_dir: str | Path,
    years: list[int],
    progress=None,
    n_sample: int = 20000,
    workers: int = 1,
) -> TruthSample:
    """Write the realistic world's inputs (the local layout), its truth and its field records.

    ``inputs_dir`` gets dem.tif, landcover.tif (a 2015 classification with errors), landsat_ndvi/,
    modis_ndvi/, modis_lst/ (46 whole-year 8-day composites), insitu.csv (with ``obs_date``) and
    permafrost_boreholes.csv (the drill holes: the ALT sites and the holes that found no permafrost);
    ``truth_dir`` gets ddt_YYYY.tif (all-sky skin DDT), alt_YYYY.tif (NaN where there is no
    permafrost), landcover.tif (true classes; 5 = ever dug) and mine.tif (year first dug, 0 =
    never). ``progress(advance)`` is called once per year; the output does not depend on
    ``workers``.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    inputs_dir, truth_dir = Path(inputs_dir), Path(truth_dir)
    s = scene.spec
    tags = synthetic_tags(WORLD, s.seed)
    classified = scene.classified_landcover
    write_static_inputs(inputs_dir, scene.grid, scene.crop(scene.dem_m), classified, tags, land.LANDCOVER_CLASSES)
    true_lc = scene.crop(land.landcover_in_year(scene.ground, scene.mine, 2024)).copy()
    dug = scene.crop(scene.mine.disturbed_year)
    true_lc[dug > 0] = 5
    write_truth(truth_dir, "landcover", true_lc.astype("float32"), scene.grid, tags, "class", "true land cover")
    write_truth(truth_dir, "mine", dug.astype("float32"), scene.grid, tags, "year", "year first dug (0 never)")
    truth_2015 = scene.crop(land.landcover_in_year(scene.ground, scene.mine, 2015))
    sample = TruthSample(
        index=sample_index(s.seed, scene.shape[0] * scene.shape[1], n_sample),
        world={
            "name": WORLD,
            "warming_degc_per_yr": s.warming_degc_per_yr,
            "landcover_misclassified_fraction": float(np.mean(classified != truth_2015)),
        },
    )
    site_info: dict[int, dict] = {}

    def consume(res: dict) -> None:
        y = res["year"]
        sample.ndvi[y] = res["ndvi"]
        sample.lst_degc[y] = res["lst"]
        sample.facts[y] = res["facts"]
        site_info[y] = res
        if progress:
            progress(1)

    workers = min(workers, len(years))
    if workers <= 1:
        from threadpoolctl import threadpool_limits

        # one BLAS thread, as in the workers: a float32 product's last bits depend on the thread
        # count (seen on a 2-core AMD EPYC: 221 of 35 328 LST values of a 128² year differed)
        with threadpool_limits(1):
            for year in years:
                consume(_write_year(scene, inputs_dir, truth_dir, year, sample.index))
    else:
        ctx = multiprocessing.get_context("spawn")
        with tempfile.TemporaryDirectory(prefix=TMP_PREFIX + "statics-", dir=inputs_dir) as tmp:
            statics = str(_dump_statics(scene, Path(tmp)))
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(s, scene.tile_px, statics)
            ) as pool:
                futures = [
                    pool.submit(_write_year_in_worker, s, str(inputs_dir), str(truth_dir), y, sample.index)
                    for y in years
                ]
                for fut in futures:
                    consume(fut.result())
    fs = scene.field_sites
    lon, lat = _site_lonlat(scene, fs)
    recs = sites.site_records(
        fs,
        (lon, lat),
        {y: v["site_depth"] for y, v in site_info.items()},
        {y: v["site_end_day"] for y, v in site_info.items()},
        {y: v["site_campaign"] for y, v in site_info.items()},
        s.seed,
    )
    write_insitu_csv(inputs_dir, sites.INSITU_COLUMNS, recs)
    write_insitu_csv(inputs_dir, sites.BOREHOLE_COLUMNS, scene.borehole_records(), runs.BOREHOLES_CSV)
    return sample


def _site_lonlat(scene: RealisticScene, fs: sites.FieldSites | sites.ExplorationHoles) -> tuple[np.ndarray, np.ndarray]:
    """Recorded site positions: the pixel centre plus the GPS error (m)."""
    a = scene.grid["crs_transform"]
    rows = fs.row + 0.5 + fs.gps_offset_m[:, 1] / a[4]
    cols = fs.col + 0.5 + fs.gps_offset_m[:, 0] / a[0]
    return rowcol_to_lonlat(scene.grid, rows, cols)
