"""Hard synthetic scenes for LST sharpening: structure outside the sharpener's model family.

Written on purpose **without** gee_alt's science (no terrain, resample or demo functions): numpy,
scipy and pyproj only, its own slope/aspect (Horn's 3x3 operator), its own sun geometry, its own
sensor model (centre-in-footprint means), so that a benchmark on these scenes does not score the
sharpener against its own assumptions. All synthetic; nothing here is a measurement.

One scene (``make_scene(seed, size)``):

- a ``size`` x ``size`` window at 30 m on UTM 47N (EPSG:32647) centred at a seeded place in the
  study area; the truth is built on a padded window so every coarse pixel that touches the fine
  window is observed whole;
- terrain: spectral fractal relief plus two seeded valley systems (relief 900-1500 m around
  3300-3900 m);
- six composites (day of year :data:`DOYS`), each with its own sun at the Terra overpass
  (10:30 local solar time; elevation and azimuth from the declination), and these phenomena,
  none given to the model directly:

  * snow lines that depend on the date and on aspect (lower on north-facing slopes);
  * cold-air pooling: cooling with the height above the local valley floor (strongest early
    and late in the season);
  * four land-cover classes (meadow, wetland, scree, degraded steppe) with their own
    temperature offsets; the NDVI only partly reveals them (wetland and meadow overlap);
  * an unexplained field (the irreducible part): a persistent and a per-date correlated field;

- the observation: radiance-like ((T + 273.15)^4) field with thin-cloud cooling at cloud edges
  (not flagged), Gaussian point-spread blur (sigma ``PSF_SIGMA_M``), the mean over the fine
  pixels whose centre falls in each coarse pixel, back to °C, + N(0, ``NOISE_K``); coarse pixels
  under thick cloud are NaN;
- coarse grid: the MODIS 1 km sinusoidal lattice (sheared by ~45 deg at 99 E) for even seeds,
  a 30-arc-second EPSG:4326 grid with a seeded sub-pixel offset for odd seeds; neither is aligned
  with the fine grid.

The "irreducible floor" oracle knows the truth minus the unexplained field (``explained``) and
the sensor: its prediction is ``explained`` plus the bilinear interpolation of the coarse
residual (observation minus the sensor applied to ``explained``); the floor is the smaller RMSE
of that and of ``explained`` alone.
"""

from __future__ import annotations

import math

import numpy as np
from pyproj import Transformer
from scipy import ndimage

KELVIN = 273.15
SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_PX_M = 926.625433055833
MODIS_X0, MODIS_Y0 = -20015109.355798, 10007554.677899
ARCSEC30_DEG = 1.0 / 120.0
STUDY_LONLAT = (98.95, 37.85, 99.85, 38.25)  # centres are drawn here (inside the study area)
UTM = "EPSG:32647"
FINE_M = 30.0
DOYS = (150, 174, 198, 222, 246, 270)
PSF_SIGMA_M = 280.0
NOISE_K = 0.3
LAT_DEG = 38.0
# Seeds: tune on these; report the others separately (never looked at while tuning).
TUNING_SEEDS = (0, 1, 2, 3)
UNTUNED_SEEDS = (1000, 1001, 1002, 1003)
# Fresh seeds (issue 15): added after the untuned set had been reported once; run once at the end.
FRESH_SEEDS = (2000, 2001, 2002, 2003)


def spectral_field(shape, beta: float, rng, min_period_px: float = 2.0) -> np.ndarray:
    """Gaussian random field with power ~ k^-beta, mean 0, sd 1."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    k = np.hypot(ky, kx)
    amp = np.where(k > 0, np.maximum(k, 1.0 / max(shape)) ** (-beta / 2.0), 0.0)
    amp[k > 1.0 / min_period_px] = 0.0
    spec = amp * (rng.normal(size=k.shape) + 1j * rng.normal(size=k.shape))
    f = np.fft.irfft2(spec, s=shape)
    return (f - f.mean()) / (f.std() + 1e-12)


def horn_slope_aspect(dem: np.ndarray, px: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope (rad) and aspect (rad, downslope direction clockwise from north) by Horn's operator."""
    d = np.pad(dem, 1, mode="edge")
    a, b, c = d[:-2, :-2], d[:-2, 1:-1], d[:-2, 2:]
    dd, f = d[1:-1, :-2], d[1:-1, 2:]
    g, h, i = d[2:, :-2], d[2:, 1:-1], d[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * dd + g)) / (8 * px)  # east
    dzdy = ((a + 2 * b + c) - (g + 2 * h + i)) / (8 * px)  # north (rows run north to south)
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(-dzdx, -dzdy) % (2 * np.pi)  # downslope direction
    return slope, aspect


def sun_position(doy: int, lat_deg: float = LAT_DEG, solar_hour: float = 10.5) -> tuple[float, float]:
    """Sun elevation and azimuth (rad, clockwise from north) at a local solar time."""
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365.0)
    lat = math.radians(lat_deg)
    hra = math.radians(15.0 * (solar_hour - 12.0))
    sin_el = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(hra)
    el = math.asin(sin_el)
    cos_az = (math.sin(decl) - sin_el * math.sin(lat)) / (math.cos(el) * math.cos(lat))
    az = math.acos(max(-1.0, min(1.0, cos_az)))
    if hra > 0:
        az = 2 * math.pi - az
    return el, az


def _grid(crs, x0, y0, px_x, px_y, w, h) -> dict:
    return {"crs": crs, "crs_transform": (px_x, 0.0, x0, 0.0, -px_y, y0), "shape_2d": (w, h)}


def _centres(grid: dict, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    a, _, c, _, e, f = grid["crs_transform"]
    w, h = grid["shape_2d"]
    x = c + (np.arange(-pad, w + pad) + 0.5) * a
    y = f + (np.arange(-pad, h + pad) + 0.5) * e
    return np.meshgrid(x, y)


def coarse_grid_for(fine: dict, kind: str, rng) -> dict:
    """The coarse grid (``sinusoidal`` MODIS lattice or ``4326`` 30") covering ``fine`` + 1 px."""
    xx, yy = _centres(fine)
    dst = SINUSOIDAL if kind == "sinusoidal" else "EPSG:4326"
    tr = Transformer.from_crs(fine["crs"], dst, always_xy=True)
    ex = np.concatenate([xx[0], xx[-1], xx[:, 0], xx[:, -1]])
    ey = np.concatenate([yy[0], yy[-1], yy[:, 0], yy[:, -1]])
    X, Y = tr.transform(ex, ey)
    if kind == "sinusoidal":
        px, ox, oy = MODIS_PX_M, MODIS_X0, MODIS_Y0
        pxy = px
    else:
        px = pxy = ARCSEC30_DEG
        ox, oy = rng.uniform(0, px), rng.uniform(0, px)
    c0 = math.floor((min(X) - ox) / px) - 1
    c1 = math.ceil((max(X) - ox) / px) + 1
    r0 = math.floor((oy - max(Y)) / pxy) - 1
    r1 = math.ceil((oy - min(Y)) / pxy) + 1
    return _grid(dst, ox + c0 * px, oy - r0 * pxy, px, pxy, c1 - c0, r1 - r0)


def fine_in_coarse(fine: dict, coarse: dict, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, col) positions in ``coarse`` of the fine pixel centres (pixel-centre origin)."""
    xx, yy = _centres(fine, pad)
    X, Y = Transformer.from_crs(fine["crs"], coarse["crs"], always_xy=True).transform(xx, yy)
    a, _, c, _, e, f = coarse["crs_transform"]
    return (Y - f) / e - 0.5, (X - c) / a - 0.5


class Sensor:
    """Centre-in-footprint mean of a (padded) fine field onto the coarse grid, with PSF blur."""

    def __init__(self, fine: dict, coarse: dict, pad: int):
        rows, cols = fine_in_coarse(fine, coarse, pad)
        ri, ci = np.floor(rows + 0.5).astype(int), np.floor(cols + 0.5).astype(int)
        w, h = coarse["shape_2d"]
        inside = (ri >= 0) & (ri < h) & (ci >= 0) & (ci < w)
        self.index = np.where(inside, ri * w + ci, h * w)  # h*w: outside bin
        self.n = h * w
        self.shape = (h, w)
        counts = np.bincount(self.index.ravel(), minlength=self.n + 1)[: self.n].reshape(h, w)
        # a coarse pixel is complete when it has no centre on the padded window's border
        border = np.zeros(self.index.shape, bool)
        border[[0, -1], :] = True
        border[:, [0, -1]] = True
        touched = np.bincount(self.index[border], minlength=self.n + 1)[: self.n].reshape(h, w) > 0
        self.complete = (counts > 0) & ~touched
        self.counts = np.maximum(counts, 1)
        self.sigma_px = PSF_SIGMA_M / FINE_M

    def __call__(self, radiance: np.ndarray) -> np.ndarray:
        out = np.empty((radiance.shape[0], *self.shape))
        for b, r in enumerate(radiance):
            blurred = ndimage.gaussian_filter(r, self.sigma_px, mode="nearest")
            s = np.bincount(self.index.ravel(), weights=blurred.ravel(), minlength=self.n + 1)[: self.n]
            out[b] = np.where(self.complete, s.reshape(self.shape) / self.counts, np.nan)
        return out


def bilinear(coarse: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of (band, cy, cx) at fractional positions, NaN neighbours left out."""
    out = np.empty((coarse.shape[0], *rows.shape))
    coords = np.stack([rows, cols])
    for b, c in enumerate(coarse):
        ok = np.isfinite(c)
        num = ndimage.map_coordinates(np.where(ok, c, 0.0), coords, order=1, mode="nearest")
        den = ndimage.map_coordinates(ok.astype(float), coords, order=1, mode="nearest")
        out[b] = np.where(den > 1e-9, num / np.maximum(den, 1e-9), np.nan)
    return out


def _to_degc(rad):
    return np.where(rad > 0, rad, np.nan) ** 0.25 - KELVIN


def make_scene(seed: int, size: int = 1024, kind: str | None = None) -> dict:
    """One hard scene (module docstring). Returns arrays on the fine window and the grids (dicts)."""
    rng = np.random.default_rng(np.random.SeedSequence([15, seed, size]))
    kind = kind or ("sinusoidal" if seed % 2 == 0 else "4326")
    lon, lat = rng.uniform(STUDY_LONLAT[0], STUDY_LONLAT[2]), rng.uniform(STUDY_LONLAT[1], STUDY_LONLAT[3])
    cx, cy = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(lon, lat)
    x0 = math.floor((cx - size * FINE_M / 2) / FINE_M) * FINE_M
    y0 = math.floor((cy + size * FINE_M / 2) / FINE_M) * FINE_M
    fine = _grid(UTM, x0, y0, FINE_M, FINE_M, size, size)
    coarse = coarse_grid_for(fine, kind, rng)
    pad = int(math.ceil(2.2 * MODIS_PX_M / FINE_M))
    n = size + 2 * pad
    inner = (slice(pad, pad + size), slice(pad, pad + size))

    # ---------------------------------------------------------------- terrain
    yy, xx = (np.mgrid[0:n, 0:n] - n / 2) / 1024.0  # ~30 km per unit
    z = 0.9 * spectral_field((n, n), rng.uniform(3.0, 3.6), rng)
    for _ in range(2):
        ang = rng.uniform(0, np.pi)
        u = np.cos(ang) * xx + np.sin(ang) * yy
        v = -np.sin(ang) * xx + np.cos(ang) * yy + rng.uniform(-0.2, 0.2)
        wander = 0.08 * np.sin(2 * np.pi * (u * rng.uniform(1, 2.5) + rng.uniform(0, 1)))
        z += rng.uniform(0.8, 1.3) * np.sqrt(np.abs(v - wander) / 0.5 + 0.02)
    lo, hi = np.percentile(z, [1, 99])
    relief = rng.uniform(900.0, 1500.0)
    dem = rng.uniform(3300.0, 3900.0) + relief * (z - lo) / (hi - lo)
    slope, aspect = horn_slope_aspect(dem, FINE_M)
    northness = np.cos(aspect) * np.sin(slope)
    floor = ndimage.gaussian_filter(ndimage.minimum_filter(dem, size=41, mode="nearest"), 8, mode="nearest")
    hav = np.maximum(dem - floor, 0.0)  # height above the local valley floor (m)
    zk = (dem - 4000.0) / 1000.0

    # ---------------------------------------------------------------- land cover (not given)
    f1, f2 = spectral_field((n, n), 3.2, rng), spectral_field((n, n), 3.0, rng)
    wet = (hav < 70) & (np.degrees(slope) < 12) & (f1 > -0.2)
    scree = ~wet & ((np.degrees(slope) > 28 + 6 * f2) | (zk > 0.75 + 0.25 * f1))
    degraded = ~wet & ~scree & (f2 > 0.6)
    lc = np.zeros((n, n), np.int8)  # 0 meadow
    lc[wet], lc[scree], lc[degraded] = 1, 2, 3
    ndvi_class = np.array([0.55, 0.62, 0.08, 0.28])[lc]
    ndvi = ndvi_class - 0.10 * zk * (lc == 0) + 0.05 * spectral_field((n, n), 2.5, rng)
    ndvi = np.clip(ndvi, 0.0, 0.9)
    lc_offset = np.array([0.0, -2.8, 2.5, 1.4])  # K at full season, wetland cool, scree warm

    # ---------------------------------------------------------------- truth per composite
    persistent = spectral_field((n, n), 2.4, rng, min_period_px=3.0)
    snow_noise = spectral_field((n, n), 3.0, rng)
    gradient = rng.normal(0, 0.8, 2)
    explained = np.empty((len(DOYS), n, n))
    unexplained = np.empty((len(DOYS), n, n))
    snow_frac = []
    for b, doy in enumerate(DOYS):
        s = math.sin(math.pi * (doy - 120) / 180.0)  # season strength 0.5..1
        el, az = sun_position(doy)
        cos_i = np.cos(np.pi / 2 - el) * np.cos(slope) + np.sin(np.pi / 2 - el) * np.sin(slope) * np.cos(az - aspect)
        cos_i = np.clip(cos_i, 0, None)
        t = (
            4.0
            + 16.0 * s
            + rng.normal(0, 0.7)
            + gradient[0] * xx
            + gradient[1] * yy
            - (5.5 + 2.5 * s) * zk
            + 0.8 * np.maximum(-zk, 0) ** 2  # lapse rate steepens in the low valleys
            + (5.0 + 7.0 * s) * (cos_i - 0.8)
            - (3.0 + 5.0 * s) * (ndvi - 0.4)
            + s * lc_offset[lc]
            - (3.2 - 2.2 * s) * np.exp(-hav / 45.0)  # cold-air pooling
        )
        snowline = 4350.0 + 1100.0 * (s - 0.5) - 260.0 * northness - 60.0 * snow_noise
        snow = 1.0 / (1.0 + np.exp(-(dem - snowline) / 20.0))
        snow_frac.append(float(snow[inner].mean()))
        t_snow = -1.0 + 2.0 * cos_i
        explained[b] = (1 - snow) * t + snow * np.minimum(t, t_snow)
        unexplained[b] = 0.45 * persistent + 0.35 * spectral_field((n, n), 2.6, rng, min_period_px=3.0)
    truth = explained + unexplained

    # ---------------------------------------------------------------- observation
    sensor = Sensor(fine, coarse, pad)
    rad = (truth + KELVIN) ** 4
    cloud_masks = []
    for b in range(len(DOYS)):
        c = spectral_field((n, n), 3.4, rng)
        thr = np.quantile(c, 0.85 + 0.1 * rng.uniform())
        thin = np.clip((c - (thr - 0.3)) / 0.3, 0, 1) * (c < thr)  # thin, undetected cloud at edges
        rad[b] = ((truth[b] - 2.0 * thin) + KELVIN) ** 4
        cloud_masks.append(c >= thr)
    obs_rad = sensor(rad)
    cloud_frac = sensor(np.stack(cloud_masks).astype(float))
    obs = _to_degc(obs_rad) + rng.normal(0, NOISE_K, obs_rad.shape)
    obs[cloud_frac > 0.25] = np.nan

    # ---------------------------------------------------------------- oracle (irreducible floor)
    resid = obs - _to_degc(sensor((explained + KELVIN) ** 4))
    rows, cols = fine_in_coarse(fine, coarse)
    oracle = explained[(slice(None), *inner)] + bilinear(resid, rows, cols)
    return {
        "dem": dem[inner].astype("float32"),
        "ndvi": (ndvi[inner] + rng.normal(0, 0.02, (size, size))).astype("float32"),
        "obs": obs.astype("float32"),
        "truth": truth[(slice(None), *inner)].astype("float32"),
        "explained": explained[(slice(None), *inner)].astype("float32"),
        "oracle": oracle.astype("float32"),
        "fine_grid": fine,
        "coarse_grid": coarse,
        "kind": kind,
        "seed": seed,
        "size": size,
        "doys": list(DOYS),
        "snow_frac": snow_frac,
        "landcover_frac": [float(np.mean(lc[inner] == k)) for k in range(4)],
    }
