"""Report figures (matplotlib, Agg, no pyplot state): maps, the ALT series, the validation scatter.

Every function takes arrays and returns a :class:`matplotlib.figure.Figure`; :func:`png_bytes`
renders it deterministically (fixed DPI, no ``Software`` or date metadata), so the same run
gives byte-identical PNGs.
"""

from __future__ import annotations

import io
import math

import numpy as np

from gee_alt.grid import Grid, bounds
from gee_alt.viz.palettes import PRODUCTS, robust_range

DPI = 100
SYNTHETIC_LABEL = "SYNTHETIC demo scene — not a measurement"
MAX_MAP_PX = 1200


def new_figure(width_in: float, height_in: float):
    """A pyplot-free Agg figure (no global state, safe in threads and notebooks)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes: fixed DPI, no metadata that changes between runs."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _crs_info(grid: Grid) -> tuple[bool, str]:
    """(is projected in metres, short CRS name)."""
    from pyproj import CRS

    crs = CRS.from_user_input(grid["crs"])
    return bool(crs.is_projected), crs.name


def nice_length(span: float) -> float:
    """A 1-2-5 number close to ``span / 5`` (scale bar length, same units as ``span``)."""
    target = span / 5.0
    if target <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(target))
    return min((m * mag for m in (1, 2, 5, 10)), key=lambda v: abs(math.log(v / target)))


def _decimate(a: np.ndarray, max_px: int) -> np.ndarray:
    from gee_alt.viz.runview import decimate

    return decimate(np.asarray(a, np.float32), max_px)[0]


def draw_map(
    ax,
    data,
    grid: Grid,
    product: str,
    *,
    title: str,
    vrange: tuple[float, float] | None = None,
    sig_mask=None,
    scalebar: bool = True,
    north_arrow: bool = True,
    colorbar: bool = True,
):
    """Draw one map layer on ``ax`` in km of the grid CRS, with colourbar (units), scale bar, north arrow.

    ``sig_mask`` (bool, same shape): pixels marked with black dots (e.g. trend p < 0.05).
    Returns the image artist.
    """
    p = PRODUCTS[product]
    vmin, vmax = vrange or robust_range(data, product)
    left, bottom, right, top = bounds(grid)
    projected, crs_name = _crs_info(grid)
    f = 1e-3 if projected else 1.0
    extent = (left * f, right * f, bottom * f, top * f)
    im = ax.imshow(
        _decimate(data, MAX_MAP_PX),
        extent=extent,
        origin="upper",
        cmap=p.cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    ax.set_facecolor("#d9d9d9")
    ax.set_title(title, fontsize=11)
    if projected:
        ax.set_xlabel(f"Easting (km, {crs_name})", fontsize=8)
        ax.set_ylabel("Northing (km)", fontsize=8)
    else:
        ax.set_xlabel("Longitude (°)", fontsize=8)
        ax.set_ylabel("Latitude (°)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(useOffset=False, style="plain")
    if sig_mask is not None:
        _dots(ax, np.asarray(sig_mask, bool), extent)
    if colorbar:
        from mpl_toolkits.axes_grid1 import make_axes_locatable

        cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.12)
        cb = ax.figure.colorbar(im, cax=cax, extend="both")
        cb.set_label(p.title, fontsize=9)
        cb.ax.tick_params(labelsize=7)
    if scalebar and projected:
        _scalebar(ax, (right - left) / 1000.0)
    if north_arrow:
        ax.annotate(
            "N",
            xy=(0.94, 0.95),
            xytext=(0.94, 0.80),
            xycoords="axes fraction",
            ha="center",
            va="center",
            fontsize=9,
            fontweight="bold",
            arrowprops=dict(arrowstyle="-|>", color="black", lw=1.2, path_effects=[_halo()]),
            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
        )
    return im


def _halo():
    from matplotlib import patheffects

    return patheffects.withStroke(linewidth=3, foreground="white")


def _dots(ax, mask: np.ndarray, extent) -> None:
    """Black, white-edged dots on a lattice of ~30 per side where ``mask`` is True (significance marks)."""
    h, w = mask.shape
    step = max(2, int(round(max(h, w) / 30)))
    rows, cols = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    keep = mask[rows, cols]
    x0, x1, y0, y1 = extent
    xs = x0 + (cols[keep] + 0.5) / w * (x1 - x0)
    ys = y1 - (rows[keep] + 0.5) / h * (y1 - y0)
    ax.scatter(xs, ys, s=7, c="black", marker="o", edgecolors="white", linewidths=0.4, label="p < 0.05 (Mann–Kendall)")
    if keep.any():
        ax.legend(loc="lower left", fontsize=7, markerscale=3, framealpha=0.85)


def _scalebar(ax, width_km: float) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = nice_length(width_km)
    label = f"{length:g} km"
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        label,
        loc="lower right",
        pad=0.4,
        borderpad=0.5,
        sep=3,
        frameon=True,
        size_vertical=width_km / 150.0,
        fontproperties={"size": 7},
    )
    bar.patch.set_alpha(0.8)
    ax.add_artist(bar)


def _synthetic_mark(fig) -> None:
    fig.text(0.5, 0.005, SYNTHETIC_LABEL, ha="center", va="bottom", color="#b30000", fontsize=9, fontweight="bold")


def map_size_in(grid: Grid, map_width_in: float = 5.0) -> tuple[float, float]:
    """Figure size (inches) fitting the map's aspect ratio plus room for labels and colourbar."""
    w, h = grid["shape_2d"]
    map_h = min(max(map_width_in * h / w, 2.5), 7.0)
    return map_width_in + 1.6, map_h + 1.3


def map_figure(
    data,
    grid: Grid,
    product: str,
    *,
    title: str,
    vrange=None,
    sig_mask=None,
    synthetic: bool = False,
    size_in: tuple[float, float] | None = None,
):
    """A single-map figure (see :func:`draw_map`); sized to the map's aspect unless ``size_in``."""
    fig = new_figure(*(size_in or map_size_in(grid)))
    ax = fig.add_subplot(1, 1, 1)
    draw_map(ax, data, grid, product, title=title, vrange=vrange, sig_mask=sig_mask)
    if synthetic:
        _synthetic_mark(fig)
    fig.tight_layout(rect=(0, 0.03 if synthetic else 0, 1, 1))
    return fig


def draw_series(ax, series: dict) -> None:
    """Area-mean ALT (m) per year with its uncertainty band (see :func:`gee_alt.viz.runview.alt_series`)."""
    from gee_alt.science.trend import series_trend

    yrs = np.asarray(series["years"], float)
    mean = np.asarray(series["mean"], float)
    lvl = int(round(100 * series.get("level", 0.95)))
    ax.fill_between(
        yrs,
        series["ci_lo"],
        series["ci_hi"],
        color="#6baed6",
        alpha=0.45,
        lw=0,
        label=f"{lvl} % band: {series.get('ci_kind', 'CI of the area mean')}",
    )
    st = series_trend(yrs, mean)
    lab = "area-mean ALT"
    if np.isfinite(st["slope"]):
        lab += f" (Theil–Sen {100 * st['slope']:+.2f} cm/yr, MK p={st['p_value']:.2g})"
    ax.plot(yrs, mean, "o-", color="#08306b", ms=3.5, lw=1.4, label=lab)
    ax.set_xlabel("Year", fontsize=9)
    ax.set_ylabel("Area-mean ALT (m)", fontsize=9)
    ax.set_title(f"Area-mean active-layer thickness {int(yrs[0])}–{int(yrs[-1])}", fontsize=11)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.85)


def series_figure(series: dict, *, synthetic: bool = False, size_in=(6.4, 4.0)):
    """The ALT time-series figure (see :func:`draw_series`)."""
    fig = new_figure(*size_in)
    draw_series(fig.add_subplot(1, 1, 1), series)
    if synthetic:
        _synthetic_mark(fig)
    fig.tight_layout(rect=(0, 0.04 if synthetic else 0, 1, 1))
    return fig


def scatter_figure(obs_m, pred_m, *, synthetic: bool = False, size_in=(5.0, 5.0)):
    """Observed vs predicted in-situ ALT (m) with the 1:1 line; RMSE, bias, R², n in the legend."""
    from gee_alt.science.stefan import cv_metrics

    obs, pred = np.asarray(obs_m, float), np.asarray(pred_m, float)
    m = cv_metrics(pred, obs)
    fig = new_figure(*size_in)
    ax = fig.add_subplot(1, 1, 1)
    ok = np.isfinite(obs) & np.isfinite(pred)
    lo = float(min(obs[ok].min(), pred[ok].min(), 0.0)) if ok.any() else 0.0
    hi = float(max(obs[ok].max(), pred[ok].max())) * 1.08 if ok.any() else 1.0
    ax.plot([lo, hi], [lo, hi], "--", color="grey", lw=1, label="1:1")
    ax.scatter(
        obs[ok],
        pred[ok],
        s=22,
        color="#08519c",
        edgecolors="white",
        linewidths=0.5,
        label=(f"sites: RMSE {m['rmse_m']:.2f} m, bias {m['bias_m']:+.2f} m,\nR² {m['r2']:.2f}, n {m['n']}"),
    )
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("Observed ALT (m)", fontsize=9)
    ax.set_ylabel("Predicted ALT (m)", fontsize=9)
    ax.set_title("In-situ validation", fontsize=11)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", framealpha=0.9)
    if synthetic:
        _synthetic_mark(fig)
    fig.tight_layout(rect=(0, 0.04 if synthetic else 0, 1, 1))
    return fig


def readme_figure(alt_m, grid: Grid, year: int, series: dict, *, synthetic: bool = False):
    """Map of ALT (``year``) beside the area-mean ALT series: 1200 x 500 px at :data:`DPI`."""
    fig = new_figure(12.0, 5.0)
    gs = fig.add_gridspec(1, 2, width_ratios=(1.0, 1.25))
    draw_map(fig.add_subplot(gs[0, 0]), alt_m, grid, "alt", title=f"Active-layer thickness {year}")
    draw_series(fig.add_subplot(gs[0, 1]), series)
    if synthetic:
        _synthetic_mark(fig)
    fig.tight_layout(rect=(0, 0.035 if synthetic else 0, 1, 1))
    return fig


def disturbance_figure(res: dict, *, synthetic: bool = False, size_in=(6.4, 4.0)):
    """Impact vs matched-control series of a BACI analysis
    (:func:`gee_alt.science.disturbance.baci_quantity`), before/after periods shaded: one panel
    per quantity of ``res["quantities"]`` (thaw index, permafrost presence, ALT), else ALT only."""
    panels = []
    for name, label, unit in (
        ("ddt_degc_days", "Thaw index", "DDT (°C·day)"),
        ("permafrost_fraction", "Permafrost presence", "fraction with permafrost"),
        ("stefan_depth_m", "Thaw depth E·√DDT", "mean depth (m)"),
        ("alt_m", "ALT where permafrost persists", "mean ALT (m)"),
    ):
        q = (res.get("quantities") or {}).get(name)
        if q is not None:
            panels.append((label, unit, q["impact_series"], q["control_series"], q["effect"], q["effect_ci95"]))
    if not panels and res.get("effect_alt_m") is not None:
        panels.append(
            (
                "ALT",
                "mean ALT (m)",
                res["impact_series_m"],
                res["control_series_m"],
                res["effect_alt_m"],
                res["effect_alt_ci95_m"],
            )
        )
    fig = new_figure(size_in[0], size_in[1] * max(1, len(panels)) * 0.72 if len(panels) > 1 else size_in[1])
    yrs = np.asarray(res["years"], float)

    def arr(v):
        return np.array([np.nan if x is None else x for x in v], float)

    for k, (label, unit, imp, con, eff, ci) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, k + 1)
        for period, colour in ((res["before"], "#c6dbef"), (res["after"], "#fdd0a2")):
            if period:
                ax.axvspan(period[0] - 0.5, period[-1] + 0.5, color=colour, alpha=0.5, lw=0)
        ax.plot(yrs, arr(imp), "o-", color="#a63603", ms=3.5, lw=1.4, label="impact (disturbed pixels)")
        ax.plot(yrs, arr(con), "s-", color="#08519c", ms=3.0, lw=1.2, label="matched controls")
        dig = 0 if abs(eff) >= 10 else 2 if abs(eff) >= 0.1 else 3
        ax.set_title(f"{label}: effect {eff:+.{dig}f} (95 % CI {ci[0]:+.{dig}f} to {ci[1]:+.{dig}f})", fontsize=9)
        ax.set_ylabel(unit, fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7, loc="best", framealpha=0.85)
        if k == len(panels) - 1:
            ax.set_xlabel("Year (blue: before, orange: after)", fontsize=9)
    if synthetic:
        _synthetic_mark(fig)
    fig.tight_layout(rect=(0, 0.04 if synthetic else 0, 1, 1))
    return fig
