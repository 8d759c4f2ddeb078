"""Daily skin and ground temperature, snow, thaw and permafrost of the realistic world.

**Skin temperature** (all-sky daily mean, °C) at pixel ``p`` on day ``d`` is a sum of terms, each a
spatial field times a daily coefficient (:data:`BASIS`), minus cloud cooling:

    T(p, d) = t_ref(d) + large-scale gradient - lapse(d)·z + exposure_m(p)·gain(d)   (12 months)
              - vegetation and soil-moisture cooling + cold-air pooling (TPI) + NDVI×z
              + spoil warming + unexplained micro-climate + soil wetting after rain (k patterns)
              - kappa(d)·cloud(p, d)

Under snow (from the autumn onset to the spring melt-out, per pixel) the skin is at most
-1.5 °C. The **ground surface** is insulated under snow, stays at 0 °C through the zero curtain
after melt-out (longer where the soil is wet), and then follows the skin with a thawing
n-factor set by vegetation and the organic layer.

**Thaw** follows the two-layer Stefan solution (organic layer over mineral soil, quasi-steady
conduction through the thawed layers; latent heat of the pore ice): ALT is not E·√DDT of any
one field. **Permafrost** exists where the mean annual ground temperature (ground surface plus
thermal offset) is below 0 °C; it warms with the climate and under spoil.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gee_alt.demo.realistic.climate import YearWeather, summer_weight
from gee_alt.demo.realistic.terrain import MONTH_MID_DOY

LATENT_HEAT_J_PER_M3 = 3.34e8  # fusion heat of water (334 kJ/kg) x 1000 kg/m3
SNOW_SKIN_MAX_DEGC = -1.5
#: fixed-point quanta of the daily pass's linear combination (see :func:`exact_lincomb`)
BASIS_QUANTUM = 2.0**-24
COEF_QUANTUM = 2.0**-20
#: bound on sum_k |coef_k| |basis_k| (°C) below which every partial sum is exact in float64
EXACT_SUM_BOUND = 2.0**53 * BASIS_QUANTUM * COEF_QUANTUM
CLIMATE_OFFSET_DEGC = 1.8  # level of the scene's climate: puts the lower permafrost limit at ~3600-3750 m


def basis_names(n_wetting: int) -> list[str]:
    """The spatial fields of the skin-temperature model, in order."""
    return [
        "one",
        "x",
        "y",
        "z_km",
        *[f"exposure_{m + 1:02d}" for m in range(12)],
        "ndvi",
        "theta",
        "tpi",
        "ndvi_z",
        "spoil",
        "unexplained",
        *[f"wetting_{j}" for j in range(n_wetting)],
    ]


def month_weights(doy: np.ndarray) -> np.ndarray:
    """``(day, 12)`` linear interpolation weights between mid-month days (periodic)."""
    d = np.asarray(doy, "float64")
    mids = np.r_[MONTH_MID_DOY[-1] - 365, MONTH_MID_DOY, MONTH_MID_DOY[0] + 365].astype("float64")
    w = np.zeros((len(d), 12))
    k = np.searchsorted(mids, d, side="right") - 1
    frac = (d - mids[k]) / (mids[k + 1] - mids[k])
    for i, (kk, f) in enumerate(zip(k, frac, strict=True)):
        w[i, (kk - 1) % 12] += 1 - f
        w[i, kk % 12] += f
    return w


def cloud_cooling(doy: np.ndarray) -> np.ndarray:
    """kappa(d): cooling of the daily-mean skin per unit cloud fraction (°C); larger in summer."""
    return 3.0 * (0.3 + 0.7 * summer_weight(doy))


def cooling_blocks(cloud_blocks: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """``(day, block)`` cloud cooling of the daily-mean skin (°C)."""
    return (cloud_cooling(doy)[:, None] * cloud_blocks).astype("float32")


def daily_coefficients(w: YearWeather) -> np.ndarray:
    """``(day, K)`` coefficients of :func:`basis_names` for the weather ``w``."""
    s = summer_weight(w.doy)
    n_w = w.wetting.shape[1]
    gain = (1.5 + 1.2 * (1 - s)) * (1 - 0.6 * w.cloud)
    cols = [
        w.t_ref_degc + CLIMATE_OFFSET_DEGC,
        w.gradient[:, 0],
        w.gradient[:, 1],
        -w.lapse_degc_per_km,
        *(month_weights(w.doy) * gain[:, None]).T,
        -(0.8 + 3.5 * s),
        -(1.0 + 5.0 * s),
        0.2 + 1.2 * (1 - s),
        3.0 * s,
        1.0 + 2.5 * s,
        0.35 + 0.25 * s,
        *(-1.2 * w.wetting.T),
    ]
    out = np.stack(cols, axis=1)
    assert out.shape[1] == len(basis_names(n_w))
    return out


@dataclass
class SnowSeason:
    """Per-pixel snow timing of one year (day of year, float): snow-free from ``melt_doy`` until
    ``onset_doy``; the ground stays at 0 °C until ``thaw_start_doy`` (zero curtain)."""

    melt_doy: np.ndarray
    onset_doy: np.ndarray
    thaw_start_doy: np.ndarray


def snow_season(
    z_km: np.ndarray,
    exposure_apr: np.ndarray,
    tpi_m: np.ndarray,
    theta: np.ndarray,
    noise: tuple[np.ndarray, np.ndarray],
    year_melt: float,
    year_onset: float,
) -> SnowSeason:
    """Snow melts later high up and on shaded slopes, earlier on wind-swept ridges; it returns
    earlier high up. The zero curtain lasts 3-16 days, longer on wet soil."""
    ridge = np.clip((tpi_m - 15.0) / 20.0, 0, 1)
    melt = year_melt + 30.0 * z_km - 35.0 * (exposure_apr - 1.0) - 15.0 * ridge + 5.0 * noise[0]
    onset = year_onset - 25.0 * z_km + 12.0 * ridge + 4.0 * noise[1]
    return SnowSeason(melt.astype("float32"), onset.astype("float32"), (melt + 3.0 + 25.0 * theta).astype("float32"))


def thawing_n_factor(ndvi: np.ndarray, organic_m: np.ndarray) -> np.ndarray:
    """Ground-surface / skin thawing index ratio (0.6-1.15): vegetation and peat shade the ground."""
    return np.clip(1.05 - 0.6 * (ndvi - 0.2) - 0.5 * organic_m, 0.6, 1.15).astype("float32")


@dataclass
class DailySums:
    """What a pass over the days of a year returns for a set of pixels.

    ``skin_ddt``: Σ max(T_skin, 0) (°C·day); ``ground_thaw``: ground-surface thawing index
    (°C·day); ``ground_mean``: mean ground-surface temperature (°C, only when asked for);
    ``at_sample``: ``(day, s)`` daily skin temperature at the sampled pixels; ``thaw_at_sites``:
    ``(day, n)`` daily ground thawing increments at the site pixels (°C·day).
    """

    skin_ddt: np.ndarray
    ground_thaw: np.ndarray
    ground_mean: np.ndarray | None
    at_sample: np.ndarray | None
    thaw_at_sites: np.ndarray | None


@dataclass
class PixelBlocks:
    """Which cloud block each pixel is under: ``index`` (flat block id per pixel), and, for a
    block-aligned window of ``(rows, cols)`` blocks of ``size`` px, the window's block ids
    (``window``) so clouds broadcast over each block instead of being gathered per pixel."""

    index: np.ndarray
    window: np.ndarray | None = None
    rows: int = 0
    cols: int = 0
    size: int = 1

    def subset(self, pixels: np.ndarray) -> PixelBlocks:
        return PixelBlocks(self.index[pixels])

    def part_size(self, pixels: int) -> int:
        """The largest run of consecutive pixels not above ``pixels`` that :meth:`part` accepts
        (whole rows of blocks for a window; at least one row)."""
        if self.window is None:
            return max(1, pixels)
        row_px = self.size * self.size * self.cols
        return max(1, pixels // row_px) * row_px

    def part(self, p0: int, p1: int) -> PixelBlocks:
        """The pixels ``p0:p1`` (for a window: ``p0`` and ``p1`` at whole rows of blocks)."""
        if self.window is None:
            return PixelBlocks(self.index[p0:p1])
        row_px = self.size * self.size * self.cols
        r0, r1 = p0 // row_px, -(-p1 // row_px)
        return PixelBlocks(
            self.index[p0:p1], self.window[r0 * self.cols : r1 * self.cols], r1 - r0, self.cols, self.size
        )

    def subtract(self, t: np.ndarray, cooling: np.ndarray) -> None:
        """``t`` ``(day, pixel)`` -= ``cooling`` ``(day, block)`` under each pixel (in place)."""
        if self.window is None:
            t -= cooling[:, self.index]
            return
        c, b = t.shape[0], self.size
        view = t.reshape(c, self.rows, b, self.cols, b)
        view -= cooling[:, self.window].reshape(c, self.rows, 1, self.cols, 1)


def quantize(a: np.ndarray, quantum: float) -> np.ndarray:
    """``a`` rounded to a multiple of ``quantum`` (a power of two), as float64."""
    q = np.rint(np.asarray(a, "float64") / quantum)
    q *= quantum
    return q


def exact_sum_bound(coef_q: np.ndarray, basis: np.ndarray) -> None:
    """Raise ``ValueError`` unless the daily pass's partial sums are exact (see :func:`exact_lincomb`)."""
    bound = float(np.abs(coef_q).max(axis=0, initial=0) @ np.abs(basis).max(axis=1, initial=0)) if basis.size else 0.0
    if not bound < EXACT_SUM_BOUND:
        raise ValueError(
            f"daily pass: sum of |coef| |basis| {bound:.0f} degC exceeds the exact bound {EXACT_SUM_BOUND:.0f}"
        )


def exact_lincomb(coef_q: np.ndarray, basis_q: np.ndarray, out64: np.ndarray, out: np.ndarray) -> None:
    """``out`` (float32) = ``coef_q @ basis_q`` computed so that every pixel gets the same bits
    wherever it is and whatever else is in the call.

    BLAS kernels accumulate in an order (and with FMA or not) that depends on the matrix shape
    and on a column's place in it (edge kernels, small-matrix paths, CPU model), so a float32
    ``matmul`` gives a pixel different last bits in a tile and in the whole window. Here both
    operands are on fixed-point grids (``COEF_QUANTUM``, ``BASIS_QUANTUM``; products < 2^50
    quanta) and the sums stay below 2^53 quanta (:func:`exact_sum_bound`), so every product
    and partial sum in float64 is exact, whatever the order; the rounding to float32 is then
    the same everywhere.
    """
    np.matmul(coef_q, basis_q, out=out64)
    out[...] = out64


def daily_pass(
    basis: np.ndarray,
    coef: np.ndarray,
    cooling_blocks: np.ndarray,
    blocks: PixelBlocks,
    snow: SnowSeason,
    n_factor: np.ndarray,
    *,
    sample: np.ndarray | None = None,
    sites: np.ndarray | None = None,
    ground_mean: bool = False,
    chunk_days: int = 16,
    pixel_block: int = 8192,
) -> DailySums:
    """Evaluate every day of the year for the pixels of ``basis`` (``(K, n)``) and sum.

    ``cooling_blocks`` ``(day, block)`` is the cloud cooling of the daily-mean skin (°C) under
    each block. The pixels are taken ``pixel_block`` at a time (rounded to whole rows of cloud
    blocks), so that their basis stays in the CPU cache while the days go by, ``chunk_days`` days
    at a time; every pixel's arithmetic (and its sums, chunk by chunk) is the same whatever block
    it is in. A chunk in which no pixel of the block is above 0 °C adds nothing to the thawing
    sums and is skipped after the sampled pixels are read.
    """
    n_days = coef.shape[0]
    n = basis.shape[1]
    skin_ddt = np.zeros(n, "float64")
    ground_thaw = np.zeros(n, "float64")
    ground_sum = np.zeros(n, "float64") if ground_mean else None
    at_sample = np.empty((n_days, len(sample)), "float32") if sample is not None else None
    thaw_sites = np.zeros((n_days, len(sites)), "float32") if sites is not None else None
    sample = None if sample is None else np.asarray(sample)
    sites = None if sites is None else np.asarray(sites)
    coef_q = quantize(coef.astype("float32"), COEF_QUANTUM)
    exact_sum_bound(coef_q, basis)
    cool32 = cooling_blocks.astype("float32")
    pb = min(n, blocks.part_size(pixel_block)) if n else 1
    # buffers reused by every block and chunk (large temporaries cost page faults)
    t_buf = np.empty((chunk_days, pb), "float32")
    t64_buf = np.empty((chunk_days, pb), "float64")
    w_buf = np.empty((chunk_days, pb), "float32")
    snowy_buf = np.empty((chunk_days, pb), bool)
    b_buf = np.empty((chunk_days, pb), bool)
    for p0 in range(0, n, pb):
        p1 = min(n, p0 + pb)
        px, m = slice(p0, p1), p1 - p0
        part = blocks.part(p0, p1)
        part_basis = quantize(basis[:, px], BASIS_QUANTUM)
        melt, onset, thaw_start, nf = snow.melt_doy[px], snow.onset_doy[px], snow.thaw_start_doy[px], n_factor[px]
        if sample is not None:
            s_here = np.nonzero((sample >= p0) & (sample < p1))[0]
            s_px = sample[s_here] - p0
        if sites is not None:
            k_here = np.nonzero((sites >= p0) & (sites < p1))[0]
            k_px = sites[k_here] - p0
        for d0 in range(0, n_days, chunk_days):
            d1 = min(n_days, d0 + chunk_days)
            c = d1 - d0
            doy = np.arange(d0 + 1, d1 + 1, dtype="float32")[:, None]
            t, warm, snowy, b = t_buf[:c, :m], w_buf[:c, :m], snowy_buf[:c, :m], b_buf[:c, :m]
            exact_lincomb(coef_q[d0:d1], part_basis, t64_buf[:c, :m], t)
            part.subtract(t, cool32[d0:d1])
            if sample is not None and s_here.size:
                ts = t[:, s_px]
                snowy_s = (doy < melt[s_px]) | (doy >= onset[s_px])
                at_sample[d0:d1, s_here] = np.where(snowy_s, np.minimum(ts, SNOW_SKIN_MAX_DEGC), ts)
            if not ground_mean and t.max() <= 0:
                continue
            np.less(doy, melt, out=snowy)
            np.greater_equal(doy, onset, out=b)
            snowy |= b
            np.minimum(t, SNOW_SKIN_MAX_DEGC, out=t, where=snowy)  # t is now the skin temperature
            np.maximum(t, 0, out=warm)
            skin_ddt[px] += warm.sum(axis=0, dtype="float64")
            np.greater_equal(doy, thaw_start, out=b)
            b &= ~snowy  # thawing: after the zero curtain and before the snow returns
            warm *= nf
            warm *= b
            ground_thaw[px] += warm.sum(axis=0, dtype="float64")
            if ground_sum is not None:
                g = np.where(snowy, 0.75 * t, np.where(b, np.where(t > 0, warm, t), 0.0))
                ground_sum[px] += g.sum(axis=0, dtype="float64")
            if sites is not None and k_here.size:
                thaw_sites[d0:d1, k_here] = warm[:, k_px]
    return DailySums(
        skin_ddt.astype("float32"),
        ground_thaw.astype("float32"),
        None if ground_sum is None else (ground_sum / n_days).astype("float32"),
        at_sample,
        thaw_sites,
    )


def organic_properties(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moisture (m³/m³) and thawed conductivity (W m⁻¹ K⁻¹) of the organic layer."""
    theta_org = np.minimum(0.85, theta + 0.35)
    return theta_org, 0.15 + 0.45 * theta_org


def thaw_depth_m(
    thaw_index_degc_days: np.ndarray,
    organic_m: np.ndarray,
    theta: np.ndarray,
    k_mineral: np.ndarray,
) -> np.ndarray:
    """Thaw depth (m) after a ground-surface thawing index (°C·day): two-layer Stefan solution.

    Through the organic layer (thickness h, conductivity k_o, latent heat L_o) the front reaches
    ``sqrt(2 k_o I / L_o)``; once it is through (``I_o = L_o h² / (2 k_o)``), the mineral soil
    thaws with the organic layer as a series resistance:
    ``z = h + sqrt((k_m h / k_o)² + 2 k_m (I - I_o) / L_m) - k_m h / k_o``. Capped at 8 m.
    """
    seconds = np.maximum(np.asarray(thaw_index_degc_days, "float64"), 0.0) * 86400.0
    theta_org, k_org = organic_properties(theta.astype("float64"))
    h = organic_m.astype("float64")
    lat_o = LATENT_HEAT_J_PER_M3 * theta_org
    lat_m = LATENT_HEAT_J_PER_M3 * theta.astype("float64")
    k_m = k_mineral.astype("float64")
    i_org = lat_o * h**2 / (2 * k_org)
    in_org = np.sqrt(2 * k_org * seconds / lat_o)
    r = k_m * h / k_org
    in_min = h + np.sqrt(r**2 + 2 * k_m * np.maximum(seconds - i_org, 0) / lat_m) - r
    return np.minimum(np.where(seconds <= i_org, in_org, in_min), 8.0).astype("float32")


def thermal_offset_degc(theta: np.ndarray) -> np.ndarray:
    """Mean annual temperature at the permafrost table minus at the ground surface (°C, <= 0):
    frozen soil conducts better than thawed, more so when wet."""
    return (-(0.15 + 1.8 * (theta - 0.06))).astype("float32")
