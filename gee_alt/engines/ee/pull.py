"""Pull yearly DDT images through xee into COGs and the shared DDT cube (the I/O edge).

Per year, the four output bands (:data:`LAYERS`) become a 4-image collection of one band each, so xee packs
them into the same ``computePixels`` request (its ``index`` chunk) and every request carries
all four bands of a tile. ``io_chunks`` are full-width row blocks sized just under the
request limit (48 MiB, counting xee's extra mask byte per pixel), so a year needs
``ceil(bytes / limit)`` requests (plus at most one for row rounding).

Retries: ``ee.data.computePixels``/``computeValue`` are wrapped for the duration of a pull.
Transient errors (HTTP 429/5xx, quota, "Too many concurrent aggregations", network) are
retried with exponential backoff and jitter; "User memory limit exceeded" and "Computation
timed out" (and any other error) stop at once with a one-line :class:`GeeAltError` saying
what to change. xee's own retry loop and the earthengine-api client's (``ee.data.setMaxRetries(0)``)
are turned off for the duration, so the policy lives here and only here.

Resume: each finished year is written atomically to ``RUN/ddt/ddt_YYYY.tif`` (the one DDT
writer, :func:`gee_alt.runs.write_ddt_year`) and recorded in the run's resume record
(:class:`gee_alt.runs.Progress`, file sha256 + graph sha256 as key); a rerun with the same
graph skips it without any request.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gee_alt import runs
from gee_alt.cube import DDF_VAR, DDT_SD_VAR, DDT_VAR, NOBS_VAR, make_ddt_cube
from gee_alt.errors import GeeAltError
from gee_alt.grid import Grid, shape_yx
from gee_alt.io import atomic_path, read_raster, remove_stray_temporaries
from gee_alt.science.frost_climate import DEFAULT_FROST_NUMBER_METHOD, DEFAULT_FROST_NUMBER_YEARS, tags_of
from gee_alt.science.thaw import FROST_NUMBER_PERMAFROST

LAYERS = (DDT_VAR, DDT_SD_VAR, NOBS_VAR, DDF_VAR)
REQUEST_BYTE_LIMIT = 48 * 2**20  # computePixels limit (bytes, uncompressed)
BYTES_PER_PIXEL = 4 + 1  # float32 + Earth Engine's mask byte (as xee counts)
MAX_SIDE_PX = 32768  # computePixels limit per side
FIELD_LAYERS = ("elevation_m", "ndvi_mean")  # static site-screen fields, pulled once per run
FIELDS_KEY = "site_fields"
EE_METHOD = "RF sharpening (Earth Engine engine, smileRandomForest)"

TRANSIENT_STATUS = re.compile(r"(?<![\w.])(429|500|502|503|504)(?![\w.])")  # HTTP codes as words only
TRANSIENT_MARKERS = (
    "too many concurrent aggregations",
    "too many requests",
    "quota exceeded",
    "rate limit",
    "internal error",
    "service unavailable",
    "backend error",
    "temporarily",
    "deadline exceeded",
    "connection reset",
    "read timed out",
    "timeout",
    "connection aborted",
    "remote end closed",
)
MAX_DELAY_S = 60.0  # one backoff delay never exceeds this
MAX_TOTAL_SLEEP_S = 900.0  # nor all the backoff of one pull (then: stop with one line)
FATAL_GUIDANCE = {
    "user memory limit exceeded": "lower ee_sampling.num_samples, raise ee_sampling.tile_scale or use a smaller AOI",
    "computation timed out": "lower ee_sampling.num_samples or rf.n_estimators, or use a smaller AOI",
}


# ----------------------------------------------------------------------------- request sizing


def io_chunks_for(grid: Grid, n_layers: int = len(LAYERS), limit: int = REQUEST_BYTE_LIMIT) -> dict[str, int]:
    """xee ``io_chunks`` (``index``, ``width``, ``height`` in images/pixels) for one year.

    All layers go in every request; the tile shape (≤ 32768 px a side, ≤ ``limit`` bytes) is
    the one needing the fewest requests over ``nx`` = 1, 2, ... column blocks, with equal
    row blocks.
    """
    w, h = grid["shape_2d"]
    per_px = n_layers * BYTES_PER_PIXEL
    best = None
    for nx in range(max(1, math.ceil(w / MAX_SIDE_PX)), min(w, 256) + 1):
        width = math.ceil(w / nx)
        rows = min(h, MAX_SIDE_PX, limit // (per_px * width))
        if rows < 1:
            continue
        ny = math.ceil(h / rows)
        height = math.ceil(h / ny)
        total = math.ceil(w / width) * ny
        if best is None or total < best[0]:
            best = (total, width, height)
        if ny == 1:
            break
    if best is None:
        raise GeeAltError(f"request limit {limit} bytes is too small for one pixel of {n_layers} layers")
    return {"index": n_layers, "width": best[1], "height": best[2]}


def requests_per_year(grid: Grid, chunks: dict[str, int]) -> int:
    """computePixels requests xee issues for one year with ``chunks``."""
    w, h = grid["shape_2d"]
    return math.ceil(w / chunks["width"]) * math.ceil(h / chunks["height"])


def bytes_per_year(grid: Grid, n_layers: int = len(LAYERS)) -> int:
    """Uncompressed bytes pulled per year (float32 + mask byte per pixel and layer)."""
    w, h = grid["shape_2d"]
    return w * h * n_layers * BYTES_PER_PIXEL


# ----------------------------------------------------------------------------- retries


def classify_error(exc: BaseException) -> str:
    """``"transient"`` (retry), or ``"fatal"`` for everything else."""
    msg = str(exc).lower()
    if any(k in msg for k in FATAL_GUIDANCE):
        return "fatal"
    if isinstance(exc, (ConnectionError, TimeoutError)) or any(k in msg for k in TRANSIENT_MARKERS):
        return "transient"
    if TRANSIENT_STATUS.search(msg):  # "HTTP 503", "(429)"; not "50331648 bytes" or "5000 elements"
        return "transient"
    return "fatal"


def fatal_error(exc: BaseException, what: str) -> GeeAltError:
    """A one-line :class:`GeeAltError` for a non-retryable Earth Engine error, with guidance."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    for marker, advice in FATAL_GUIDANCE.items():
        if marker in first.lower():
            return GeeAltError(f"Earth Engine stopped {what}: {first} — {advice}")
    return GeeAltError(f"Earth Engine error {what} (not retried): {first}")


@dataclass
class RetryingCall:
    """Wrap an ``ee.data`` call with backoff for transient errors (delays in seconds).

    Delay before retry ``n`` (0-based) = ``min(initial_delay_s * 2**n * (1 + u), max_delay_s)``,
    ``u`` uniform in [0, 1) from a seeded generator; the retries of one wrapper sleep at most
    ``max_total_sleep_s`` in all, so a pull never waits without bound. Counts ``calls``
    (attempts), ``retries`` and ``slept_s``.
    """

    fn: Callable
    what: str
    max_retries: int = 6
    initial_delay_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    seed: int = 0
    max_delay_s: float = MAX_DELAY_S
    max_total_sleep_s: float = MAX_TOTAL_SLEEP_S
    calls: int = 0
    retries: int = 0
    slept_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self._rng = random.Random(self.seed)

    def __call__(self, *args, **kwargs):
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.calls += 1
            try:
                return self.fn(*args, **kwargs)
            except GeeAltError:
                raise
            except Exception as exc:  # ee.EEException, HTTP and socket errors
                if classify_error(exc) == "fatal":
                    raise fatal_error(exc, self.what) from None
                with self._lock:
                    jitter = self._rng.random()
                    delay = min(self.initial_delay_s * (2 ** min(attempt, 60)) * (1 + jitter), self.max_delay_s)
                    out_of_time = self.slept_s + delay > self.max_total_sleep_s
                    if not (attempt == self.max_retries or out_of_time):
                        self.retries += 1
                        self.slept_s += delay
                if attempt == self.max_retries or out_of_time:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    raise GeeAltError(
                        f"Earth Engine still failing {self.what} after {attempt} retries "
                        f"({self.slept_s:.0f} s of backoff): {first} — try again later (the run "
                        "resumes) or lower pull.max_workers"
                    ) from None
                self.sleep(delay)


@contextlib.contextmanager
def retrying_ee_calls(max_retries: int, initial_delay_s: float, sleep=time.sleep) -> Iterator[tuple]:
    """Replace ``ee.data.computePixels``/``computeValue`` by :class:`RetryingCall` wrappers inside."""
    import ee

    old_pixels, old_value = ee.data.computePixels, ee.data.computeValue
    pixels = RetryingCall(old_pixels, "computing pixels", max_retries, initial_delay_s, sleep, seed=1)
    value = RetryingCall(old_value, "computing metadata", max_retries, initial_delay_s, sleep, seed=2)
    state = ee.data._get_state()  # earthengine-api < 2 (pinned): the client's own retry count
    old_client_retries = state.max_retries
    ee.data.setMaxRetries(0)  # retries live in one layer: this one
    ee.data.computePixels, ee.data.computeValue = pixels, value
    try:
        yield pixels, value
    finally:
        ee.data.computePixels, ee.data.computeValue = old_pixels, old_value
        ee.data.setMaxRetries(old_client_retries)


# ----------------------------------------------------------------------------- pulling one year


def layer_collection(image, year: int, layers: tuple[str, ...] = LAYERS, properties: dict | None = None):
    """The image's bands as a collection of one-band (``value``) images, in ``layers`` order
    (``year`` 0 for the static site-screen fields); ``properties`` are set on each."""
    import ee

    return ee.ImageCollection.fromImages(
        [
            image.select(name)
            .rename("value")
            .toFloat()
            .set({"gee_alt_year": year, "gee_alt_layer": name, "gee_alt_layer_index": i, **(properties or {})})
            for i, name in enumerate(layers)
        ]
    )


def pull_image(
    image,
    layers: tuple[str, ...],
    grid: Grid,
    *,
    year: int = 0,
    max_workers: int = 8,
    request_byte_limit: int = REQUEST_BYTE_LIMIT,
    properties: dict | None = None,
) -> np.ndarray:
    """Pull ``layers`` of an image on ``grid``: float32 ``(layer, y, x)``, NaN = masked.

    Call inside :func:`retrying_ee_calls` (xee's own retries are off).
    """
    import xarray as xr

    chunks = io_chunks_for(grid, len(layers), request_byte_limit)
    ds = xr.open_dataset(
        layer_collection(image, year, layers, properties),
        engine="ee",
        crs=grid["crs"],
        crs_transform=tuple(grid["crs_transform"]),
        shape_2d=tuple(grid["shape_2d"]),
        io_chunks=chunks,
        primary_dim_property="gee_alt_layer_index",
        request_byte_limit=request_byte_limit,
        executor_kwargs={"max_workers": max_workers},
        getitem_kwargs={"max_retries": 0, "initial_delay": 0},
    )
    arr = np.asarray(ds["value"].values, dtype="float32")
    if arr.shape != (len(layers), *shape_yx(grid)):
        raise GeeAltError(
            f"Earth Engine returned shape {arr.shape} for {year or 'the site fields'}, expected "
            f"{(len(layers), *shape_yx(grid))}"
        )
    return arr


def pull_year(
    image, year: int, grid: Grid, *, max_workers: int = 8, request_byte_limit: int = REQUEST_BYTE_LIMIT
) -> np.ndarray:
    """Pull one year's DDT image on ``grid``: float32 ``(layer, y, x)`` in :data:`LAYERS` order, NaN = masked."""
    return pull_image(image, LAYERS, grid, year=year, max_workers=max_workers, request_byte_limit=request_byte_limit)


def thaw_curve(values: dict | None, knots: list[float]) -> np.ndarray:
    """The cube's ``ddt_fraction_by_doy`` (366 values, day 1..366) from a year's thaw-progress
    request (:func:`gee_alt.engines.ee.thaw.thaw_fraction_request`): fraction 0 at the first knot,
    the served medians ``fKK`` at the others, linear between, 0 before and 1 after (the local
    :func:`gee_alt.science.thaw.ddt_fraction_by_doy`); all NaN when no pixel had a season DDT."""
    values = values or {}
    y = [values.get(f"f{k:02d}") for k in range(len(knots) - 1)]
    if any(v is None for v in y):
        return np.full(366, np.nan)
    ys = np.concatenate([[0.0], np.asarray(y, "float64")])
    return np.interp(np.arange(1, 367, dtype="float64"), knots, ys, left=0.0, right=1.0)


def pull_thaw_curve(request, knots: list[float]) -> np.ndarray:
    """Compute a year's thaw-progress request (one ``computeValue``; call inside
    :func:`retrying_ee_calls`) and return :func:`thaw_curve`."""
    import ee

    return thaw_curve(ee.data.computeValue(request), knots)


def _tag_curve(path) -> np.ndarray | None:
    import json

    import rasterio

    with rasterio.open(path) as src:
        tag = src.tags().get("ddt_fraction_by_doy")
    return None if tag is None else np.asarray(json.loads(tag), "float32")


# ----------------------------------------------------------------------------- runs and resume


def graph_sha256(image) -> str:
    """sha256 of the serialized graph (deterministic: same config → same hash)."""
    import ee

    return hashlib.sha256(ee.serializer.toJSON(image).encode("utf-8")).hexdigest()


@dataclass
class BatchOptions:
    """Where and how batch years run: asset folder (:func:`gee_alt.engines.ee.tasks.asset_root`),
    study name (in asset names), seconds between polls, and an optional cap on polls."""

    asset_root: str
    study: str
    poll_interval_s: float = 30.0
    max_polls: int | None = None


def run_years(
    out_dir: str | Path,
    years: list[int],
    grid: Grid,
    image_for_year: Callable[[int], object],
    *,
    progress_record: runs.Progress | None = None,
    max_workers: int = 8,
    max_retries: int = 6,
    initial_delay_s: float = 0.5,
    request_byte_limit: int = REQUEST_BYTE_LIMIT,
    thaw_season: str = "",
    method: str = EE_METHOD,
    progress: Callable[[int, str], None] | None = None,
    sleep=time.sleep,
    path_for_year: Callable[[int], str] | None = None,
    batch: BatchOptions | None = None,
    frost_number_min: float = FROST_NUMBER_PERMAFROST,
    thaw_fraction_for_year: Callable[[int], tuple] | None = None,
    frost_number_method: str = DEFAULT_FROST_NUMBER_METHOD,
    frost_number_years: int = DEFAULT_FROST_NUMBER_YEARS,
    permafrost_criterion: str = "probability",
    permafrost_shift_weights: bool = True,
):
    """Compute and pull every year not already done into ``RUN/ddt``; return the DDT cube of the
    years that succeeded (``None`` if none did).

    ``image_for_year(year)`` builds the year's graph (bands :data:`LAYERS`). Each year goes the
    way ``path_for_year(year)`` says (default ``"interactive"``): ``interactive`` pulls the
    graph with xee (``computePixels``); ``batch`` exports it to an asset with a batch task
    (:mod:`gee_alt.engines.ee.tasks`; every batch year is submitted first, so they run in
    parallel while interactive years are pulled) and pulls the finished asset.

    Each pulled year is written with :func:`gee_alt.runs.write_ddt_year` (tag ``graph_sha256``)
    and recorded in ``progress_record`` keyed by its graph hash, so a rerun skips it without any
    request. A year that fails (graph, task or pull) is recorded with its one-line reason
    (:meth:`gee_alt.runs.Progress.mark_failed`) and skipped; the others continue.
    ``progress(year, status)`` hears ``skipped``, ``pulled``, ``failed`` (terminal) and batch
    task states (``submitted``, ``RUNNING``, ...). ``frost_number_min``: the permafrost
    threshold on the frost number (``season.frost_number_min``), tagged on each year and on the cube;
    ``frost_number_method``/``frost_number_years``: how the cube forms the frost number of a year
    (``season.frost_number_*``, :mod:`gee_alt.science.frost_climate`), tagged and on the cube alike;
    ``permafrost_criterion``/``permafrost_shift_weights``: the downstream's permafrost rule
    (``season.permafrost_*``), tagged and on the cube alike.
    ``thaw_fraction_for_year(year)``: ``(request, knots)`` of the year's thaw progress
    (:func:`gee_alt.engines.ee.thaw.thaw_fraction_request`), computed with the year and written
    as the COG's ``ddt_fraction_by_doy`` tag, the cube's variable of that name (for in-situ
    ``obs_date``); ``None``: no thaw-progress curve.
    """
    import ee

    from gee_alt.engines.ee import tasks

    out_dir = Path(out_dir)
    if progress_record is None:
        progress_record = runs.Progress(out_dir, {"engine": "ee", "grid": _plain(grid)})
        progress_record.start(resume=True)
    if (out_dir / runs.DDT_DIR).is_dir():
        remove_stray_temporaries(out_dir / runs.DDT_DIR)  # left by a killed run (atomic writes: never a product)
    path_for_year = path_for_year or (lambda year: "interactive")
    arrays: dict[int, np.ndarray] = {}
    curves: dict[int, np.ndarray | None] = {}

    def tell(year, status):
        if progress:
            progress(year, status)

    def failed(year, reason):
        progress_record.mark_failed(year, reason)
        tell(year, "failed")

    def pull_and_write(year, image, ghash, extra=None):
        with retrying_ee_calls(max_retries, initial_delay_s, sleep) as (pixels, value):
            data = pull_year(image, year, grid, max_workers=max_workers, request_byte_limit=request_byte_limit)
            curve = pull_thaw_curve(*thaw_fraction_for_year(year)) if thaw_fraction_for_year else None
        path = runs.write_ddt_year(
            out_dir,
            year,
            data[0],
            grid,
            ddt_sd_degc_days=data[1],
            n_obs=data[2],
            ddf_degc_days=data[3],
            ddt_fraction_by_doy=curve,
            engine="ee",
            method=method,
            season=thaw_season,
            extra_tags={
                "graph_sha256": ghash,
                "frost_number_min": f"{frost_number_min:g}",
                **tags_of(frost_number_method, frost_number_years),
                **runs.permafrost_rule_tags(permafrost_criterion, permafrost_shift_weights),
                **(extra or {}),
            },
        )
        progress_record.mark_done(
            year, [path], key=ghash, requests=pixels.calls, retries=pixels.retries + value.retries, **(extra or {})
        )
        arrays[year] = data
        curves[year] = None if curve is None else _tag_curve(path)  # as written (5 decimals), as a rerun reads it
        tell(year, "pulled")

    todo = []
    for year in years:
        try:
            image = image_for_year(year)
            ghash = graph_sha256(image)
        except (GeeAltError, ee.EEException) as exc:
            failed(year, f"graph not built: {_first_line(exc)}")
            continue
        if progress_record.is_done(year, key=ghash):
            arrays[year] = read_raster(runs.ddt_path(out_dir, year)).data[: len(LAYERS)]
            curves[year] = _tag_curve(runs.ddt_path(out_dir, year))
            tell(year, "skipped")
            continue
        todo.append((year, image, ghash, path_for_year(year)))
    submitted: list = []
    for year, image, ghash, path in todo:
        if path != "batch":
            continue
        if batch is None:
            raise GeeAltError("internal: a batch year needs BatchOptions")
        asset = tasks.asset_id(batch.asset_root, batch.study, year, ghash)
        submitted.append(
            tasks.submit(year, image, ghash, asset, grid, progress_record, f"gee-alt {batch.study} {year}")
        )
        tell(year, "submitted")
    for year, image, ghash, path in todo:
        if path == "batch":
            continue
        try:
            pull_and_write(year, image, ghash)
        except (GeeAltError, ee.EEException) as exc:
            failed(year, _first_line(exc))
    if submitted:
        tasks.wait_for_tasks(
            submitted,
            poll_interval_s=batch.poll_interval_s,
            sleep=sleep,
            on_state=tell,
            max_polls=batch.max_polls,
        )
        for t in submitted:
            if t.state != "COMPLETED":
                progress_record.note_task(t.year, None)  # a failed task is resubmitted by the next attempt
                failed(t.year, f"batch task {t.state}: {t.error}")
                continue
            try:
                pull_and_write(t.year, ee.Image(t.asset), t.key, {"asset": t.asset})
                progress_record.note_task(t.year, None)
            except (GeeAltError, ee.EEException) as exc:
                failed(t.year, f"pulling {t.asset}: {_first_line(exc)}")
    if not arrays:
        return None
    done = [y for y in years if y in arrays]
    fractions = [curves.get(y) for y in done]
    return cube_from_years(
        {y: arrays[y] for y in done},
        grid,
        thaw_season,
        frost_number_min,
        None if any(f is None for f in fractions) else np.stack(fractions),
        frost_number_method=frost_number_method,
        frost_number_years=frost_number_years,
        permafrost_criterion=permafrost_criterion,
        permafrost_shift_weights=permafrost_shift_weights,
    )


def _first_line(exc) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def pull_fields(
    out_dir: str | Path,
    image,
    grid: Grid,
    *,
    progress_record: runs.Progress,
    max_workers: int = 8,
    max_retries: int = 6,
    initial_delay_s: float = 0.5,
    request_byte_limit: int = REQUEST_BYTE_LIMIT,
    sleep=time.sleep,
) -> np.ndarray:
    """Pull the run's static site-screen fields (bands :data:`FIELD_LAYERS`) once: float32
    ``(layer, y, x)``, kept in ``RUN/.resume/site_fields.npy`` until the run completes."""
    ghash = graph_sha256(image)
    path = progress_record.extra_file(f"{FIELDS_KEY}.npy")
    if progress_record.is_done(FIELDS_KEY, key=ghash):
        return np.load(path)
    with retrying_ee_calls(max_retries, initial_delay_s, sleep):
        data = pull_image(image, FIELD_LAYERS, grid, max_workers=max_workers, request_byte_limit=request_byte_limit)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, data)
    progress_record.mark_done(FIELDS_KEY, [path], key=ghash)
    return data


def _plain(grid: Grid) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in grid.items()}


def cube_from_years(
    arrays: dict[int, np.ndarray],
    grid: Grid,
    thaw_season: str = "",
    frost_number_min: float = FROST_NUMBER_PERMAFROST,
    ddt_fraction_by_doy: np.ndarray | None = None,
    *,
    frost_number_method: str = DEFAULT_FROST_NUMBER_METHOD,
    frost_number_years: int = DEFAULT_FROST_NUMBER_YEARS,
    permafrost_criterion: str = "probability",
    permafrost_shift_weights: bool = True,
):
    """The shared DDT cube from ``{year: (layer, y, x)}`` arrays in :data:`LAYERS` order
    (``n_obs`` NaN → 0); the cube derives the frost number from DDF and DDT (of the years
    around each year as ``frost_number_method``/``frost_number_years`` say).
    ``ddt_fraction_by_doy``: ``(year, 366)`` thaw progress in sorted-year order, or ``None``."""
    years = sorted(arrays)
    stack = np.stack([arrays[y] for y in years]).astype("float32")
    n_obs = np.nan_to_num(stack[:, 2], nan=0.0).round().astype("int16")
    return make_ddt_cube(
        stack[:, 0],
        years,
        grid,
        ddt_sd_degc_days=stack[:, 1],
        n_obs=n_obs,
        ddf_degc_days=stack[:, 3],
        ddt_fraction_by_doy=ddt_fraction_by_doy,
        engine="ee",
        thaw_season=thaw_season,
        extra_attrs={
            "method": EE_METHOD,
            "frost_number_min": float(frost_number_min),
            "frost_number_method": frost_number_method,
            "frost_number_years": int(frost_number_years),
            "permafrost_criterion": str(permafrost_criterion),
            "permafrost_shift_weights": int(bool(permafrost_shift_weights)),
        },
    )
