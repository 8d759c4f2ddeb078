"""A tiny numpy evaluator of serialized ``ee`` graphs (test helper).

It evaluates the per-pixel image algebra the daily-LST graphs use (the algorithms listed in
:data:`UNARY`, :data:`BINARY` and :func:`evaluate`'s dispatch) on *served* arrays: every
``Image.load(id)`` leaf is answered from a dict ``{id: {band: array}}`` (NaN = masked). It
checks what the built graph computes with the server's documented per-pixel semantics (masks
intersect in arithmetic, ``updateMask``/``unmask``/``where``, collection reductions over unmasked
values); it is not Earth Engine, and its numbers are never Earth Engine results. An algorithm it
does not know raises, so a graph that grows a new operation fails here until it is modelled.
"""

from __future__ import annotations

import json

import numpy as np

UNARY = {"Image.abs": np.abs, "Image.cos": np.cos, "Image.exp": np.exp, "Image.toFloat": lambda v: v}
BINARY = {
    "Image.add": np.add,
    "Image.subtract": np.subtract,
    "Image.multiply": np.multiply,
    "Image.divide": np.divide,
    "Image.max": np.maximum,
    "Image.min": np.minimum,
    "Image.mod": np.fmod,
    "Image.gt": lambda a, b: (a > b).astype(float),
    "Image.gte": lambda a, b: (a >= b).astype(float),
    "Image.lt": lambda a, b: (a < b).astype(float),
    "Image.lte": lambda a, b: (a <= b).astype(float),
}


class Img:
    """Bands ``name -> (values, mask)`` in order."""

    def __init__(self, bands: list[tuple[str, np.ndarray, np.ndarray]]):
        self.bands = bands

    def names(self):
        return [b[0] for b in self.bands]

    def only(self):
        assert len(self.bands) == 1, self.names()
        return self.bands[0]


def _pair(a: Img, b: Img):
    if len(a.bands) == len(b.bands):
        return list(zip(a.bands, b.bands, strict=True))
    if len(b.bands) == 1:
        return [(x, b.bands[0]) for x in a.bands]
    if len(a.bands) == 1:
        return [(a.bands[0], y) for y in b.bands]
    raise ValueError(f"band counts {a.names()} / {b.names()}")


def _reduce(images: list[Img], fn) -> Img:
    out = []
    for name in images[0].names():
        stack = []
        for im in images:
            for n, v, m in im.bands:
                if n == name:
                    stack.append(np.where(m, v, np.nan))
        s = np.stack(np.broadcast_arrays(*stack))
        with np.errstate(all="ignore"), _quiet():
            r = fn(s, axis=0)
        out.append((name, np.nan_to_num(r), np.isfinite(r)))
    return Img(out)


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a):
        self._w.__exit__(*a)


def evaluate(obj, served: dict[str, dict[str, np.ndarray]]):
    """Evaluate ``obj`` (an ``ee`` object) on ``served`` leaves; an :class:`Img`, a list of them
    for a collection, or a plain value."""
    import ee

    enc = json.loads(ee.serializer.toJSON(obj))
    values = enc["values"]
    cache: dict[str, object] = {}

    def ev(node):
        if "valueReference" in node:
            key = node["valueReference"]
            if key not in cache:
                cache[key] = ev(values[key])
            return cache[key]
        if "constantValue" in node:
            return node["constantValue"]
        if "arrayValue" in node:
            return [ev(v) for v in node["arrayValue"]["values"]]
        f = node["functionInvocationValue"]
        name, args = f["functionName"], {k: ev(v) for k, v in f.get("arguments", {}).items()}
        return call(name, args)

    def call(name, a):
        if name == "Image.load":
            return Img([(n, np.nan_to_num(v), np.isfinite(v)) for n, v in served[a["id"]].items()])
        if name == "Image.constant":
            v = a["value"]
            vals = v if isinstance(v, list) else [v]
            names = ["constant"] if not isinstance(v, list) else [f"constant_{i}" for i in range(len(v))]
            return Img([(n, np.asarray(float(x)), np.asarray(True)) for n, x in zip(names, vals, strict=True)])
        if name in UNARY:
            return Img([(n, UNARY[name](v), m) for n, v, m in a["value"].bands])
        if name in BINARY:
            with np.errstate(all="ignore"):
                return Img([(x[0], BINARY[name](x[1], y[1]), x[2] & y[2]) for x, y in _pair(a["image1"], a["image2"])])
        if name == "Image.rename":
            return Img([(n, v, m) for n, (_, v, m) in zip(a["names"], a["input"].bands, strict=True)])
        if name == "Image.select":
            sel = a["bandSelectors"]
            return Img([b for s in sel for b in a["input"].bands if b[0] == s])
        if name == "Image.addBands":
            dst = list(a["dstImg"].bands)
            for b in a["srcImg"].bands:
                i = [k for k, x in enumerate(dst) if x[0] == b[0]]
                if i and a.get("overwrite"):
                    dst[i[0]] = b
                else:
                    dst.append(b)
            return Img(dst)
        if name == "Image.updateMask":
            mn, mv, mm = a["mask"].only()
            return Img([(n, v, m & mm & (mv != 0)) for n, v, m in a["image"].bands])
        if name == "Image.unmask":
            assert a.get("sameFootprint") is False, "only sameFootprint=False is modelled"
            fill = a["value"] if isinstance(a["value"], Img) else Img([("c", np.asarray(float(a["value"])), True)])
            out = []
            for (n, v, m), (_, fv, fm) in _pair(a["input"], fill):
                out.append((n, np.where(m, v, fv), m | np.asarray(fm)))
            return Img(out)
        if name == "Image.where":
            out = []
            tn, tv, tm = a["test"].only()
            for (n, v, m), (_, vv, vm) in _pair(a["input"], a["value"]):
                use = tm & (tv != 0)
                out.append((n, np.where(use, vv, v), np.where(use, vm, m)))
            return Img(out)
        if name in ("Image.setDefaultProjection",):
            return a["image"]
        if name == "ImageCollection.fromImages":
            return list(a["images"])
        if name == "ImageCollection.merge":
            return list(a["collection1"]) + list(a["collection2"])
        if name == "reduce.mean":
            return _reduce(a["collection"], np.nanmean)
        if name == "reduce.median":
            return _reduce(a["collection"], np.nanmedian)
        raise NotImplementedError(f"ee_eval does not model {name}")

    return ev({"valueReference": enc["result"]})


def as_array(img: Img, band: int = 0) -> np.ndarray:
    """One band of an evaluated image as float (NaN = masked)."""
    _, v, m = img.bands[band]
    v, m = np.broadcast_arrays(v, m)
    return np.where(m, v, np.nan)
