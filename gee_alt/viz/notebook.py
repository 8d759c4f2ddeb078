"""geemap helpers: Earth Engine layers with sensible palettes, and a run's local COGs offline.

geemap (the ``viz`` extra) is imported inside the functions, so ``import gee_alt.viz.notebook`` works
without it. Palettes and default ranges come from :mod:`gee_alt.viz.palettes` and match the
report figures and the HTML map.

- :data:`VIS`: Earth Engine visualisation parameters per product (``min``, ``max``,
  ``palette``) — LST °C, DDT °C·day, ALT m, ALT sd m, trend cm/yr; :data:`LABELS` holds the
  colourbar label with units (kept apart: ``getMapId`` rejects unknown keys).
- :func:`add_ee_layers`: ``m.addLayer`` each image with its product's parameters + colourbar.
- :func:`add_run_layers`: the run's COGs as ipyleaflet ``ImageOverlay`` s (Web Mercator PNG
  data URLs with lon/lat bounds): no network and no tile server.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

from gee_alt.errors import GeeAltError
from gee_alt.viz.palettes import PRODUCTS, colorize, palette_hex, png_bytes, robust_range

VIS: dict[str, dict] = {
    k: {"min": p.vmin, "max": p.vmax, "palette": palette_hex(p.cmap, 9)} for k, p in PRODUCTS.items()
}
LABELS: dict[str, str] = {k: p.title for k, p in PRODUCTS.items()}
RUN_LAYERS = ("alt", "alt_sd", "trend", "ddt")


def product_of(name: str) -> str:
    """The product key of a layer name: exact key, else the longest key the name starts with.

    ``"alt_sd_2023"`` → ``alt_sd``, ``"alt 2023"`` → ``alt``, ``"DDT"`` → ``ddt``.
    """
    n = name.strip().lower().replace(" ", "_")
    if n in PRODUCTS:
        return n
    hits = [k for k in PRODUCTS if n.startswith(k + "_")]
    if not hits:
        raise GeeAltError(
            f"cannot tell the product of layer {name!r}; name it one of {', '.join(PRODUCTS)} "
            "(optionally followed by _suffix, e.g. alt_2023)"
        )
    return max(hits, key=len)


def layer_title(name: str, key: str) -> str:
    """Display name: the product label plus the name's suffix (e.g. a year)."""
    n = name.strip().replace(" ", "_")
    suffix = n[len(key) :].strip("_ ") if n.lower().startswith(key) else ""
    return f"{PRODUCTS[key].label} {suffix}".strip()


def add_ee_layers(m, images: dict, *, vis: dict | None = None, shown=("alt",), colorbars: bool = True) -> list[str]:
    """Add Earth Engine images to a geemap ``Map`` with the product's palette, range and a colourbar.

    ``images``: ``{name: ee.Image}``, each name a product key (``lst``, ``ddt``, ``alt``,
    ``alt_sd``, ``trend``) optionally with a suffix (``alt_2023``). ``vis``: overrides per
    product key (merged into :data:`VIS`). ``shown``: product keys visible at load (others are
    added hidden, toggled in the layer control). Returns the layer names added.
    """
    added = []
    for name, img in images.items():
        key = product_of(name)
        params = {**VIS[key], **((vis or {}).get(key, {}))}
        title = layer_title(name, key)
        on = key in shown
        m.addLayer(img, params, title, on)
        if colorbars and on:
            m.add_colorbar(
                vis_params=params, label=LABELS[key], layer_name=title, orientation="horizontal", position="bottomright"
            )
        added.append(title)
    return added


def zoom_for(bounds_lonlat, width_px: int = 800, height_px: int = 500) -> int:
    """The web-map zoom level that fits ``(south, west, north, east)`` into a view of that size."""
    s, w, n, e = bounds_lonlat

    def merc_y(lat):
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    fx = (e - w) / 360.0
    fy = (merc_y(n) - merc_y(s)) / (2 * math.pi)
    frac = max(fx * 256 / width_px, fy * 256 / height_px, 1e-12)
    return int(max(0, min(18, math.floor(math.log2(1.0 / frac)))))


def overlay_spec(key: str, data, grid, *, max_px: int = 1024) -> dict:
    """A layer as ``{url, bounds, vmin, vmax}``: Web-Mercator PNG data URL and ``((s, w), (n, e))``."""
    from gee_alt.viz.runview import to_web_mercator

    p = PRODUCTS[key]
    vmin, vmax = robust_range(data, key)
    merc, _, (s, w, n, e) = to_web_mercator(data, grid, max_px=max_px)
    url = "data:image/png;base64," + base64.b64encode(png_bytes(colorize(merc, p.cmap, vmin, vmax))).decode("ascii")
    return {"url": url, "bounds": ((s, w), (n, e)), "vmin": vmin, "vmax": vmax}


def add_run_layers(
    m,
    run_dir,
    year: int | None = None,
    *,
    layers=RUN_LAYERS,
    shown=("alt",),
    opacity: float = 0.9,
    colorbars: bool = True,
    max_px: int = 1024,
    center: bool = True,
) -> list:
    """Show a run's local COGs on a geemap/ipyleaflet ``Map`` as image overlays (offline).

    Each layer (ALT and ALT sd of ``year`` — default the last year —, the trend, DDT) is
    reprojected to Web Mercator, coloured with its palette and robust range, and added as an
    ``ipyleaflet.ImageOverlay`` with a PNG data URL and lon/lat bounds; layers not in
    ``shown`` are added hidden. A colourbar with units is added for each shown layer. The map
    is centred on the run (``center``). Returns the overlays.
    """
    from ipyleaflet import ImageOverlay

    from gee_alt.viz.runview import load_layer, pick_year

    run = Path(run_dir)
    if not run.is_dir():
        raise GeeAltError(f"run directory not found: {run}")
    year = pick_year(run, year)
    names = {
        "alt": f"ALT {year} (m)",
        "alt_sd": f"ALT uncertainty 1σ {year} (m)",
        "trend": "ALT trend (cm/yr)",
        "ddt": f"DDT {year} (°C·day)",
    }
    overlays, box = [], None
    for key in layers:
        if key not in names:
            raise GeeAltError(f"unknown run layer {key!r}; choose from {', '.join(names)}")
        lay = load_layer(run, key, year)
        if lay is None:
            continue
        spec = overlay_spec(key, lay.data, lay.grid, max_px=max_px)
        ov = ImageOverlay(
            url=spec["url"], bounds=spec["bounds"], name=names[key], opacity=opacity, visible=key in shown
        )
        m.add(ov)
        overlays.append(ov)
        box = box or spec["bounds"]
        if colorbars and key in shown:
            m.add_colorbar(
                vis_params={"min": spec["vmin"], "max": spec["vmax"], "palette": palette_hex(PRODUCTS[key].cmap)},
                label=f"{names[key].split(' (')[0]} ({PRODUCTS[key].units})",
                orientation="horizontal",
                position="bottomright",
            )
    if center and box is not None:
        (s, w), (n, e) = box
        m.center = ((s + n) / 2, (w + e) / 2)
        m.zoom = zoom_for((s, w, n, e))
    return overlays


def run_map(run_dir, year: int | None = None, **kwargs):
    """A new ``geemap.Map`` (no Earth Engine initialisation) showing the run's layers."""
    import geemap

    m = geemap.Map(ee_initialize=False)
    add_run_layers(m, run_dir, year, **kwargs)
    return m
