"""Read a run directory's products for display: layers, JSON summaries, the ALT series.

Everything here reads by the names of :mod:`gee_alt.runs` and returns plain arrays and
dicts; missing optional products come back as ``None`` so each view shows what exists.
Also the reprojection of a layer to Web Mercator for web maps.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid
from gee_alt.io import read_raster

# Layer keys → (path function, band index 0-based); trend_p is the Mann–Kendall p-value.
LAYER_KEYS = ("alt", "alt_sd", "ddt", "trend", "trend_p")


@dataclass
class Layer:
    """One 2-D display layer: ``data`` (y, x) float32 with NaN nodata, on ``grid``."""

    key: str
    data: np.ndarray
    grid: Grid
    year: int | None
    tags: dict


def layer_path(run: Path, key: str, year: int | None) -> Path:
    """Path of a layer's COG in the run directory (``year`` ignored for trend layers)."""
    run = Path(run)
    if key == "alt":
        return runs.alt_path(run, year)
    if key == "alt_sd":
        return runs.alt_sd_path(run, year)
    if key == "ddt":
        return runs.ddt_path(run, year)
    if key == "trend":
        return runs.trend_slope_path(run)
    if key == "trend_p":
        return runs.trend_p_path(run)
    raise ValueError(f"unknown layer key {key!r}; expected one of {LAYER_KEYS}")


def load_layer(run: Path, key: str, year: int | None = None) -> Layer | None:
    """The first band of a layer (DDT: band 1 = ``ddt_degc_days``), or ``None`` if absent."""
    p = layer_path(run, key, year)
    if not p.exists():
        return None
    r = read_raster(p)
    return Layer(key=key, data=r.data[0], grid=r.grid, year=year, tags=r.tags)


def pick_year(run: Path, year: int | None) -> int:
    """``year`` checked to exist in the run, or the last ALT year; :class:`GeeAltError` if none."""
    years = runs.years_of(run, "alt")
    if not years:
        raise GeeAltError(f"{run} has no alt/alt_YYYY.tif files; run the pipeline (e.g. 'gee-alt demo') first")
    if year is None:
        return years[-1]
    if int(year) not in years:
        raise GeeAltError(f"year {year} not in {run} (ALT years: {years[0]}–{years[-1]})")
    return int(year)


def load_json(run: Path, name: str) -> dict | None:
    """``RUN/name`` parsed, ``None`` when absent; :class:`GeeAltError` when not valid JSON."""
    p = Path(run) / name
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GeeAltError(f"{p} is not valid JSON: {exc.msg} (line {exc.lineno})") from None


def is_synthetic(run: Path, explicit: bool | None = None) -> bool:
    """``explicit`` if given, else True when the run's ALT/DDT COGs carry the tag ``synthetic=1``."""
    if explicit is not None:
        return bool(explicit)
    import rasterio

    for kind in ("alt", "ddt"):
        years = runs.years_of(run, kind)
        if years:
            p = runs.alt_path(run, years[-1]) if kind == "alt" else runs.ddt_path(run, years[-1])
            with rasterio.open(p) as src:
                return str(src.tags().get("synthetic", "0")).strip().lower() in ("1", "true", "yes")
    return False


def _num(v) -> float:
    """A JSON number as float; NaN for a missing value or null (JSON has no NaN)."""
    return float("nan") if v is None else float(v)


def insitu_pairs(validation: dict | None) -> dict[str, np.ndarray] | None:
    """Observed/predicted in-situ ALT (m) from ``validation.json``'s ``insitu`` list, or ``None``.

    Accepts ``insitu`` as a list of ``{site_id, year, alt_obs_m, alt_pred_m}`` or as a dict
    holding such a list under ``pairs``.
    """
    if not validation:
        return None
    rows = validation.get("insitu")
    if isinstance(rows, dict):
        rows = rows.get("pairs")
    if not rows:
        return None
    obs = np.array([_num(r.get("alt_obs_m")) for r in rows])
    pred = np.array([_num(r.get("alt_pred_m")) for r in rows])  # null: the row had no prediction
    return {
        "obs": obs,
        "pred": pred,
        "site_id": np.array([str(r.get("site_id", "")) for r in rows]),
        "year": np.array([int(r.get("year", 0)) for r in rows]),
    }


#: decoded layers a :class:`RunView` keeps (the most recently used): a report over many years
#: reads one year at a time, so its memory does not grow with the years
CACHED_LAYERS = 4


class RunView:
    """A run's display layers, decoded when asked for (the last :data:`CACHED_LAYERS` kept).

    Built on a run directory (``RunView(run)``), layers are read from their COGs; the pipeline
    hands the maps it holds (``layers={(key, year): Layer}`` in memory, or ``stacks={key: (year,
    y, x) stack}`` read a year at a time, e.g. :class:`gee_alt.io.RasterStack` on the written COGs).
    """

    def __init__(
        self,
        run: str | Path,
        layers: dict | None = None,
        years: list[int] | None = None,
        stacks: dict | None = None,
        grid: Grid | None = None,
    ):
        from collections import OrderedDict

        self.run = Path(run)
        self._layers: dict = dict(layers or {})
        self._stacks: dict = dict(stacks or {})
        self._grid = grid
        self._cache: OrderedDict = OrderedDict()
        self.years: list[int] = list(years) if years is not None else runs.years_of(self.run, "alt")

    @classmethod
    def from_maps(
        cls,
        run: str | Path,
        grid: Grid,
        years: list[int],
        alt_m,
        alt_sd_m,
        ddt_degc_days=None,
        trend_cm_per_yr=None,
        trend_p=None,
    ) -> RunView:
        """A view on ``(year, y, x)`` ALT, ALT sd and DDT maps and ``(y, x)`` trend maps: NumPy
        arrays are shown as they are; other stacks (e.g. :class:`gee_alt.io.RasterStack`) are read
        a year at a time when a layer is asked for."""
        layers, stacks = {}, {}
        for key, maps in (("alt", alt_m), ("alt_sd", alt_sd_m), ("ddt", ddt_degc_days)):
            if maps is None:
                continue
            if isinstance(maps, np.ndarray):
                for i, y in enumerate(years):
                    layers[(key, y)] = Layer(key, maps[i], grid, y, {})
            else:
                stacks[key] = maps
        for key, data in (("trend", trend_cm_per_yr), ("trend_p", trend_p)):
            if data is not None:
                layers[(key, None)] = Layer(key, data, grid, None, {})
        return cls(run, layers, years, stacks, grid)

    def layer(self, key: str, year: int | None = None) -> Layer | None:
        """The layer (see :func:`load_layer`): from memory, from a stack the view was given, or
        decoded from its COG."""
        k = (key, None if key in ("trend", "trend_p") else year)
        if k in self._layers:
            return self._layers[k]
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        if key in self._stacks and year in self.years:
            lay = Layer(key, np.asarray(self._stacks[key][self.years.index(year)]), self._grid, year, {})
        else:
            lay = load_layer(self.run, key, year)
        self._cache[k] = lay
        while len(self._cache) > CACHED_LAYERS:
            self._cache.popitem(last=False)
        return lay

    def alt_series(self, level: float = 0.95) -> dict | None:
        """See :func:`alt_series`."""
        return _alt_series(self, level)


def alt_series(run: Path, level: float = 0.95) -> dict | None:
    """Area-mean ALT (m) per year with an uncertainty band, reading one year at a time.

    The area mean of a complete map has no sampling error; its uncertainty is that of the
    pixels. The part from E is common to all pixels and does not average out, so the band is
    ``mean ± z·sd_mean`` with ``sd_mean`` the area-mean of the 1σ ALT uncertainty map: the
    band for fully correlated pixel errors, an upper bound (``ci_kind`` says so). Without
    ``alt_sd`` maps it falls back to :func:`gee_alt.science.trend.area_mean_series`'s CI with an
    effective sample size from the spatial autocorrelation.
    """
    return _alt_series(RunView(run), level)


def _alt_series(view: RunView, level: float = 0.95) -> dict | None:
    """:func:`alt_series` on a :class:`RunView`."""
    from scipy import stats

    from gee_alt.science.trend import area_mean_series, effective_sample_size

    years = view.years
    if not years:
        return None
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    out = {"years": [], "mean": [], "ci_lo": [], "ci_hi": [], "sd_mean": [], "n": [], "level": level}
    kinds = set()
    for y in years:
        a = view.layer("alt", y).data
        s = area_mean_series(a[None], [y], level=level)
        sd = view.layer("alt_sd", y)
        sd_mean = float(np.nanmean(sd.data)) if sd is not None and np.isfinite(sd.data).any() else float("nan")
        mean = s["mean"][0]
        if np.isfinite(sd_mean):
            lo, hi = mean - z * sd_mean, mean + z * sd_mean
            kinds.add("ALT uncertainty, pixel errors fully correlated (upper bound)")
        else:
            n_eff, _ = effective_sample_size(a, np.isfinite(a))
            s = area_mean_series(a[None], [y], level=level, n_eff=max(n_eff, 2.0))
            lo, hi = s["ci_lo"][0], s["ci_hi"][0]
            kinds.add("spatial CI of the mean (effective sample size)")
        out["years"].append(y)
        out["mean"].append(mean)
        out["ci_lo"].append(lo)
        out["ci_hi"].append(hi)
        out["n"].append(s["n"][0])
        out["sd_mean"].append(sd_mean)
    out["ci_kind"] = " / ".join(sorted(kinds))
    return out


def decimate(a: np.ndarray, max_px: int) -> tuple[np.ndarray, int]:
    """Block-mean ``a`` (NaN-aware) by an integer factor so no side exceeds ``max_px``; returns (array, factor)."""
    h, w = a.shape
    k = max(1, int(np.ceil(max(h, w) / max_px)))
    if k == 1:
        return a, 1
    H, W = -(-h // k) * k, -(-w // k) * k
    pad = np.full((H, W), np.nan, np.float32)
    pad[:h, :w] = a
    blocks = pad.reshape(H // k, k, W // k, k)
    cnt = np.isfinite(blocks).sum(axis=(1, 3))
    tot = np.nansum(blocks, axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan).astype(np.float32), k


def to_web_mercator(data: np.ndarray, grid: Grid, max_px: int = 2048, nearest: bool = True):
    """Reproject a layer to EPSG:3857 for web maps.

    Returns ``(array, bounds_3857, bounds_lonlat)``: the float32 array (NaN outside the data),
    its ``(left, bottom, right, top)`` in metres, and ``(south, west, north, east)`` in degrees
    — the corners Leaflet's ``ImageOverlay`` wants. A Leaflet image overlay is stretched
    linearly in Web Mercator, so the image must be in EPSG:3857 to line up (a lon/lat image
    would be off by up to a few pixels over half a degree of latitude). The output resolution
    is the input's, coarsened so no side exceeds ``max_px``. Nearest-neighbour by default so
    p-values and nodata edges are not smeared.
    """
    from pyproj import Transformer
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.warp import calculate_default_transform, reproject

    from gee_alt.grid import affine_of, bounds

    h, w = data.shape
    src_crs = CRS.from_user_input(grid["crs"])
    dst_crs = CRS.from_epsg(3857)
    left, bottom, right, top = bounds(grid)
    with warnings.catch_warnings():  # rasterio 1.4 + affine 3: "Use @ matmul" inside rasterio itself
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        transform, dw, dh = calculate_default_transform(src_crs, dst_crs, w, h, left, bottom, right, top)
    scale = max(1.0, max(dw, dh) / max_px)
    if scale > 1.0:
        from affine import Affine

        x0, y0 = transform.c, transform.f
        x1, y1 = x0 + transform.a * dw, y0 + transform.e * dh
        dw, dh = max(1, int(round(dw / scale))), max(1, int(round(dh / scale)))
        transform = Affine((x1 - x0) / dw, 0.0, x0, 0.0, (y1 - y0) / dh, y0)
    out = np.full((dh, dw), np.nan, np.float32)
    reproject(
        np.asarray(data, np.float32),
        out,
        src_transform=affine_of(grid),
        src_crs=src_crs,
        src_nodata=np.nan,
        dst_transform=transform,
        dst_crs=dst_crs,
        dst_nodata=np.nan,
        resampling=Resampling.nearest if nearest else Resampling.average,
    )
    b3857 = (transform.c, transform.f + transform.e * dh, transform.c + transform.a * dw, transform.f)
    tr = Transformer.from_crs(dst_crs, "EPSG:4326", always_xy=True)
    west, south = tr.transform(b3857[0], b3857[1])
    east, north = tr.transform(b3857[2], b3857[3])
    return out, b3857, (float(south), float(west), float(north), float(east))
