"""The local engine's seasons: which composites make the thaw and the freezing season, which
pixels have enough of them, and the 30 m DDT / DDF / clear-sky fraction computed from them.

Split in two so the in-memory reference (:mod:`gee_alt.engines.local.engine`) and the tiled
engine (:mod:`gee_alt.engines.local.tiled`) share every line of arithmetic:

- :func:`plan_season` works on the coarse (1 km) composites of a year (small; a coarse task):
  gap filling from the multi-year climatology anomaly, the thaw-season and freezing-half
  selections, the per-pixel validity rule (``n_valid >= min_valid_fraction x composites``, the
  EE engine's rule), the clear-sky fraction, the thaw-progress curve;
- :func:`fine_products` works on any window of the 30 m LST (a tile or the whole grid): DDT and
  its spread over the thaw season, masked where the season is too sparse; the freezing
  degree-days of the year's two halves (before / from 07-01); ``n_obs``; the clear-sky fraction.

The freezing index of year Y (the winter before its thaw season) is the autumn half of Y−1 plus
the spring half of Y (:func:`freezing_season_ddf`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from gee_alt.errors import GeeAltError
from gee_alt.science.nanstats import nanmedian_first_axis
from gee_alt.science.resample import interpolate
from gee_alt.science.thaw import (
    before_split,
    ddf_from_composites,
    ddt_fraction_by_doy,
    ddt_from_composites,
    ddt_spread,
    enough_valid,
    fill_from_climatology,
    in_season,
)


def composite_key(comp) -> tuple:
    """The calendar of a year's composites (start MM-DD, length): years sharing it share a climatology."""
    return tuple((d.strftime("%m-%d"), int(n)) for d, n in zip(comp.start_dates, comp.days, strict=True))


def lst_climatology(layout, years: list[int]) -> dict[tuple, np.ndarray | None]:
    """Per-pixel multi-year median of each coarse LST composite (°C), one per composite calendar
    (None where only one year has that calendar)."""
    groups: dict[tuple, list[np.ndarray]] = {}
    for y in years:
        comp = layout.modis_lst(y)
        groups.setdefault(composite_key(comp), []).append(comp.raster.data)
    out = {}
    for key, stacks in groups.items():  # composites never observed: NaN
        out[key] = nanmedian_first_axis(np.stack(stacks)) if len(stacks) > 1 else None
    return out


@dataclass
class SeasonPlan:
    """A year's coarse-scale season decisions (all on the LST grid ``cgrid``)."""

    filled: np.ndarray  # (composite, cy, cx) °C, gaps filled from the climatology anomaly
    days: np.ndarray  # (composite,) days per composite
    season: np.ndarray  # (composite,) bool: in the thaw season
    spring: np.ndarray  # (composite,) bool: middle day before 07-01
    has_winter: bool  # composites of the cold season on both sides of the thaw season
    n_valid: np.ndarray  # (cy, cx) valid composites in the thaw season
    ok_thaw: np.ndarray  # (cy, cx) bool: enough valid thaw-season composites
    ok_spring: np.ndarray  # (cy, cx) bool
    ok_autumn: np.ndarray  # (cy, cx) bool
    clear: np.ndarray  # (cy, cx) share of the year's composites with a clear-sky value
    fraction_by_doy: np.ndarray  # (366,) thaw progress (area median)
    season_label: str  # "MM-DD to MM-DD"
    cgrid: dict


def plan_season(comp, climatology, params, file_name: str = "") -> SeasonPlan:
    """The coarse season decisions for a year's composites ``comp`` (:class:`LstComposites`)."""
    raw = comp.raster.data
    filled, _ = fill_from_climatology(raw, climatology)
    season = in_season(comp.start_dates, comp.days, params.thaw_start, params.thaw_end)
    if not season.any():
        raise GeeAltError(f"{file_name}: no composite in the thaw season {params.thaw_start} to {params.thaw_end}")
    valid = np.isfinite(raw)
    n_valid = valid[season].sum(axis=0)
    spring = before_split(comp.start_dates, comp.days)
    has_winter = bool((spring & ~season).any() and (~spring & ~season).any())
    first = comp.start_dates[int(np.argmax(season))]
    last = int(len(season) - 1 - np.argmax(season[::-1]))
    end = comp.start_dates[last] + dt.timedelta(days=float(comp.days[last]) - 1)
    frac_mpf = float(params.min_valid_fraction)
    return SeasonPlan(
        filled=filled,
        days=np.asarray(comp.days),
        season=season,
        spring=spring,
        has_winter=has_winter,
        n_valid=n_valid,
        ok_thaw=enough_valid(n_valid, int(season.sum()), frac_mpf),
        ok_spring=enough_valid(valid[spring].sum(axis=0), int(spring.sum()), frac_mpf),
        ok_autumn=enough_valid(valid[~spring].sum(axis=0), int((~spring).sum()), frac_mpf),
        clear=valid.sum(axis=0) / max(raw.shape[0], 1),
        fraction_by_doy=ddt_fraction_by_doy(
            filled[season], [d for d, k in zip(comp.start_dates, season, strict=True) if k], comp.days[season]
        ),
        season_label=f"{first.strftime('%m-%d')} to {end.strftime('%m-%d')}",
        cgrid=comp.raster.grid,
    )


def _to_fine(coarse: np.ndarray, plan: SeasonPlan, grid, window) -> np.ndarray:
    return interpolate(np.asarray(coarse, "float64"), plan.cgrid, grid, "nearest", window=window)


def _mask_fine(mask: np.ndarray, plan: SeasonPlan, grid, window) -> np.ndarray:
    return np.nan_to_num(_to_fine(np.where(mask, 1.0, 0.0), plan, grid, window), nan=0.0) > 0.5


#: Rows of a window summed over the composites at a time (float64 strips that stay in the CPU cache).
ROW_STRIP = 16


def _by_rows(fn, lst30: np.ndarray, sel: np.ndarray, *args) -> np.ndarray:
    """``fn(lst30[sel], *args)`` for a per-pixel sum over composites ``fn`` (:mod:`gee_alt.science.thaw`),
    computed on strips of :data:`ROW_STRIP` rows (each pixel's sum is the same arithmetic: same bits)."""
    h = lst30.shape[1]
    return np.concatenate([fn(lst30[sel, r0 : r0 + ROW_STRIP], *args) for r0 in range(0, h, ROW_STRIP)], axis=0)


def fine_products(
    lst30: np.ndarray, oob_rmse: np.ndarray, plan: SeasonPlan, grid, window=None
) -> dict[str, np.ndarray]:
    """30 m products of a window (``window=None``: the whole grid) of the year's sharpened LST
    ``lst30`` (composite, y, x; °C): ``ddt``, ``ddt_sd`` (°C·day, NaN where the thaw season is
    too sparse), ``n_obs``, ``clear`` (1), ``ddf_spring``/``ddf_autumn`` (°C·day; NaN without a
    cold season or where too sparse). All float32."""
    s = plan.season
    ok = _mask_fine(plan.ok_thaw, plan, grid, window)
    out = {
        "ddt": np.where(ok, _by_rows(ddt_from_composites, lst30, s, plan.days[s]), np.nan),
        "ddt_sd": np.where(ok, _by_rows(ddt_spread, lst30, s, plan.days[s], np.asarray(oob_rmse)[s]), np.nan),
        "n_obs": np.nan_to_num(
            _to_fine(np.where(plan.n_valid > 0, plan.n_valid, np.nan), plan, grid, window), nan=0
        ).astype("int16"),
        "clear": _to_fine(plan.clear, plan, grid, window),
    }
    for key, sel, ok_c in (("ddf_spring", plan.spring, plan.ok_spring), ("ddf_autumn", ~plan.spring, plan.ok_autumn)):
        if not (plan.has_winter and sel.any()):
            out[key] = np.full(out["ddt"].shape, np.nan)
            continue
        okf = _mask_fine(ok_c, plan, grid, window)
        out[key] = np.where(okf, _by_rows(ddf_from_composites, lst30, sel, plan.days[sel]), np.nan)
    return {k: (v if k == "n_obs" else np.asarray(v, "float32")) for k, v in out.items()}


def freezing_season_ddf(spring: np.ndarray, autumn_before: np.ndarray | None, autumn_same: np.ndarray) -> np.ndarray:
    """DDF (°C·day) of the winter before year Y's thaw season: the autumn half (from 07-01) of
    Y−1 plus the spring half of Y; without Y−1 (the run's first year) Y's own autumn stands in."""
    autumn = autumn_before if autumn_before is not None else autumn_same
    return (np.asarray(autumn, "float32") + np.asarray(spring, "float32")).astype("float32")
