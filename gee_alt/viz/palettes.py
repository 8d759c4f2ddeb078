"""Colour palettes, display ranges and units of every displayed product, and array colouring.

One table (:data:`PRODUCTS`) is shared by the report figures, the offline HTML map, the
geemap helpers and the Earth Engine visualisation parameters, so a product looks the same
everywhere. Pure: numpy (and matplotlib's colormap registry for the lookup tables) only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Product:
    """How one product is displayed: ``cmap`` (matplotlib name), default range, units, label."""

    key: str
    label: str
    units: str
    cmap: str
    vmin: float
    vmax: float
    diverging: bool = False

    @property
    def title(self) -> str:
        """``"label (units)"`` — for colourbars and legends."""
        return f"{self.label} ({self.units})"


# Default ranges are the Earth Engine visualisation ranges (study-area plausible values);
# maps of a local run use robust ranges of the data (:func:`robust_range`).
PRODUCTS: dict[str, Product] = {
    "lst": Product("lst", "Downscaled LST", "°C", "RdYlBu_r", -10.0, 30.0),
    "ddt": Product("ddt", "Thawing degree-days", "°C·day", "YlOrRd", 0.0, 2500.0),
    "alt": Product("alt", "Active-layer thickness", "m", "viridis", 0.0, 5.0),
    "alt_sd": Product("alt_sd", "ALT uncertainty (1σ)", "m", "plasma", 0.0, 1.0),
    "trend": Product("trend", "ALT trend", "cm/yr", "RdBu_r", -3.0, 3.0, diverging=True),
}


def palette_hex(cmap: str, n: int = 9) -> list[str]:
    """``n`` evenly spaced colours of a matplotlib colormap as ``"#rrggbb"`` (Earth Engine palettes)."""
    import matplotlib
    from matplotlib.colors import to_hex

    cm = matplotlib.colormaps[cmap]
    return [to_hex(cm(i / (n - 1))) for i in range(n)]


def lut_rgb(cmap: str, n: int = 256) -> np.ndarray:
    """``(n, 3)`` uint8 lookup table of a matplotlib colormap."""
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    return np.round(cm(np.linspace(0.0, 1.0, n))[:, :3] * 255).astype(np.uint8)


def _nice(v: float, up: bool) -> float:
    """Round ``v`` outward to 2 significant digits (``up``: towards +inf)."""
    if v == 0 or not math.isfinite(v):
        return 0.0 if not math.isfinite(v) else v
    step = 10 ** (math.floor(math.log10(abs(v))) - 1)
    return (math.ceil(v / step) if up else math.floor(v / step)) * step


def robust_range(data, product: str, pct: tuple[float, float] = (2.0, 98.0)) -> tuple[float, float]:
    """Display range of ``data``: the ``pct`` percentiles rounded outward to 2 significant digits.

    Diverging products (trend) get a range symmetric about 0. Falls back to the product's
    default range when ``data`` holds no finite value or is constant.
    """
    p = PRODUCTS[product]
    a = np.asarray(data, float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return p.vmin, p.vmax
    lo, hi = (float(v) for v in np.percentile(a, pct))
    if p.diverging:
        m = _nice(max(abs(lo), abs(hi)), up=True)
        return (-m, m) if m > 0 else (p.vmin, p.vmax)
    lo, hi = _nice(lo, up=False), _nice(hi, up=True)
    if not hi > lo:
        return p.vmin, p.vmax
    return lo, hi


def colorize(data, cmap: str, vmin: float, vmax: float, alpha=None) -> np.ndarray:
    """``(y, x, 4)`` uint8 RGBA of a 2-D array: NaN transparent, values clipped to [vmin, vmax].

    ``alpha`` (optional 2-D bool) makes pixels where it is False transparent too.
    """
    a = np.asarray(data, float)
    lut = lut_rgb(cmap)
    ok = np.isfinite(a)
    if alpha is not None:
        ok &= np.asarray(alpha, bool)
    t = np.clip((np.where(ok, a, vmin) - vmin) / ((vmax - vmin) or 1.0), 0.0, 1.0)
    idx = np.round(t * (len(lut) - 1)).astype(np.intp)
    rgba = np.zeros(a.shape + (4,), np.uint8)
    rgba[..., :3] = lut[idx]
    rgba[..., 3] = np.where(ok, 255, 0)
    return rgba


def png_bytes(rgba: np.ndarray) -> bytes:
    """Encode an RGBA uint8 array as PNG (deterministic: no timestamp or text chunks)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), mode="RGBA").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
