"""Simulation: the Earth Engine engine's per-season Aqua offset against the local engine's all-years
offset (README, "Earth Engine and local engine: what still differs", row *LST daily mean*).

A record of 22 years x 35 windows x 400 pixels: a seasonal course plus year-to-year noise (the
truth), Terra = truth + 1 K noise, Aqua = truth + a seasonal offset (1.2-1.8 K) + 1 K noise, each
sensor clouded independently. Prints the merged record's error (bias, rms) per window for the
local estimator (:func:`gee_alt.science.daily_lst.aqua_offset` over all years), the EE estimator
(same season, ±2 windows, then the season's median, then 0) and Terra alone. Seeded; run:
``PYTHONPATH=. python scripts/sim_ee_aqua_offset.py``.
"""

import numpy as np

from gee_alt.science.daily_lst import aqua_offset, terra_referenced
from gee_alt.science.nanstats import nanmedian_first_axis


def ee_offset(t, a, pool=2):
    """The EE engine's offset (:func:`gee_alt.engines.ee.daily_lst.aqua_offsets`) in numpy."""
    d = a - t
    season = nanmedian_first_axis(d)
    out = []
    for k in range(d.shape[0]):
        m = nanmedian_first_axis(d[max(0, k - pool) : k + pool + 1])
        out.append(np.where(np.isfinite(m), m, np.nan_to_num(season, nan=0.0)))
    return np.stack(out)


def main(seed: int = 2026) -> None:
    rng = np.random.default_rng(seed)
    years, windows, pixels = 22, 35, 400
    course = np.linspace(-8, 14, windows)
    truth = course[None, :, None] + rng.normal(0, 1.5, (years, 1, pixels))
    offset = 1.2 + 0.6 * np.sin(np.linspace(0, np.pi, windows))[None, :, None]
    terra = truth + rng.normal(0, 1.0, truth.shape)
    aqua = truth + offset + rng.normal(0, 1.0, truth.shape)
    for cloud in (0.3, 0.6, 0.8):
        tt = np.where(rng.random(truth.shape) < cloud, np.nan, terra)
        aa = np.where(rng.random(truth.shape) < cloud, np.nan, aqua)
        off_all = aqua_offset(list(tt), list(aa))
        for label, offs in (
            ("local, all years", [off_all] * years),
            ("EE, per season", [ee_offset(tt[y], aa[y]) for y in range(years)]),
            ("Terra only", None),
        ):
            merged = tt if offs is None else np.stack([terra_referenced(tt[y], aa[y], offs[y]) for y in range(years)])
            err = merged - truth
            print(
                f"cloud {cloud:.0%} per sensor, {label:17s}: error mean {np.nanmean(err):+.3f} K, "
                f"rms {np.sqrt(np.nanmean(err**2)):.3f} K, windows with a value {np.isfinite(merged).mean():.2f}"
            )


if __name__ == "__main__":
    main()
