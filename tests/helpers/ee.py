"""Helpers for the Earth Engine tests: a stub pixel server and graph walkers (the offline ``ee``
fixture is in ``tests/conftest.py``).

The stub serves *known synthetic arrays* through ``ee.data.computePixels`` /
``ee.data.computeValue`` the way Earth Engine would answer xee; its numbers are test data,
never Earth Engine results.
"""

from __future__ import annotations

import threading

import numpy as np

from gee_alt.grid import Grid, shape_yx

XEE_MASK_VALUE = np.float32(np.iinfo(np.int32).max)


def known_year_arrays(year: int, grid: Grid) -> np.ndarray:
    """Deterministic synthetic ``(4, y, x)`` float32 arrays for a year (DDT, sd, n_obs, DDF), some NaN."""
    h, w = shape_yx(grid)
    rng = np.random.default_rng(year)
    ddt = rng.uniform(200, 2500, (h, w)).astype("float32")
    sd = rng.uniform(0, 150, (h, w)).astype("float32")
    nobs = rng.integers(5, 35, (h, w)).astype("float32")
    hole = rng.random((h, w)) < 0.05
    ddt[hole] = np.nan
    sd[hole] = np.nan
    ddf = rng.uniform(300, 3000, (h, w)).astype("float32")
    ddf[rng.random((h, w)) < 0.05] = np.nan
    return np.stack([ddt, sd, nobs, ddf])


def known_field_arrays(grid: Grid) -> np.ndarray:
    """Deterministic synthetic ``(2, y, x)`` float32 site fields (elevation m, mean NDVI)."""
    h, w = shape_yx(grid)
    rng = np.random.default_rng(7)
    dem = (3800 + 600 * rng.random((h, w))).astype("float32")
    ndvi = rng.uniform(0.05, 0.7, (h, w)).astype("float32")
    return np.stack([dem, ndvi])


def served_arrays(year: int, grid: Grid) -> np.ndarray:
    """What the stub serves for an expression tagged ``gee_alt_year = year`` (0: the site fields)."""
    return known_field_arrays(grid) if year == 0 else known_year_arrays(year, grid)


def property_values_in_expression(expression, key: str) -> set[int]:
    """The values of ``Element.set(key, value)`` anywhere in an ``ee`` expression (walks the graph)."""
    import ee

    found: set[int] = set()
    seen: set[int] = set()
    stack = [expression]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ee.ComputedObject):
            func, args = node.func, node.args or {}
            name = func.getSignature().get("name", "") if hasattr(func, "getSignature") else ""
            if name == "Element.set" and getattr(args.get("key"), "_string", args.get("key")) == key:
                found.add(int(getattr(args["value"], "_number", args["value"])))
            stack.extend(args.values())
            for attr in ("_list", "_dictionary"):
                if getattr(node, attr, None) is not None:
                    stack.append(getattr(node, attr))
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return found


def years_in_expression(expression) -> set[int]:
    """The ``gee_alt_year`` property values set anywhere in an ``ee`` expression."""
    return property_values_in_expression(expression, "gee_alt_year")


class StubServer:
    """Answers xee's calls for yearly DDT images on ``grid`` with :func:`known_year_arrays` (and for
    the run's site-fields image, tagged year 0, with :func:`known_field_arrays`).

    ``fail_rate`` injects transient errors (seeded); ``fatal`` makes every pixel call fail with
    that message; ``arrays(year, grid)`` replaces what is served; ``fractions(year)`` answers the
    year's thaw-progress request (``computeValue``; counted in ``fraction_calls``). Counts pixel requests per year
    (``pixel_calls``) and metadata calls.
    """

    def __init__(
        self, grid: Grid, fail_rate: float = 0.0, seed: int = 0, fatal: str | None = None, arrays=None, fractions=None
    ):
        self.grid = grid
        self.fractions = fractions  # year -> {"fKK": value} answering a thaw-progress request (None: {})
        self.fraction_calls: dict[int, int] = {}
        self.arrays = arrays or served_arrays  # (year, grid) -> (layer, y, x); year 0: site fields
        self.fail_rate = fail_rate
        self.fatal = fatal
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.pixel_calls: dict[int, int] = {}
        self.value_calls = 0
        self.failures = 0
        self.tiles: list[tuple] = []

    def _maybe_fail(self):
        import ee

        with self.lock:
            fail = self.rng.random() < self.fail_rate
            if fail:
                self.failures += 1
        if fail:
            raise ee.EEException("Too many concurrent aggregations.")

    def compute_value(self, obj):
        from gee_alt.engines.ee.thaw import THAW_FRACTION_MARK

        if property_values_in_expression(obj, THAW_FRACTION_MARK):  # a year's thaw-progress medians
            (year,) = years_in_expression(obj)
            with self.lock:
                self.fraction_calls[year] = self.fraction_calls.get(year, 0) + 1
            return dict(self.fractions(year)) if self.fractions else {}
        with self.lock:
            self.value_calls += 1
        self._maybe_fail()
        n = len(property_values_in_expression(obj, "gee_alt_layer_index")) or 3
        band = {
            "id": "value",
            "data_type": {"type": "PixelType", "precision": "float"},
            "crs": self.grid["crs"],
            "crs_transform": list(self.grid["crs_transform"]),
        }
        first = {"type": "Image", "bands": [band], "properties": {}}
        return [n, {}, first, [[f"l{i}" for i in range(n)], list(range(n))]]

    def compute_pixels(self, params):
        import ee

        years = years_in_expression(params["expression"])
        assert len(years) == 1, f"expected one year in the expression, found {years}"
        year = years.pop()
        with self.lock:
            self.pixel_calls[year] = self.pixel_calls.get(year, 0) + 1
        if self.fatal:
            raise ee.EEException(self.fatal)
        self._maybe_fail()
        g = params["grid"]
        a, c = self.grid["crs_transform"][0], self.grid["crs_transform"][2]
        e, f = self.grid["crs_transform"][4], self.grid["crs_transform"][5]
        col0 = round((g["affineTransform"]["translateX"] - c) / a)
        row0 = round((g["affineTransform"]["translateY"] - f) / e)
        wd, ht = g["dimensions"]["width"], g["dimensions"]["height"]
        assert g["crsCode"] == self.grid["crs"]
        data = self.arrays(year, self.grid)[:, row0 : row0 + ht, col0 : col0 + wd]
        assert data.shape[1:] == (ht, wd), (data.shape, ht, wd)
        with self.lock:
            self.tiles.append((year, row0, col0, ht, wd))
        data = np.where(np.isnan(data), XEE_MASK_VALUE, data).astype("float32")
        names = ["value"] + [f"value_{i}" for i in range(1, data.shape[0])]
        out = np.zeros((ht, wd), dtype=[(n, "<f4") for n in names])
        for i, name in enumerate(out.dtype.names):
            out[name] = data[i]
        return out

    def install(self, monkeypatch):
        import ee

        monkeypatch.setattr(ee.data, "computePixels", self.compute_pixels)
        monkeypatch.setattr(ee.data, "computeValue", self.compute_value)
        return self


def invocations(obj) -> list[tuple[str, dict]]:
    """Every algorithm call in an ``ee`` object's serialized graph: ``(name, arguments)``, with
    constant arguments resolved to plain values (other arguments left as graph nodes)."""
    import json

    import ee

    enc = json.loads(ee.serializer.toJSON(obj))
    values = enc["values"]

    def resolve(node):
        while isinstance(node, dict) and "valueReference" in node:
            node = values[node["valueReference"]]
        if isinstance(node, dict) and "constantValue" in node:
            return node["constantValue"]
        if isinstance(node, dict) and "arrayValue" in node:
            return [resolve(v) for v in node["arrayValue"]["values"]]
        return node

    out = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("functionInvocationValue")
            if f:
                out.append((f.get("functionName", ""), {k: resolve(v) for k, v in f.get("arguments", {}).items()}))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(values)
    return out


def calls_named(obj, name: str) -> list[dict]:
    """Arguments of every call of algorithm ``name`` in ``obj``'s graph."""
    return [args for n, args in invocations(obj) if n == name]


def constants_in(obj) -> list:
    """All constant values of ``obj``'s graph, and the items and keys of list/dict constants."""
    import json

    import ee

    out = []

    def flat(c):
        if isinstance(c, list):
            for x in c:
                flat(x)
        elif isinstance(c, dict):
            for k, x in c.items():
                out.append(k)
                flat(x)
        else:
            out.append(c)

    def walk(node):
        if isinstance(node, dict):
            if "constantValue" in node:
                out.append(node["constantValue"])
                flat(node["constantValue"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(ee.serializer.toJSON(obj)))
    return out


COLLECTION_REDUCTIONS = {
    "ImageCollection.mean",
    "ImageCollection.median",
    "ImageCollection.max",
    "ImageCollection.min",
    "ImageCollection.sum",
    "ImageCollection.count",
    "ImageCollection.mode",
    "ImageCollection.product",
    "ImageCollection.mosaic",
    "ImageCollection.qualityMosaic",
    "ImageCollection.reduce",
}


def unguarded_reductions(obj) -> list[str]:
    """Image-collection reductions in ``obj``'s graph whose input could be empty.

    Guarded inputs: ``ImageCollection.fromImages`` of a literal, non-empty list; a ``merge``
    whose second collection is guarded (the masked guard image of
    :func:`gee_alt.engines.ee.composite.guarded`); an unfiltered catalog collection
    (``ImageCollection.load`` through ``map``/``select`` only, e.g. the GLO-30 mosaic).
    Returns a description of each unguarded one (empty list: all guarded).
    """
    import json

    import ee

    values = json.loads(ee.serializer.toJSON(obj))["values"]

    def deref(node):
        while isinstance(node, dict) and "valueReference" in node:
            node = values[node["valueReference"]]
        return node

    def call(node):
        f = deref(node).get("functionInvocationValue") if isinstance(deref(node), dict) else None
        return (f["functionName"], f.get("arguments", {})) if f else (None, {})

    def guarded(node) -> bool:
        name, args = call(node)
        if name == "ImageCollection.fromImages":
            images = deref(args.get("images"))
            return isinstance(images, dict) and bool(images.get("arrayValue", {}).get("values"))
        if name == "ImageCollection.merge":
            return guarded(args["collection2"])
        if name == "ImageCollection.load":
            return True
        if name == "Collection.map":
            return unfiltered_catalog(args["collection"])
        return False

    def unfiltered_catalog(node) -> bool:
        name, args = call(node)
        if name == "ImageCollection.load":
            return True
        return name == "Collection.map" and unfiltered_catalog(args["collection"])

    bad = []
    seen = set()

    def walk(node):
        if isinstance(node, dict):
            f = node.get("functionInvocationValue")
            # the client names ImageCollection.mean() & co. "reduce.mean", "reduce.median", ...
            reduction = f and (f["functionName"] in COLLECTION_REDUCTIONS or f["functionName"].startswith("reduce."))
            if reduction:
                key = json.dumps(f, sort_keys=True)[:2000]
                if key not in seen:
                    seen.add(key)
                    if not guarded(f["arguments"]["collection"]):
                        bad.append(f"{f['functionName']} over {call(f['arguments']['collection'])[0]}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(values)
    return bad


class BatchStub:
    """Answers the batch-task calls of earthengine-api (``exportImage``, ``getOperation``,
    ``getAsset``) like Earth Engine's task queue would, with scripted states: each task goes
    PENDING -> RUNNING -> SUCCEEDED over ``polls_to_finish`` polls, or FAILED for a year in
    ``fail_years`` (with ``error``). A finished export makes its asset exist. Counts exports per
    year. Pixel pulls of the assets are answered by a :class:`StubServer`. Test data only."""

    def __init__(self, fail_years=(), error="Computation timed out.", polls_to_finish=2, existing_assets=()):
        self.fail_years = set(fail_years)
        self.error = error
        self.polls_to_finish = polls_to_finish
        self.assets: set[str] = set(existing_assets)
        self.ops: dict[str, dict] = {}
        self.exports: dict[int, int] = {}
        self.polls = 0

    def export_image(self, request_id, params):
        year = years_in_expression(params["expression"]).pop()
        name = params["assetExportOptions"]["earthEngineDestination"]["name"]
        asset = name.split("assets/", 1)[1] if name.startswith("projects/earthengine-legacy/") else name
        op = f"projects/p/operations/{request_id}"
        self.ops[op] = {"year": year, "asset": asset, "polls": 0}
        self.exports[year] = self.exports.get(year, 0) + 1
        return {"name": op, "metadata": {"state": "PENDING", "description": params.get("description", "")}}

    def get_operation(self, name):
        op = self.ops[name]
        op["polls"] += 1
        self.polls += 1
        meta = {"state": "RUNNING", "description": f"gee-alt {op['year']}"}
        out = {"name": name, "metadata": meta}
        if op["polls"] >= self.polls_to_finish:
            out["done"] = True
            if op["year"] in self.fail_years:
                meta["state"] = "FAILED"
                out["error"] = {"code": 3, "message": self.error}
            else:
                meta["state"] = "SUCCEEDED"
                self.assets.add(op["asset"])
        return out

    def get_asset(self, asset_id):
        import ee

        if asset_id not in self.assets:
            raise ee.EEException(f"Asset '{asset_id}' not found.")
        return {"id": asset_id, "type": "IMAGE"}

    def install(self, monkeypatch):
        import ee

        monkeypatch.setattr(ee.data, "exportImage", self.export_image)
        monkeypatch.setattr(ee.data, "getOperation", self.get_operation)
        monkeypatch.setattr(ee.data, "getAsset", self.get_asset)
        return self


class InputsStub(StubServer):
    """Serves the composites of ``--sharpen local`` (DEM, Landsat NDVI, MODIS NDVI, LST windows)
    from a local input layout's own rasters, each on its own grid: what Earth Engine would
    answer if its composites were exactly these files. ``served[kind] = (grid, arrays(year))``
    with ``kind`` the ``gee_alt_input`` code; the requested grid (CRS code and transform) must
    be that grid. Test data only."""

    def __init__(self, served: dict):
        first = next(iter(served.values()))[0]
        super().__init__(first)
        self.served = served
        self.requests: dict[tuple[int, int], int] = {}

    def compute_pixels(self, params):
        from gee_alt.engines.ee.local_inputs import INPUT_KIND, request_grid

        kinds = property_values_in_expression(params["expression"], INPUT_KIND)
        years = years_in_expression(params["expression"])
        assert len(kinds) == 1 and len(years) == 1, (kinds, years)
        kind, year = kinds.pop(), years.pop()
        grid, arrays = self.served[kind]
        g = params["grid"]
        assert g["crsCode"] == request_grid(grid)["crs"], (g["crsCode"], grid["crs"])
        a, c, e, f = (
            grid["crs_transform"][0],
            grid["crs_transform"][2],
            grid["crs_transform"][4],
            grid["crs_transform"][5],
        )
        assert abs(g["affineTransform"]["scaleX"] - a) < 1e-9 and abs(g["affineTransform"]["scaleY"] - e) < 1e-9
        col0 = round((g["affineTransform"]["translateX"] - c) / a)
        row0 = round((g["affineTransform"]["translateY"] - f) / e)
        wd, ht = g["dimensions"]["width"], g["dimensions"]["height"]
        with self.lock:
            self.requests[(kind, year)] = self.requests.get((kind, year), 0) + 1
        data = np.asarray(arrays(year), "float32")[:, row0 : row0 + ht, col0 : col0 + wd]
        assert data.shape[1:] == (ht, wd), (data.shape, ht, wd)
        data = np.where(np.isnan(data), XEE_MASK_VALUE, data).astype("float32")
        names = ["value"] + [f"value_{i}" for i in range(1, data.shape[0])]
        out = np.zeros((ht, wd), dtype=[(n, "<f4") for n in names])
        for i, name in enumerate(out.dtype.names):
            out[name] = data[i]
        return out
