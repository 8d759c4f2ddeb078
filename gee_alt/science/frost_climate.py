"""The multi-year (climatological) frost number: a year's permafrost state from the climate around it.

Permafrost is a thermal state of the ground, not of one year's weather: ground that stays at or
below 0 °C for at least two consecutive years (van Everdingen 1998, *Multi-language glossary of
permafrost and related ground-ice terms*, IPA). The frost number of Nelson & Outcalt (1987,
Arct. Alp. Res. 19:279-288) is accordingly defined on the *climatological* freezing and thawing
indices (multi-year means of DDF and DDT), F = √DDF̄ / (√DDF̄ + √DDT̄); applied to one year's
indices it follows that year's weather, and the mapped extent swings from year to year while the
ground under it does not.

The permafrost state of year ``Y`` is therefore judged on the indices of the years around ``Y``:
each index (°C·day) is smoothed over the record year by year and F is formed from the smoothed
indices. Two smoothers, both a local polynomial fit over a window of ``window_years`` calendar
years (missing years and unknown pixels simply left out):

- ``running_mean`` (degree 0): the centred running mean over ``Y − h .. Y + h``
  (``h = window_years // 2``); at the ends of the record the window is truncated to the years
  that exist (the first year averages ``Y .. Y + h``), so an edge year uses ``h + 1`` years.
  ``window_years = 1`` is the single-year frost number.
- ``trend`` (degree 1): a least-squares line of the index against the year over the same window
  (truncated the same way), evaluated at ``Y``; in the interior of the record this equals the
  running mean, at the ends it follows a trend instead of lagging behind it. A window at least
  twice the record length is one straight line through the whole record per pixel (it smears a
  step change, e.g. a mine, over the record: use it only where the ground changes smoothly).

A value needs at least half of the window's existing years (rounded up) with both indices, so a
masked year inside the record is bridged by its neighbours.

The third smoother, ``memory`` (the default), is causal: the ground's memory of the surface. A
centred window lets a year's permafrost know the weather of the years after it, which the ground
cannot. Heat conducted from the surface reaches the depth of zero annual amplitude (10-15 m) in
a time of the order of ``z**2 / kappa`` (kappa ≈ 1e-6 m²/s ≈ 31.5 m²/yr: 3-7 years; Lachenbruch
& Marshall 1986, Science 234:689-696, read the same lag out of borehole profiles), so the
state of year ``Y`` is an exponential memory of the indices of ``Y`` and the years before it,
with an e-folding time of ``window_years`` years (``q = exp(-1 / window_years)``)::

    s(Y) = q · s(Y − 1) + (1 − q) · index(Y)

A year missing from the record (or a masked value) leaves the state as it was. The record starts
in the middle of the ground's memory, so the state before the first year is the one a steady
climate trend leaves: the pixel's least-squares line over the whole record, evaluated at the year
before the first, minus the lag of the memory behind a line, ``slope · q / (1 − q)`` (exact for
this recursion; the mean and no lag where fewer than two years have a value). A value needs at
least half of the record's years (rounded up) with both indices. Under a steady trend the state
lags the surface by ``q / (1 − q)`` ≈ ``window_years − 0.5`` years in every year of the record.

Everything here is per pixel: a row strip of the cube is processed independently of the others.
"""

from __future__ import annotations

import numpy as np

from gee_alt.science.thaw import frost_number

#: how the per-year frost number is formed (``season.frost_number_method``)
FROST_NUMBER_METHODS = ("year", "running_mean", "trend", "memory")
DEFAULT_FROST_NUMBER_METHOD = "memory"
#: ``season.frost_number_years``: the window's calendar years (odd) of ``running_mean`` and
#: ``trend``; the e-folding time (years) of ``memory``
DEFAULT_FROST_NUMBER_YEARS = 4


def settings_of(attrs: dict) -> tuple[str, int]:
    """``(method, window_years)`` a cube's attrs (or a DDT COG's tags) state; a cube that states
    none gets the single-year frost number (``("year", 1)``: what runs made before the option had)."""
    method = str(attrs.get("frost_number_method", "year"))
    n = int(attrs.get("frost_number_years", 1))
    check_setting(method, n)
    return method, effective_window(method, n)


def check_setting(method: str, window_years: int) -> None:
    """Raise ``ValueError`` unless ``method`` is known and ``window_years`` fits it: an odd number
    of years >= 1 for the centred windows, >= 1 year of e-folding time for ``memory``."""
    _degree(method)
    n = int(window_years)
    if method == "memory":
        if n < 1:
            raise ValueError(f"the memory's e-folding time must be >= 1 year, got {n}")
    elif n < 1 or n % 2 == 0:
        raise ValueError(f"the {method!r} window must be an odd number of years >= 1, got {n}")


def tags_of(method: str, window_years: int) -> dict[str, str]:
    """The DDT COG tags that carry the setting (read back by :func:`settings_of`)."""
    return {"frost_number_method": method, "frost_number_years": str(effective_window(method, window_years))}


def window_of(years, year: int, window_years: int) -> np.ndarray:
    """Indices into ``years`` of the calendar years ``year − h .. year + h`` (``h = window_years // 2``)
    that are in the record: the centred window, truncated at the record's ends (``memory`` reads
    the whole record instead: :func:`memory_frost_number`)."""
    y = np.asarray(years, "int64")
    h = int(window_years) // 2
    return np.nonzero(np.abs(y - int(year)) <= h)[0]


class GroundMemory:
    """The ground's exponential memory (see the module docstring) of one index, streamed year by
    year, so that a caller never holds the record: :meth:`add` every year of the record once (in
    ascending order; fits the start line), then :meth:`step` every year again in the same order,
    each returning that year's state (float64; NaN where the pixel has fewer than ``ceil(k / 2)``
    finite values). :func:`ground_memory` is the same on a whole ``(k, ...)`` array, bit for bit.

    ``years``: the record's calendar years (ascending); ``memory_years``: the e-folding time."""

    def __init__(self, years, memory_years: float):
        self.years = np.asarray(years, "float64")
        if np.any(np.diff(self.years) <= 0):
            raise ValueError("the ground's memory needs the record's years in ascending order")
        self.q = float(np.exp(-1.0 / float(memory_years)))
        self._sums: list | None = None
        self._state = None
        self._added = 0

    def add(self, x: np.ndarray) -> None:
        """Year ``len(added)`` of the record (any shape, the same every year): into the line's sums."""
        t = float(self.years[self._added] - self.years[0])
        v = np.asarray(x, "float64")
        ok = np.isfinite(v)
        xv = np.where(ok, v, 0.0)
        if self._sums is None:
            self._sums = [np.zeros(v.shape, "float64") for _ in range(5)]
        n, st, stt, sx, stx = self._sums
        n += ok
        st += ok * t
        stt += ok * (t * t)
        sx += xv
        stx += xv * t
        self._added += 1

    def _start(self) -> None:
        if self._added != self.years.size:
            raise ValueError(f"add all {self.years.size} years of the record before stepping (have {self._added})")
        n, st, stt, sx, stx = self._sums
        q = self.q
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sx / n
            tm = st / n
            var = stt - n * tm * tm  # Σ(t - tm)² over the pixel's finite years
            cov = stx - n * tm * mean  # Σ(t - tm)(x - mean)
            slope = np.where(var > 0, cov / np.where(var > 0, var, 1.0), 0.0)
        # the steady-trend state the year before the first: the line there, lagged by slope * q / (1 - q)
        self._state = mean + slope * (-1.0 - tm) - slope * q / (1.0 - q)
        self._valid = n >= np.ceil(self.years.size / 2.0)
        self._sums = None

    def step(self, x: np.ndarray) -> np.ndarray:
        """The state after the next year of the record (``x``: that year's values again)."""
        if self._state is None:
            self._start()
        v = np.asarray(x, "float64")
        ok = np.isfinite(v)
        q = self.q
        # a calendar year missing from the record is no update, as a NaN is
        self._state = np.where(ok, q * self._state + (1.0 - q) * np.where(ok, v, 0.0), self._state)
        return np.where(self._valid, self._state, np.nan)


def ground_memory(values: np.ndarray, years, memory_years: float) -> np.ndarray:
    """The ground's exponential memory (see the module docstring) of ``values`` ``(k, ...)`` over
    the record's ``years`` ``(k,)`` (ascending), e-folding time ``memory_years``: ``(k, ...)``
    float64, the state after each year. NaN values leave the state unchanged; a pixel with fewer
    than ``ceil(k / 2)`` finite values is NaN throughout (:class:`GroundMemory` on the whole array)."""
    v = np.asarray(values)
    m = GroundMemory(years, memory_years)
    for i in range(v.shape[0]):
        m.add(v[i])
    return np.stack([m.step(v[i]) for i in range(v.shape[0])]) if v.shape[0] else np.empty(v.shape, "float64")


def smooth_at_year(values: np.ndarray, years, year: int, degree: int) -> np.ndarray:
    """A local polynomial (``degree`` 0: mean, 1: least-squares line) of ``values`` ``(k, ...)``
    over their ``years`` ``(k,)``, evaluated at ``year``; NaN values are left out, and a pixel
    with fewer than ``ceil(k / 2)`` finite values (or, for a line, fewer than 2 distinct years)
    is NaN. Float64 out, shape ``values.shape[1:]``."""
    v = np.asarray(values, "float64")
    t = (np.asarray(years, "float64") - float(year)).reshape((-1,) + (1,) * (v.ndim - 1))
    ok = np.isfinite(v)
    w = ok.astype("float64")
    x = np.where(ok, v, 0.0)
    n = w.sum(axis=0)
    need = np.ceil(v.shape[0] / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * x).sum(axis=0) / n
        if degree == 0:
            return np.where(n >= need, mean, np.nan)
        st = (w * t).sum(axis=0)
        stt = (w * t * t).sum(axis=0)
        sty = (w * t * x).sum(axis=0)
        det = n * stt - st * st
        slope = (n * sty - st * (w * x).sum(axis=0)) / det
        # the line at t = 0 (the target year): mean − slope · mean(t)
        at = mean - slope * st / n
        good = (n >= need) & (n >= 2) & (det > 1e-9 * np.maximum(n * stt, 1.0))
        return np.where(good, at, np.nan)


def _degree(method: str) -> int:
    if method not in FROST_NUMBER_METHODS:
        raise ValueError(f"frost number method must be one of {', '.join(FROST_NUMBER_METHODS)}, got {method!r}")
    return 1 if method == "trend" else 0


def frost_number_in_year(
    ddf_degc_days: np.ndarray, ddt_degc_days: np.ndarray, years, year: int, method: str, window_years: int
) -> np.ndarray:
    """The frost number (1) of ``year`` from the ``(k, ...)`` indices of the window's ``years``
    (°C·day; exactly the years :func:`window_of` picks, e.g. a slice of the cube): F of the
    smoothed DDF and DDT (see the module docstring). ``method="year"``: F of ``year`` alone."""
    years = [int(y) for y in years]
    if method == "year":
        i = years.index(int(year))
        return frost_number(ddf_degc_days[i], ddt_degc_days[i])
    if method == "memory":
        return memory_frost_number(ddf_degc_days, ddt_degc_days, years, window_years)[years.index(int(year))]
    degree = _degree(method)
    return frost_of_indices(
        smooth_at_year(ddf_degc_days, years, year, degree), smooth_at_year(ddt_degc_days, years, year, degree)
    )


def frost_of_indices(ddf_degc_days: np.ndarray, ddt_degc_days: np.ndarray) -> np.ndarray:
    """F (1) of smoothed (or remembered) DDF and DDT (°C·day), NaN where either is NaN."""
    both = np.isfinite(ddf_degc_days) & np.isfinite(ddt_degc_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(both, frost_number(ddf_degc_days, ddt_degc_days), np.nan)


def memory_frost_number(ddf_degc_days, ddt_degc_days, years, memory_years: float) -> np.ndarray:
    """``(k, ...)`` float32 frost number of every year of the record from its ``(k, ...)`` DDF and
    DDT (°C·day): F of the ground's memory of each index (:func:`ground_memory`)."""
    ddf = ground_memory(ddf_degc_days, years, memory_years)
    ddt = ground_memory(ddt_degc_days, years, memory_years)
    return frost_of_indices(ddf, ddt).astype("float32")


def effective_window(method: str, window_years: int) -> int:
    """The window the method uses: 1 for ``year``, else ``window_years``."""
    return 1 if method == "year" else int(window_years)


def window_setting(method: str, window_years: int) -> tuple[str, int]:
    """``(method, window)`` as computed: a window of one year is the year's own F, whatever the
    centred smoother (a line needs two years); ``memory`` stays itself."""
    _degree(method)
    n = effective_window(method, window_years)
    return ("year" if n == 1 and method != "memory" else method), n


def multiyear_frost_number(
    ddf_degc_days,
    ddt_degc_days,
    years,
    method: str = DEFAULT_FROST_NUMBER_METHOD,
    window_years: int = DEFAULT_FROST_NUMBER_YEARS,
    *,
    rows_per_chunk: int = 256,
):
    """``(year, y, x)`` float32 frost number of every year from ``(year, y, x)`` DDF and DDT
    (°C·day), numpy or dask. Numpy: computed by row chunks (float64 only for a chunk of the
    window's years). Dask: lazy, one task graph per year that reads only that year's window, so a
    row window of one year costs a row window of the window's years, never the whole cube."""
    years = [int(y) for y in years]
    method, n = window_setting(method, window_years)
    if hasattr(ddf_degc_days, "dask") or hasattr(ddt_degc_days, "dask"):
        import dask.array as dsa

        ddf = dsa.asarray(ddf_degc_days)
        ddt = dsa.asarray(ddt_degc_days)
        if method == "memory":  # one pass over the record per block of pixels
            f = ddf.rechunk({0: -1})

            def whole(a, b):
                return memory_frost_number(a, b, years, n)

            return dsa.map_blocks(whole, f, ddt.rechunk(f.chunks), dtype="float32")
        out = []
        for y in years:
            idx = window_of(years, y, n)
            lo, hi = int(idx[0]), int(idx[-1]) + 1
            sub = [years[k] for k in range(lo, hi)]

            def one(f, t, sub=sub, y=y):
                return frost_number_in_year(f, t, sub, y, method, n).astype("float32")

            out.append(
                dsa.map_blocks(
                    one,
                    ddf[lo:hi].rechunk({0: -1}),
                    ddt[lo:hi].rechunk({0: -1}),
                    drop_axis=0,
                    dtype="float32",
                )
            )
        return dsa.stack(out)
    ddf = np.asarray(ddf_degc_days)
    ddt = np.asarray(ddt_degc_days)
    out = np.empty(ddf.shape, "float32")
    step = max(1, int(rows_per_chunk))
    if method == "memory":
        for r0 in range(0, ddf.shape[1], step):
            r1 = min(ddf.shape[1], r0 + step)
            out[:, r0:r1] = memory_frost_number(ddf[:, r0:r1], ddt[:, r0:r1], years, n)
        return out
    for i, y in enumerate(years):
        idx = window_of(years, y, n)
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        sub = years[lo:hi]
        for r0 in range(0, ddf.shape[1], step):
            r1 = min(ddf.shape[1], r0 + step)
            out[i, r0:r1] = frost_number_in_year(ddf[lo:hi, r0:r1], ddt[lo:hi, r0:r1], sub, y, method, n)
    return out


class PixelFrost:
    """The frost number of a cube read at pixels only: ``(year, y, x)`` in :attr:`shape`, but
    :meth:`at` reads the DDF and DDT of the asked pixels (every year) and computes their frost
    number as :func:`multiyear_frost_number` does, elementwise, so the values equal the full
    map's at those pixels. For the fits on drill holes and map samples, which need a few thousand
    pixels: computing the lazy full-grid frost number of every year for them held ~0.7 GB at 512²."""

    def __init__(self, ddf_degc_days, ddt_degc_days, years, method: str, window_years: int):
        self.ddf, self.ddt = ddf_degc_days, ddt_degc_days
        self.years = [int(y) for y in years]
        self.method, self.window_years = method, int(window_years)
        self.shape = tuple(int(s) for s in ddf_degc_days.shape)

    def at(self, rows, cols) -> np.ndarray:
        """``(year, n)`` float32 frost number at pixels ``rows``/``cols`` (int arrays)."""
        f = multiyear_frost_number(
            _points(self.ddf, rows, cols)[:, None, :],
            _points(self.ddt, rows, cols)[:, None, :],
            self.years,
            self.method,
            self.window_years,
        )
        return f[:, 0, :]


def _points(arr, rows, cols) -> np.ndarray:
    """``(year, n)`` values of a ``(year, y, x)`` array or (lazy) DataArray at pixels ``rows``/``cols``."""
    rows, cols = np.asarray(rows, int), np.asarray(cols, int)
    if hasattr(arr, "isel"):  # xarray (e.g. backed by the DDT COGs): point reads, not the whole cube
        import xarray as xr

        return np.asarray(arr.isel(y=xr.DataArray(rows, dims="p"), x=xr.DataArray(cols, dims="p")).values)
    return np.asarray(arr)[:, rows, cols]


def frost_at_pixels(frost, rows, cols, year_index=None) -> np.ndarray:
    """The frost number at pixels ``rows``/``cols``: ``(year, n)``, or ``(n,)`` with one year
    index per pixel (``year_index``). ``frost``: a :class:`PixelFrost`, a ``(year, y, x)`` array
    or a (lazy) DataArray (only those pixels are read)."""
    f = frost.at(rows, cols) if isinstance(frost, PixelFrost) else _points(frost, rows, cols)
    if year_index is None:
        return f
    return f[np.asarray(year_index, int), np.arange(f.shape[1])]


def band_label(method: str, window_years: int) -> str:
    """The frost-number band description of the permafrost products: ``frost_number (...)``."""
    n = effective_window(method, window_years)
    if method == "memory":
        return f"frost_number (ground memory of DDF, DDT: e-folding {n} years)"
    if method == "year" or n == 1:
        return "frost_number (single year)"
    how = "running mean" if method == "running_mean" else "local linear trend"
    return f"frost_number ({how} of DDF, DDT over {n} years)"


def describe(method: str, window_years: int) -> str:
    """One line for band descriptions, tags and the README: which frost number it is."""
    n = effective_window(method, window_years)
    if method == "memory":
        return (
            "frost number sqrt(DDF)/(sqrt(DDF)+sqrt(DDT)) of the ground's memory of the indices: an "
            f"exponential memory of the year and the years before it, e-folding {n} years, started from "
            "the state a steady trend (the record's least-squares line) leaves (Nelson & Outcalt 1987)"
        )
    if method == "year" or n == 1:
        return "single-year frost number sqrt(DDF)/(sqrt(DDF)+sqrt(DDT)) of the year's own indices"
    how = "centred running mean" if method == "running_mean" else "centred local least-squares line"
    return (
        f"multi-year frost number sqrt(DDF)/(sqrt(DDF)+sqrt(DDT)) of the indices smoothed by a {how} "
        f"over {n} years (truncated at the record's ends; Nelson & Outcalt 1987)"
    )
