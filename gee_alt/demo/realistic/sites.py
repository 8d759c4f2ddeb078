"""Where a field team would measure ALT in the realistic world, and what they would record.

Most boreholes and probe transects are near the valley-floor road (access), some on slopes and
a few on the mine's spoil, drilled in the first years after the digging and kept where the
hole found permafrost under the spoil (by :data:`SPOIL_SURVEY_YEAR`; the drilling record,
``permafrost_boreholes.csv``, reports what each hole found in the year it was drilled, with
the exploration holes that found none). Boreholes log the annual
maximum thaw (dated when the thaw stopped) with thermistor interpolation error; probes are read
on a summer campaign day (often before the end of thaw) and cannot go deeper than 3 m
(censored). Point measurements differ persistently from the 30 m pixel (micro-topography), and
GPS positions are off by a few metres. No column is derived from the truth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter

from gee_alt.demo.fields import rng_for

PROBE_MAX_M = 3.0
#: the last year a spoil monitoring hole was drilled; spoil sites are where their hole found permafrost
SPOIL_SURVEY_YEAR = 2011
INSITU_COLUMNS = ["site_id", "lon", "lat", "year", "alt_m", "censored", "method", "source", "obs_date", "notes"]


@dataclass
class FieldSites:
    """Site pixels on the window (``row``, ``col``), their ``kind`` (access/slope/spoil),
    ``method`` (borehole/probe), persistent point-vs-pixel factor, first year and GPS offsets (m)."""

    row: np.ndarray
    col: np.ndarray
    kind: np.ndarray
    method: np.ndarray
    point_factor: np.ndarray
    first_year: np.ndarray
    n_years: np.ndarray
    gps_offset_m: np.ndarray


def road_distance_px(z_m: np.ndarray) -> np.ndarray:
    """Distance (px) to the valley-floor road: the lowest point of each column of the smoothed DEM."""
    zs = gaussian_filter(z_m.astype("float64"), 6)
    road = np.zeros(z_m.shape, bool)
    road[np.argmin(zs, axis=0), np.arange(z_m.shape[1])] = True
    return distance_transform_edt(~road)


def place_sites(
    z_m: np.ndarray,
    slope_deg: np.ndarray,
    permafrost_found: np.ndarray,
    mine_disturbed_year: np.ndarray,
    seed: int,
    n_access: int = 40,
    n_slope: int = 8,
    n_spoil: int = 4,
    spoil_found: np.ndarray | None = None,
) -> FieldSites:
    """Choose site pixels on the window (see the module docstring). ``permafrost_found``: the
    climate had permafrost where the access and slope sites were searched for; ``spoil_found``
    (bool, window): a hole drilled on the spoil in :data:`SPOIL_SURVEY_YEAR` found permafrost
    (None: anywhere dug by 2010). Spoil sites start between the year after their pixel was dug and
    that year, so each hole found permafrost when it was drilled (ground only warms here)."""
    rng = rng_for(seed, 501)
    n = z_m.shape[0]
    edge = max(6, n // 40)
    inside = np.zeros(z_m.shape, bool)
    inside[edge:-edge, edge:-edge] = True
    ok = inside & permafrost_found & (mine_disturbed_year == 0)
    dist_m = road_distance_px(z_m) * 30.0
    w_access = np.where(ok & (slope_deg < 15), np.exp(-dist_m / 500.0), 0.0).ravel()
    w_slope = np.where(ok & (slope_deg >= 10) & (slope_deg < 32), 1.0, 0.0).ravel()
    spoil = inside & (mine_disturbed_year > 0) & (mine_disturbed_year < SPOIL_SURVEY_YEAR)
    if spoil_found is not None:
        spoil &= np.asarray(spoil_found, bool)
    w_spoil = spoil.ravel().astype("float64")
    picks, kinds = [], []
    for w, k, kind in ((w_access, n_access, "access"), (w_slope, n_slope, "slope"), (w_spoil, n_spoil, "spoil")):
        w = w.copy()
        if picks:
            w[np.asarray(picks, int)] = 0.0
        if w.sum() <= 0:
            continue
        got = rng.choice(w.size, size=min(k, int((w > 0).sum())), replace=False, p=w / w.sum())
        picks += got.tolist()
        kinds += [kind] * len(got)
    flat = np.asarray(picks, int)
    kind = np.asarray(kinds)
    m = len(flat)
    row, col = flat // z_m.shape[1], flat % z_m.shape[1]
    method = np.where(rng.uniform(size=m) < 0.35, "probe", "borehole")
    first = rng.integers(2000, 2017, size=m)
    dist_year = mine_disturbed_year[row, col]
    first = np.where(kind == "spoil", np.clip(first, dist_year + 1, SPOIL_SURVEY_YEAR), first)
    return FieldSites(
        row=row,
        col=col,
        kind=kind,
        method=method,
        point_factor=np.exp(0.08 * rng.standard_normal(m)),
        first_year=first,
        n_years=rng.integers(3, 13, size=m),
        gps_offset_m=8.0 * rng.standard_normal((m, 2)),
    )


def site_records(
    sites: FieldSites,
    lonlat: tuple[np.ndarray, np.ndarray],
    depth_by_year: dict[int, np.ndarray],
    thaw_end_by_year: dict[int, np.ndarray],
    campaign_depth: dict[int, dict[int, tuple[float, str]]],
    seed: int,
) -> list[dict]:
    """The in-situ table rows. ``depth_by_year[Y]``: true end-of-season thaw depth (m) at each
    site (NaN without permafrost); ``thaw_end_by_year[Y]``: day index when the thaw stopped;
    ``campaign_depth[Y][i]``: (depth, ISO date) a probe read on its campaign day."""
    rng = rng_for(seed, 502)
    recs = []
    lon, lat = lonlat
    years_all = sorted(depth_by_year)
    for i in range(len(sites.row)):
        ys = [y for y in years_all if sites.first_year[i] <= y < sites.first_year[i] + sites.n_years[i]]
        ys = [y for y in ys if rng.uniform() > 0.2]
        for y in ys:
            true = float(depth_by_year[y][i])
            if not np.isfinite(true):
                continue  # drilling found no permafrost this year: nothing to report
            if sites.method[i] == "probe":
                depth, date = campaign_depth[y][i]
                val = depth * sites.point_factor[i] + rng.normal(0, 0.05)
            else:
                date = (dt.date(y, 1, 1) + dt.timedelta(days=int(thaw_end_by_year[y][i]))).isoformat()
                val = true * sites.point_factor[i] + rng.uniform(-0.15, 0.15) + rng.normal(0, 0.04)
            val = max(val, 0.05)
            censored = ""
            if sites.method[i] == "probe" and val > PROBE_MAX_M:
                val, censored = PROBE_MAX_M, ">"
            recs.append(
                {
                    "site_id": f"SYN{i + 1:03d}",
                    "lon": round(float(lon[i]), 6),
                    "lat": round(float(lat[i]), 6),
                    "year": int(y),
                    "alt_m": round(val, 2),
                    "censored": censored,
                    "method": str(sites.method[i]),
                    "source": "synthetic demo (gee-alt realistic world)",
                    "obs_date": date,
                    "notes": "probe campaign" if sites.method[i] == "probe" else "thermistor cable, annual maximum",
                }
            )
    return recs


BOREHOLE_COLUMNS = ["site_id", "lon", "lat", "year", "permafrost", "source"]


@dataclass
class ExplorationHoles:
    """Drill holes that found no permafrost (see :func:`place_absence_holes`): ``row``/``col``
    window pixels, ``year`` drilled, ``gps_offset_m`` (m)."""

    row: np.ndarray
    col: np.ndarray
    year: np.ndarray
    gps_offset_m: np.ndarray


def place_absence_holes(
    z_m: np.ndarray,
    slope_deg: np.ndarray,
    permafrost_found: np.ndarray,
    mine_disturbed_year: np.ndarray,
    years: list[int],
    seed: int,
    n_access: int = 40,
    n_slope: int = 8,
) -> ExplorationHoles:
    """The holes drilled in search of the ALT sites that found no permafrost.

    :func:`place_sites` keeps the first ``n_access`` (``n_slope``) holes, drawn by its access
    (slope) weight, that found permafrost; the holes drawn by the same weights on the way that
    found none are iid from the weight restricted to pixels without permafrost found, as many as
    ``n x W_none / W_found`` (W: summed weight). Own random stream: the ALT sites are unchanged."""
    rng = rng_for(seed, 505)
    n = z_m.shape[0]
    edge = max(6, n // 40)
    inside = np.zeros(z_m.shape, bool)
    inside[edge:-edge, edge:-edge] = True
    ok = (inside & (mine_disturbed_year == 0)).ravel()
    found = np.asarray(permafrost_found, bool).ravel()
    dist_m = road_distance_px(z_m).ravel() * 30.0
    slope = np.asarray(slope_deg).ravel()
    w_access = np.where(ok & (slope < 15), np.exp(-dist_m / 500.0), 0.0)
    w_slope = np.where(ok & (slope >= 10) & (slope < 32), 1.0, 0.0)
    picks: list[int] = []
    for w, k in ((w_access, n_access), (w_slope, n_slope)):
        w_found, w_none = float(w[found].sum()), np.where(found, 0.0, w)
        if w_found <= 0 or w_none.sum() <= 0:
            continue
        m = min(int(round(k * w_none.sum() / w_found)), int((w_none > 0).sum()))
        picks += rng.choice(w.size, size=m, replace=False, p=w_none / w_none.sum()).tolist()
    flat = np.asarray(picks, int)
    m = len(flat)
    return ExplorationHoles(
        row=flat // z_m.shape[1],
        col=flat % z_m.shape[1],
        year=rng.choice(np.asarray(years, int), size=m),
        gps_offset_m=8.0 * rng.standard_normal((m, 2)),
    )


def borehole_records(
    sites: FieldSites,
    site_lonlat: tuple[np.ndarray, np.ndarray],
    holes: ExplorationHoles,
    hole_lonlat: tuple[np.ndarray, np.ndarray],
    site_found: np.ndarray,
    hole_found: np.ndarray,
) -> list[dict]:
    """The drilling record: every ALT site (access and slope sites, drilled the year its record
    starts; not the spoil monitoring holes, a separate campaign on the mine) and every exploration
    hole (the year it was drilled). ``site_found``/``hole_found`` (bool per site/hole): what the
    hole found in the year it was drilled, i.e. the truth of that year, not of the climate the
    holes were placed by (permafrost degrades over the record: a site placed where the 2000
    climate had permafrost may have none by its first year)."""
    rows = []
    for prefix, pts, (lon, lat), years, found in (
        ("SYN", sites, site_lonlat, sites.first_year, site_found),
        ("BH", holes, hole_lonlat, holes.year, hole_found),
    ):
        for i in range(len(pts.row)):
            if prefix == "SYN" and sites.kind[i] == "spoil":
                continue
            rows.append(
                {
                    "site_id": f"{prefix}{i + 1:03d}",
                    "lon": round(float(lon[i]), 6),
                    "lat": round(float(lat[i]), 6),
                    "year": int(years[i]),
                    "permafrost": "true" if found[i] else "false",
                    "source": "synthetic demo (gee-alt realistic world): drill hole",
                }
            )
    return rows
