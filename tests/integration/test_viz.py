"""geemap helpers: VIS table, Earth Engine layers (offline graphs), run layers as image overlays."""

from __future__ import annotations

import base64
import subprocess
import sys

import numpy as np
import pytest

from gee_alt.errors import GeeAltError
from gee_alt.grid import rowcol_to_lonlat
from gee_alt.viz.notebook import LABELS, VIS, add_ee_layers, layer_title, product_of, zoom_for
from gee_alt.viz.palettes import PRODUCTS, robust_range
from gee_alt.viz.runview import to_web_mercator
from helpers.viz import GRID, layer_drawn, make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("v") / "run")


def test_vis_table_has_palette_range_and_units():
    assert set(VIS) == {"lst", "ddt", "alt", "alt_sd", "trend"}
    for v in VIS.values():
        assert set(v) == {"min", "max", "palette"}  # only keys getMapId accepts
        assert v["min"] < v["max"] and len(v["palette"]) == 9
        assert all(len(c) == 7 and c.startswith("#") for c in v["palette"])
    assert LABELS["lst"].endswith("(°C)") and LABELS["ddt"].endswith("(°C·day)")
    assert LABELS["alt"].endswith("(m)") and LABELS["alt_sd"].endswith("(m)") and LABELS["trend"].endswith("(cm/yr)")
    assert VIS["trend"]["min"] == -VIS["trend"]["max"]


def test_product_names():
    assert product_of("alt") == "alt" and product_of("alt_2023") == "alt"
    assert product_of("alt_sd_2023") == "alt_sd" and product_of("DDT") == "ddt"
    assert layer_title("alt_2023", "alt") == "Active-layer thickness 2023"
    with pytest.raises(GeeAltError, match="cannot tell the product"):
        product_of("ndvi")


def test_robust_range_rounds_outward():
    a = np.linspace(1.03, 2.97, 1000)
    lo, hi = robust_range(a, "alt")
    assert lo <= np.percentile(a, 2) and hi >= np.percentile(a, 98) and hi - lo < 2.1
    assert robust_range(np.full(5, np.nan), "alt") == (PRODUCTS["alt"].vmin, PRODUCTS["alt"].vmax)
    assert robust_range(np.array([-0.5, 1.7]), "trend", pct=(0, 100)) == pytest.approx((-1.7, 1.7))


class RecordingMap:
    """Stands in for geemap.Map: records addLayer / add_colorbar calls (a real one would call EE)."""

    def __init__(self):
        self.layers, self.colorbars = [], []

    def addLayer(self, img, vis, name, shown=True):
        self.layers.append((img, vis, name, shown))

    def add_colorbar(self, **kw):
        self.colorbars.append(kw)


def test_add_ee_layers(ee_offline):
    import ee

    imgs = {
        "lst": ee.Image.constant(5),
        "ddt": ee.Image.constant(900),
        "alt_2023": ee.Image.constant(1.5),
        "alt_sd_2023": ee.Image.constant(0.2),
        "trend": ee.Image.constant(0.5),
    }
    m = RecordingMap()
    names = add_ee_layers(m, imgs, vis={"alt": {"max": 4.0}}, shown=("alt", "trend"))
    assert names == [
        "Downscaled LST",
        "Thawing degree-days",
        "Active-layer thickness 2023",
        "ALT uncertainty (1σ) 2023",
        "ALT trend",
    ]
    by = {n: (img, vis, shown) for img, vis, n, shown in m.layers}
    assert by["Active-layer thickness 2023"][1] == {**VIS["alt"], "max": 4.0}
    assert by["Active-layer thickness 2023"][0] is imgs["alt_2023"]
    assert by["Thawing degree-days"][1] == VIS["ddt"] and by["Thawing degree-days"][2] is False
    assert [c["label"] for c in m.colorbars] == ["Active-layer thickness (m)", "ALT trend (cm/yr)"]
    assert m.colorbars[0]["vis_params"]["palette"] == VIS["alt"]["palette"]


def test_web_mercator_lines_up():
    """A pixel lands at its own lon/lat after reprojection (nearest neighbour: exact values)."""
    a = np.arange(64 * 64, dtype="float32").reshape(64, 64)
    merc, (left, b, r, t), (s, w, n, e) = to_web_mercator(a, GRID)
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    for row, col in [(10, 10), (32, 50), (60, 5)]:
        lon, lat = rowcol_to_lonlat(GRID, row + 0.5, col + 0.5)
        x, y = tr.transform(float(lon), float(lat))
        i = int((t - y) / (t - b) * merc.shape[0])
        j = int((x - left) / (r - left) * merc.shape[1])
        assert merc[i, j] == a[row, col]
    assert s < 38.04 < n and w < 99.41 < e


def test_zoom_for():
    assert zoom_for((38.0, 99.4, 38.05, 99.42)) >= 13
    assert zoom_for((37.7772, 98.8667, 38.3314, 99.9617)) in (9, 10)


def test_add_run_layers_on_geemap(run):
    pytest.importorskip("geemap")
    from ipyleaflet import ImageOverlay

    from gee_alt.viz.notebook import run_map

    m = run_map(run)
    ovs = [L for L in m.layers if isinstance(L, ImageOverlay)]
    assert [(o.name, o.visible) for o in ovs] == [
        ("ALT 2023 (m)", True),
        ("ALT uncertainty 1σ 2023 (m)", False),
        ("ALT trend (cm/yr)", False),
        ("DDT 2023 (°C·day)", False),
    ]
    (s, w), (n, e) = ovs[0].bounds
    assert 38.0 < s < n < 38.1 and 99.3 < w < e < 99.5
    assert abs(m.center[0] - (s + n) / 2) < 1e-9 and m.zoom >= 13
    png = base64.b64decode(ovs[0].url.split(",", 1)[1])
    assert layer_drawn(png, "viridis", min_fraction=0.5)
    assert layer_drawn(base64.b64decode(ovs[3].url.split(",", 1)[1]), "YlOrRd", min_fraction=0.5)
    assert len(getattr(m, "colorbars", [])) == 1


def test_viz_import_is_lazy():
    code = (
        "import sys, gee_alt.viz.notebook, gee_alt.viz.webmap, gee_alt.viz.report; "
        "bad = [m for m in ('geemap', 'ipyleaflet', 'ipywidgets', 'ee') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
