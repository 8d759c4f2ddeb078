"""Ground, vegetation and the mine of the realistic world (static fields and their yearly state).

The ground is described by continuous fields that no input raster carries: volumetric soil
moisture ``theta`` (m³/m³), organic-layer thickness ``organic_m`` (m) and the thawed mineral
soil's thermal conductivity ``k_mineral`` (W m⁻¹ K⁻¹). Land cover follows from them and from the
terrain; the land-cover map handed to the engine is a later, imperfect classification.

The mine (Muli-like open pits and spoil) opens in 2003, grows until 2014 and is partly restored
from 2015: spoil loses its organic layer and moisture for good, is dark and warm, and restored
spoil greens again slowly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation, maximum_filter, minimum_filter

from gee_alt.demo.fields import rng_for, smooth_field

LANDCOVER_CLASSES = {
    1: "alpine meadow",
    2: "swamp meadow",
    3: "alpine steppe",
    4: "bare rock and scree",
    5: "mining spoil",
}
MINE_OPENS, MINE_FULL, RESTORATION_STARTS = 2003, 2014, 2015
NDVI_BASE = {1: 0.50, 2: 0.60, 3: 0.28, 4: 0.06}


@dataclass
class Ground:
    """Static ground and land fields (undisturbed state), all ``(y, x)`` float32 or uint8."""

    theta: np.ndarray
    organic_m: np.ndarray
    k_mineral: np.ndarray
    landcover: np.ndarray  # true undisturbed class 1-4
    ndvi_static: np.ndarray  # NDVI pattern without yearly variation (unitless)


@dataclass
class Mine:
    """Where and when the mine disturbs the ground: ``disturbed_year`` (0 = never) and
    ``restored_year`` (0 = never), per pixel (int16)."""

    disturbed_year: np.ndarray
    restored_year: np.ndarray

    def active(self, year: int) -> np.ndarray:
        """Disturbed and not (yet) restored in ``year``."""
        d, r = self.disturbed_year, self.restored_year
        return (d > 0) & (d <= year) & ~((r > 0) & (r <= year))

    def disturbed(self, year: int) -> np.ndarray:
        """Disturbed in or before ``year`` (restored or not)."""
        return (self.disturbed_year > 0) & (self.disturbed_year <= year)

    def years_restored(self, year: int) -> np.ndarray:
        """Years since restoration began (0 where not restored)."""
        r = self.restored_year
        return np.where((r > 0) & (r <= year), year - r + 1, 0)


def ground_fields(
    z_m: np.ndarray, slope: np.ndarray, tpi_m: np.ndarray, exposure_summer: np.ndarray, seed: int
) -> Ground:
    """The undisturbed ground: moisture collects in hollows and on gentle, shaded ground; organic
    soil where it is wet and vegetated; rock on high and steep ground."""
    rng = rng_for(seed, 301)
    shape = z_m.shape
    z_km = (z_m.astype("float64") - 4000.0) / 1000.0
    slope_deg = np.degrees(slope)
    theta = (
        0.26
        - 0.0018 * np.clip(tpi_m, -60, 60)
        - 0.0035 * np.clip(slope_deg - 5, 0, 30)
        - 0.10 * (exposure_summer - 1.0)
        + 0.07 * smooth_field(shape, 12, rng)
        + 0.025 * smooth_field(shape, 2.5, rng)
        - 0.05 * np.clip(z_km - 0.3, 0, None)
    )
    theta = np.clip(theta, 0.06, 0.52)
    lc = np.ones(shape, "uint8")
    lc[(theta < 0.2) & (exposure_summer > 0.99) & (z_m < 4400)] = 3
    lc[(theta > 0.34) & (slope_deg < 9) & (z_m < 4300)] = 2
    rock = (z_m > 4450 + 60 * smooth_field(shape, 6, rng)) | ((z_m > 4200) & (slope_deg > 30))
    lc[rock] = 4
    organic = np.clip(0.03 + 0.55 * (theta - 0.2) + 0.03 * smooth_field(shape, 8, rng), 0.0, 0.32)
    organic[lc == 4] = 0.0
    organic[lc == 3] *= 0.4
    k_min = 1.3 + 0.22 * smooth_field(shape, 25, rng) + 0.35 * (lc == 4) + 0.1 * (lc == 3)
    base = np.zeros(shape)
    for k, v in NDVI_BASE.items():
        base[lc == k] = v
    veg = lc != 4
    ndvi = base + veg * (0.45 * (theta - 0.25) - 0.10 * z_km + 0.04 * smooth_field(shape, 5, rng))
    return Ground(
        theta.astype("float32"),
        organic.astype("float32"),
        k_min.astype("float32"),
        lc,
        np.clip(ndvi, 0.02, 0.85).astype("float32"),
    )


def mine_history(z_m: np.ndarray, slope: np.ndarray, inner: tuple[slice, slice], seed: int) -> Mine:
    """A Muli-like mine inside the window: a blob of pits and dumps off the valley floor on
    gentle ground, opened from its centre outwards 2003-2014; about half of what was dug by
    2009 is restored, part by part, 2015-2020."""
    rng = rng_for(seed, 302)
    shape = z_m.shape
    ys, xs = inner
    n = min(ys.stop - ys.start, xs.stop - xs.start)  # the window's side (its shorter side)
    win_z = z_m[inner]
    win_slope = np.degrees(slope[inner])
    margin = max(8, n // 6)
    cand = np.zeros_like(win_z, bool)
    cand[margin:-margin, margin:-margin] = True
    cand &= (win_z > 3900) & (win_z < 4200) & (win_slope < 14)
    if not cand.any():  # small windows: the gentlest interior point
        cand[margin:-margin, margin:-margin] = True
    idx = np.argwhere(cand)
    cy, cx = idx[rng.integers(len(idx))] + [ys.start, xs.start]
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    radius = 0.09 * n
    dist = np.hypot((yy - cy) / 0.8, (xx - cx) / 1.25) / radius + 0.35 * smooth_field(shape, max(3, n / 60), rng)
    blob = dist < 1.0
    order = np.clip(dist, 0, 1)
    disturbed = np.where(blob, MINE_OPENS + np.floor(order * (MINE_FULL - MINE_OPENS + 1)).clip(0, 11), 0)
    restore_pick = blob & (disturbed <= 2009) & (smooth_field(shape, max(2, n / 80), rng) > 0)
    restored = np.where(restore_pick, RESTORATION_STARTS + rng.integers(0, 6, size=shape), 0)
    return Mine(disturbed.astype("int16"), restored.astype("int16"))


def landcover_in_year(ground: Ground, mine: Mine, year: int) -> np.ndarray:
    """The true land cover of ``year``: spoil where the mine is active, meadow where restored."""
    lc = ground.landcover.copy()
    lc[mine.disturbed(year)] = 1
    lc[mine.active(year)] = 5
    return lc


def classified_landcover(truth: np.ndarray, seed: int) -> np.ndarray:
    """An imperfect classification of ``truth`` (as a mapping agency would deliver it): mixed
    pixels along class edges take a neighbouring class, and patches of spectrally similar classes
    are confused (meadow/steppe, swamp meadow/meadow, steppe/rock)."""
    rng = rng_for(seed, 303)
    lc = truth.copy()
    edge = maximum_filter(truth, 3) != minimum_filter(truth, 3)
    flip = edge & (rng.uniform(size=truth.shape) < 0.35)
    neighbour = np.where(rng.uniform(size=truth.shape) < 0.5, maximum_filter(truth, 3), minimum_filter(truth, 3))
    lc[flip] = neighbour[flip]
    patches = smooth_field(truth.shape, 5, rng)
    confuse = {1: 3, 3: 1, 2: 1, 4: 3}
    for src, dst in confuse.items():
        sel = (truth == src) & (patches > 1.25)
        lc[sel] = dst
    lc[binary_dilation(truth == 5, iterations=1) & (rng.uniform(size=truth.shape) < 0.3)] = 5
    return lc


def ndvi_in_year(
    ground: Ground, mine: Mine, year: int, warming_degc_per_yr: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Growing-season NDVI truth (unitless) with the mine, and as it would be without it: the
    static pattern, the year's greenness anomaly (with a greening trend that follows the
    warming), small patchy variation, and the mine."""
    rng = rng_for(seed, 310, year)
    veg = ground.landcover != 4
    anom = 0.02 * rng.standard_normal() + 0.03 * (warming_degc_per_yr / 0.05) * (year - 2012) / 12.0
    undisturbed = ground.ndvi_static + veg * (anom + 0.015 * smooth_field(ground.ndvi_static.shape, 4, rng))
    undisturbed = np.clip(undisturbed, 0.0, 0.9).astype("float32")
    ndvi = undisturbed.copy()
    active = mine.active(year)
    ndvi[active] = 0.05 + 0.02 * rng.standard_normal(int(active.sum()))
    back = mine.years_restored(year)
    ramp = np.clip(back / 6.0, 0, 1)
    sel = back > 0
    ndvi[sel] = 0.06 + (0.36 - 0.06) * ramp[sel]
    return np.clip(ndvi, 0.0, 0.9).astype("float32"), undisturbed
