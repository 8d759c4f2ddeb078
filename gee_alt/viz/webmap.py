"""A self-contained offline HTML map of a run: ALT, ALT uncertainty and trend as toggleable layers.

The page is one file with no external reference: layers are PNGs (Web Mercator) embedded as
data URLs and drawn by a small dependency-free canvas viewer (pan by dragging, zoom with
the wheel or the +/- buttons, a legend with units, a scale bar, lon/lat readout). Leaflet is
not used: no installed package ships a standalone ``leaflet.js`` (ipyleaflet's copy is inside
a webpack widget bundle), and a CDN link would need the network.

``basemap=True`` adds OpenStreetMap tiles (the only network access the page can make);
off by default, and then the page contains no URL at all.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from gee_alt.errors import GeeAltError
from gee_alt.io import write_text_atomic
from gee_alt.viz.palettes import PRODUCTS, colorize, palette_hex, png_bytes, robust_range

MAP_LAYERS = ("alt", "alt_sd", "trend")
BASEMAP_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
BASEMAP_ATTRIBUTION = "© OpenStreetMap contributors"
MAX_PX = 2048


def layer_spec(key: str, data: np.ndarray, grid, *, name: str, visible: bool, max_px: int = MAX_PX, mask=None) -> dict:
    """One map layer: reprojected to Web Mercator, coloured with its palette, PNG data URL.

    ``mask`` (bool, on ``grid``): only pixels where it is True are drawn.
    """
    from gee_alt.viz.runview import to_web_mercator

    p = PRODUCTS[key]
    vmin, vmax = robust_range(data, key)
    if mask is not None:
        data = np.where(mask, data, np.nan)
    merc, b3857, _ = to_web_mercator(data, grid, max_px=max_px)
    rgba = colorize(merc, p.cmap, vmin, vmax)
    url = "data:image/png;base64," + base64.b64encode(png_bytes(rgba)).decode("ascii")
    return {
        "id": key,
        "name": name,
        "units": p.units,
        "png": url,
        "bounds": [float(v) for v in b3857],
        "visible": bool(visible),
        "vmin": vmin,
        "vmax": vmax,
        "colors": palette_hex(p.cmap, 9),
        "opacity": 1.0,
    }


def run_layer_specs(run: Path, year: int, layers=MAP_LAYERS, visible=("alt",), max_px: int = MAX_PX) -> list[dict]:
    """Specs of the run's layers that exist (ALT and ALT sd of ``year``, the trend)."""
    from gee_alt.viz.runview import load_layer

    names = {"alt": f"ALT {year}", "alt_sd": f"ALT uncertainty (1σ) {year}", "trend": "ALT trend (Theil–Sen)"}
    specs = []
    for key in layers:
        if key not in names:
            raise GeeAltError(f"unknown map layer {key!r}; choose from {', '.join(MAP_LAYERS)}")
        lay = load_layer(run, key, year)
        if lay is None:
            continue
        specs.append(layer_spec(key, lay.data, lay.grid, name=names[key], visible=key in visible, max_px=max_px))
    return specs


def render_page(title: str, specs: list[dict], *, basemap: bool = False, banner: str | None = None) -> str:
    """The HTML page: embedded layers + the inline canvas viewer."""
    config = {"layers": specs, "basemap": {"url": BASEMAP_URL, "attribution": BASEMAP_ATTRIBUTION} if basemap else None}
    imgs = "\n".join(f'<img id="img-{s["id"]}" class="src" alt="" src="{s["png"]}">' for s in specs)
    data = json.dumps(
        {**config, "layers": [{k: v for k, v in s.items() if k != "png"} for s in specs]}, ensure_ascii=False
    ).replace("</", "<\\/")
    ban = f'<div id="banner">⚠ {html.escape(banner)}</div>' if banner else ""
    return (
        _PAGE.replace("%%TITLE%%", html.escape(title))
        .replace("%%BANNER%%", ban)
        .replace("%%IMGS%%", imgs)
        .replace("%%CONFIG%%", data)
    )


def write_html_map(
    run_dir,
    out_html,
    year: int | None = None,
    basemap: bool = False,
    *,
    layers=MAP_LAYERS,
    visible=("alt",),
    max_px: int = MAX_PX,
) -> Path:
    """Write a self-contained HTML map of a run and return its path.

    ALT of ``year`` (default: the last year), ALT uncertainty and the trend are toggleable
    layers (``layers``: which to include; ``visible``: which are on at load — ALT by default);
    the legend shows each visible layer's colour range with units. ``basemap`` adds
    OpenStreetMap tiles (network); off by default, and then the page needs no network.
    """
    from gee_alt.viz.figures import SYNTHETIC_LABEL
    from gee_alt.viz.runview import is_synthetic, pick_year

    run = Path(run_dir)
    if not run.is_dir():
        raise GeeAltError(f"run directory not found: {run}")
    year = pick_year(run, year)
    specs = run_layer_specs(run, year, layers=layers, visible=visible, max_px=max_px)
    banner = SYNTHETIC_LABEL if is_synthetic(run) else None
    page = render_page(f"gee-alt map: {run.name} ({year})", specs, basemap=basemap, banner=banner)
    return write_text_atomic(out_html, page)


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%%TITLE%%</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
html,body{margin:0;height:100%;overflow:hidden;font:13px system-ui,-apple-system,Segoe UI,Roboto,sans-serif}
#cv{position:absolute;inset:0;width:100%;height:100%;cursor:grab;background:#e0e0e0;touch-action:none}
#cv.drag{cursor:grabbing}
.src{display:none}
#panel{position:absolute;top:10px;right:10px;width:230px;background:rgba(255,255,255,.92);border-radius:6px;
 box-shadow:0 1px 4px rgba(0,0,0,.35);padding:8px 10px}
#panel h1{font-size:13px;margin:0 0 6px}
#panel label{display:block;margin:2px 0}
.leg{margin-top:8px}.leg .t{font-weight:600;font-size:12px}
.bar{height:12px;border:1px solid #777;margin:2px 0}
.lab{display:flex;justify-content:space-between;font-size:11px}
#banner{position:absolute;top:10px;left:50%;transform:translateX(-50%);background:#b30000;color:#fff;font-weight:bold;
 padding:5px 12px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35)}
#zoom{position:absolute;top:10px;left:10px;display:flex;flex-direction:column;gap:2px}
#zoom button{width:28px;height:28px;font-size:16px;border:1px solid #888;border-radius:4px;background:#fff;cursor:pointer}
#scale{position:absolute;left:10px;bottom:10px;background:rgba(255,255,255,.85);padding:2px 6px;font-size:11px}
#scale div{height:6px;border:2px solid #222;border-top:none}
#pos{position:absolute;right:10px;bottom:10px;background:rgba(255,255,255,.85);padding:2px 6px;font-size:11px}
#pos:empty,#attr:empty{display:none}
#attr{position:absolute;right:10px;bottom:30px;font-size:10px;background:rgba(255,255,255,.7);padding:1px 4px}
</style></head><body>
<canvas id="cv"></canvas>
%%IMGS%%
%%BANNER%%
<div id="zoom"><button id="zin" title="zoom in">+</button><button id="zout" title="zoom out">−</button>
<button id="zfit" title="fit to data">⤢</button></div>
<div id="panel"><h1>%%TITLE%%</h1><div id="toggles"></div><div id="legend"></div></div>
<div id="scale"><span id="scalet"></span><div id="scaleb"></div></div>
<div id="pos"></div><div id="attr"></div>
<script>
"use strict";
const CFG = %%CONFIG%%;
const R = 6378137, HALF = Math.PI * R;
const cv = document.getElementById("cv"), ctx = cv.getContext("2d");
const view = {cx: 0, cy: 0, res: 1};           // Web Mercator metres at the centre, metres per CSS pixel
const tiles = {};
function size() { return [cv.clientWidth, cv.clientHeight]; }
function fit() {
  const vis = CFG.layers.length ? CFG.layers : [];
  if (!vis.length) return;
  let l = Infinity, b = Infinity, r = -Infinity, t = -Infinity;
  for (const L of vis) { l = Math.min(l, L.bounds[0]); b = Math.min(b, L.bounds[1]);
                         r = Math.max(r, L.bounds[2]); t = Math.max(t, L.bounds[3]); }
  const [w, h] = size();
  view.cx = (l + r) / 2; view.cy = (b + t) / 2;
  view.res = Math.max((r - l) / Math.max(w - 40, 1), (t - b) / Math.max(h - 40, 1));
}
function toScreen(x, y) { const [w, h] = size(); return [(x - view.cx) / view.res + w / 2, (view.cy - y) / view.res + h / 2]; }
function toWorld(px, py) { const [w, h] = size(); return [view.cx + (px - w / 2) * view.res, view.cy - (py - h / 2) * view.res]; }
function lonlat(x, y) { return [x / R * 180 / Math.PI, (2 * Math.atan(Math.exp(y / R)) - Math.PI / 2) * 180 / Math.PI]; }
function drawTiles() {
  const bm = CFG.basemap; if (!bm) return;
  const z = Math.max(0, Math.min(19, Math.round(Math.log2(2 * HALF / 256 / view.res))));
  const n = 2 ** z, ts = 2 * HALF / n, [w, h] = size();
  const [x0, y0] = toWorld(0, 0), [x1, y1] = toWorld(w, h);
  const i0 = Math.max(0, Math.floor((x0 + HALF) / ts)), i1 = Math.min(n - 1, Math.floor((x1 + HALF) / ts));
  const j0 = Math.max(0, Math.floor((HALF - y0) / ts)), j1 = Math.min(n - 1, Math.floor((HALF - y1) / ts));
  for (let i = i0; i <= i1; i++) for (let j = j0; j <= j1; j++) {
    const key = z + "/" + i + "/" + j;
    let im = tiles[key];
    if (!im) { im = tiles[key] = new Image(); im.onload = draw;
               im.src = bm.url.replace("{z}", z).replace("{x}", i).replace("{y}", j); }
    if (im.complete && im.naturalWidth) {
      const [sx, sy] = toScreen(-HALF + i * ts, HALF - j * ts);
      ctx.drawImage(im, sx, sy, ts / view.res + 0.5, ts / view.res + 0.5);
    }
  }
}
function draw() {
  const dpr = window.devicePixelRatio || 1, [w, h] = size();
  if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
    cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  drawTiles();
  ctx.imageSmoothingEnabled = false;
  for (const L of CFG.layers) {
    if (!L.visible) continue;
    const im = document.getElementById("img-" + L.id);
    if (!im.complete || !im.naturalWidth) continue;
    const [sx, sy] = toScreen(L.bounds[0], L.bounds[3]);
    ctx.globalAlpha = L.opacity;
    ctx.drawImage(im, sx, sy, (L.bounds[2] - L.bounds[0]) / view.res, (L.bounds[3] - L.bounds[1]) / view.res);
    ctx.globalAlpha = 1;
  }
  scalebar(); legend();
}
function scalebar() {
  const lat = lonlat(view.cx, view.cy)[1] * Math.PI / 180;
  const mpp = view.res * Math.cos(lat), target = mpp * 100;
  const mag = 10 ** Math.floor(Math.log10(target));
  let len = mag; for (const m of [1, 2, 5, 10]) if (m * mag <= target) len = m * mag;
  document.getElementById("scaleb").style.width = (len / mpp) + "px";
  document.getElementById("scalet").textContent = len >= 1000 ? (len / 1000) + " km" : len + " m";
}
function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : (+v.toPrecision(3)).toString(); }
function legend() {
  const el = document.getElementById("legend"); el.textContent = "";
  for (const L of CFG.layers) {
    if (!L.visible) continue;
    const d = document.createElement("div"); d.className = "leg";
    const t = document.createElement("div"); t.className = "t"; t.textContent = L.name + " (" + L.units + ")";
    const bar = document.createElement("div"); bar.className = "bar";
    bar.style.background = "linear-gradient(to right," + L.colors.join(",") + ")";
    const lab = document.createElement("div"); lab.className = "lab";
    for (const v of [L.vmin, (L.vmin + L.vmax) / 2, L.vmax]) {
      const s = document.createElement("span"); s.textContent = fmt(v); lab.appendChild(s); }
    d.append(t, bar, lab); el.appendChild(d);
  }
}
function toggles() {
  const el = document.getElementById("toggles");
  for (const L of CFG.layers) {
    const lab = document.createElement("label"), cb = document.createElement("input");
    cb.type = "checkbox"; cb.checked = L.visible; cb.id = "tg-" + L.id;
    cb.onchange = () => { L.visible = cb.checked; draw(); };
    lab.append(cb, " " + L.name); el.appendChild(lab);
  }
  if (!CFG.layers.length) el.textContent = "no layers";
  if (CFG.basemap) document.getElementById("attr").textContent = CFG.basemap.attribution;
}
function zoom(f, px, py) {
  const [w, h] = size(); px = px ?? w / 2; py = py ?? h / 2;
  const [x, y] = toWorld(px, py);
  view.res *= f; view.cx = x - (px - w / 2) * view.res; view.cy = y + (py - h / 2) * view.res; draw();
}
let drag = null;
cv.addEventListener("pointerdown", e => { drag = [e.clientX, e.clientY]; cv.classList.add("drag"); cv.setPointerCapture(e.pointerId); });
cv.addEventListener("pointermove", e => {
  const [x, y] = toWorld(e.offsetX, e.offsetY), [lo, la] = lonlat(x, y);
  document.getElementById("pos").textContent = la.toFixed(5) + "° N, " + lo.toFixed(5) + "° E";
  if (!drag) return;
  view.cx -= (e.clientX - drag[0]) * view.res; view.cy += (e.clientY - drag[1]) * view.res;
  drag = [e.clientX, e.clientY]; draw();
});
cv.addEventListener("pointerup", () => { drag = null; cv.classList.remove("drag"); });
cv.addEventListener("wheel", e => { e.preventDefault(); zoom(e.deltaY > 0 ? 1.25 : 0.8, e.offsetX, e.offsetY); }, {passive: false});
document.getElementById("zin").onclick = () => zoom(0.8);
document.getElementById("zout").onclick = () => zoom(1.25);
document.getElementById("zfit").onclick = () => { fit(); draw(); };
window.addEventListener("resize", draw);
toggles(); fit(); draw();
window.addEventListener("load", () => { fit(); draw(); document.body.dataset.ready = "1"; });
</script>
</body></html>
"""
