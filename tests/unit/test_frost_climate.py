"""The multi-year frost number: hand-computed running means and lines with the record's edges,
missing years, a synthetic climate with weather noise (the state must not follow single-year
weather), numpy = dask, and the setting carried by the cube, the DDT COGs and the config."""

import dask.array as dsa
import numpy as np
import pytest

from gee_alt import runs
from gee_alt.config import SeasonConfig
from gee_alt.cube import FROST_VAR, make_ddt_cube
from gee_alt.grid import make_grid
from gee_alt.science.frost_climate import (
    ground_memory,
    multiyear_frost_number,
    settings_of,
    smooth_at_year,
    window_of,
)

YEARS = [2000, 2001, 2002, 2003, 2004]
GRID = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (3, 2))


def _f(ddf, ddt):
    return np.sqrt(ddf) / (np.sqrt(ddf) + np.sqrt(ddt))


def test_window_is_centred_and_truncated_at_the_ends():
    assert window_of(YEARS, 2000, 3).tolist() == [0, 1]
    assert window_of(YEARS, 2002, 3).tolist() == [1, 2, 3]
    assert window_of(YEARS, 2004, 5).tolist() == [2, 3, 4]
    assert window_of(YEARS, 2002, 1).tolist() == [2]
    assert window_of([2000, 2005, 2010], 2005, 9).tolist() == [1]  # calendar years, not list positions


def test_running_mean_by_hand_with_edges():
    ddf = np.array([100.0, 200.0, 400.0, 800.0, 1600.0])[:, None, None] * np.ones((5, 2, 3))
    ddt = np.full((5, 2, 3), 400.0)
    got = multiyear_frost_number(ddf, ddt, YEARS, "running_mean", 3)
    want = [_f(150.0, 400.0), _f(700 / 3, 400.0), _f(1400 / 3, 400.0), _f(2800 / 3, 400.0), _f(1200.0, 400.0)]
    np.testing.assert_allclose(got[:, 1, 2], want, rtol=1e-6)
    assert got.dtype == np.float32
    # window 1 and the "year" method: the single-year frost number
    single = _f(ddf, ddt)[:, 0, 0]
    np.testing.assert_allclose(multiyear_frost_number(ddf, ddt, YEARS, "running_mean", 1)[:, 0, 0], single)
    np.testing.assert_allclose(multiyear_frost_number(ddf, ddt, YEARS, "year", 9)[:, 0, 0], single)
    np.testing.assert_allclose(multiyear_frost_number(ddf, ddt, YEARS, "trend", 1)[:, 0, 0], single)


def test_a_missing_year_is_bridged_and_too_few_years_give_nan():
    ddf = np.array([100.0, np.nan, 400.0, 800.0, 1600.0])[:, None, None] * np.ones((5, 2, 3))
    ddt = np.full((5, 2, 3), 400.0)
    got = multiyear_frost_number(ddf, ddt, YEARS, "running_mean", 3)[:, 0, 0]
    # 2001: (100 + 400) / 2 (two of three years, >= ceil(3/2)); 2000: 100 alone (one of two, >= 1)
    np.testing.assert_allclose(got[:2], [_f(100.0, 400.0), _f(250.0, 400.0)], rtol=1e-6)
    ddf[1:4] = np.nan
    got = multiyear_frost_number(ddf, ddt, YEARS, "running_mean", 3)[:, 0, 0]
    assert np.isnan(got[2]) and np.isfinite(got[0])  # 2002: no year of 2001-2003 known


def test_local_line_is_exact_on_a_linear_record_and_the_mean_lags_at_the_edges():
    years = list(range(2000, 2011))
    ddt = (1000.0 + 20.0 * np.arange(11))[:, None]
    line = smooth_at_year(ddt[0:4], years[0:4], 2000, 1)  # the 7-year window at 2000: 2000-2003
    np.testing.assert_allclose(line, [1000.0])
    np.testing.assert_allclose(smooth_at_year(ddt[0:4], years[0:4], 2000, 0), [1030.0])  # mean of 2000-03
    f = multiyear_frost_number(np.full((11, 1), 900.0), ddt, years, "trend", 7)[:, 0]
    np.testing.assert_allclose(f, _f(900.0, ddt[:, 0]), rtol=1e-6)  # every year, edges included


def test_state_does_not_flip_with_single_year_weather():
    """Climatological F known by construction (0.47..0.53 around the threshold 0.5) under a
    regional weather noise (DDT and DDF ±15 %, one draw per year for the whole area, plus a
    little local noise): the single-year state flips with the weather, the 9-year state follows
    the climate."""
    rng = np.random.default_rng(3)
    n_years, n_px = 25, 2000
    years = list(range(2000, 2000 + n_years))
    f_clim = rng.uniform(0.47, 0.53, n_px)
    ddt_clim = rng.uniform(1200.0, 2000.0, n_px)
    ddf_clim = ddt_clim * (f_clim / (1 - f_clim)) ** 2
    regional = rng.normal(0.0, 0.15, (n_years, 2))
    local = rng.normal(0.0, 0.03, (n_years, 2, n_px))
    ddt = ddt_clim * (1 + regional[:, 0, None] + local[:, 0])
    ddf = ddf_clim * (1 + regional[:, 1, None] + local[:, 1])
    truth = f_clim >= 0.5
    one = multiyear_frost_number(ddf[:, None], ddt[:, None], years, "year", 1)[:, 0] >= 0.5
    many = multiyear_frost_number(ddf[:, None], ddt[:, None], years, "running_mean", 9)[:, 0] >= 0.5
    wrong_one, wrong_many = np.mean(one != truth), np.mean(many != truth)
    flips_one = np.mean(np.abs(np.diff(one.astype(int), axis=0)).sum(axis=0))
    flips_many = np.mean(np.abs(np.diff(many.astype(int), axis=0)).sum(axis=0))
    assert wrong_one > 0.15 and wrong_many < wrong_one / 2
    assert flips_one > 3 and flips_many < flips_one / 4
    # the extent's year-to-year swing: the single-year area follows the regional weather
    assert np.std(one.mean(axis=1)) > 2 * np.std(many.mean(axis=1))


def test_dask_equals_numpy():
    rng = np.random.default_rng(0)
    ddf = rng.uniform(500, 3000, (5, 6, 4)).astype("float32")
    ddt = rng.uniform(500, 3000, (5, 6, 4)).astype("float32")
    ddt[2, 1, 1] = np.nan
    for method in ("running_mean", "trend", "year"):
        mem = multiyear_frost_number(ddf, ddt, YEARS, method, 3, rows_per_chunk=2)
        lazy = multiyear_frost_number(
            dsa.from_array(ddf, chunks=(1, 3, 4)), dsa.from_array(ddt, chunks=(1, 3, 4)), YEARS, method, 3
        )
        assert isinstance(lazy, dsa.Array)
        np.testing.assert_array_equal(np.asarray(lazy[:, 4:6].compute()), mem[:, 4:6])
        np.testing.assert_array_equal(np.asarray(lazy.compute()), mem)


def test_frost_number_read_at_pixels_equals_the_whole_map_there():
    """PixelFrost (the drill-hole fits' reader: DDF and DDT of the asked pixels only) gives
    exactly the whole map's frost number at those pixels, from arrays and from lazy DataArrays."""
    import xarray as xr

    from gee_alt.science.frost_climate import PixelFrost, frost_at_pixels

    rng = np.random.default_rng(1)
    ddf = rng.uniform(500, 3000, (5, 6, 4)).astype("float32")
    ddt = rng.uniform(500, 3000, (5, 6, 4)).astype("float32")
    ddt[2, 1, 1] = np.nan
    rows, cols = np.array([0, 1, 5, 3, 1]), np.array([3, 1, 0, 2, 1])
    for method in ("running_mean", "trend", "year"):
        full = multiyear_frost_number(ddf, ddt, YEARS, method, 3)
        lazy = [xr.DataArray(dsa.from_array(a, chunks=(1, 3, 4)), dims=("year", "y", "x")) for a in (ddf, ddt)]
        for src in ((ddf, ddt), lazy):
            pf = PixelFrost(*src, YEARS, method, 3)
            assert pf.shape == (5, 6, 4)
            np.testing.assert_array_equal(frost_at_pixels(pf, rows, cols), full[:, rows, cols])
            k = np.array([0, 4, 2, 2, 1])
            np.testing.assert_array_equal(frost_at_pixels(pf, rows, cols, year_index=k), full[k, rows, cols])


def test_cube_states_and_uses_the_setting_and_the_ddt_cogs_carry_it(tmp_path):
    ddf = np.array([100.0, 200.0, 400.0, 800.0, 1600.0])[:, None, None] * np.ones((5, 2, 3))
    ddt = np.full((5, 2, 3), 400.0)
    attrs = {"frost_number_method": "running_mean", "frost_number_years": 3}
    cube = make_ddt_cube(ddt, YEARS, GRID, ddf_degc_days=ddf, extra_attrs=attrs)
    np.testing.assert_allclose(cube[FROST_VAR].values[0, 0, 0], _f(150.0, 400.0), rtol=1e-6)
    assert "running mean over 3 years" in cube[FROST_VAR].attrs["long_name"]
    plain = make_ddt_cube(ddt, YEARS, GRID, ddf_degc_days=ddf)  # states nothing: the single-year F
    np.testing.assert_allclose(plain[FROST_VAR].values[0, 0, 0], _f(100.0, 400.0), rtol=1e-6)
    assert plain.attrs["frost_number_method"] == "year" and plain.attrs["frost_number_years"] == 1
    for i, y in enumerate(YEARS):
        tags = {k: str(v) for k, v in attrs.items()}
        runs.write_ddt_year(
            tmp_path, y, ddt[i], GRID, ddf_degc_days=ddf[i], engine="local", method="m", season="s", extra_tags=tags
        )
    back = runs.read_ddt_cube(tmp_path)
    assert settings_of(back.attrs) == ("running_mean", 3)
    np.testing.assert_array_equal(back[FROST_VAR].values, cube[FROST_VAR].values)


def test_config_checks_the_setting():
    base = dict(
        thaw_start="03-01",
        thaw_end="11-30",
        lst_step_days=8,
        growing_start="06-01",
        growing_end="09-15",
        min_valid_fraction=0.5,
    )
    s = SeasonConfig(**base)
    assert (s.frost_number_method, s.frost_number_years) == ("memory", 4)
    with pytest.raises(ValueError, match="odd"):
        SeasonConfig(**base, frost_number_method="running_mean", frost_number_years=4)
    with pytest.raises(ValueError, match="e-folding"):
        SeasonConfig(**base, frost_number_years=0)
    assert SeasonConfig(**base, frost_number_method="running_mean", frost_number_years=9).frost_number_years == 9
    with pytest.raises(ValueError, match="frost_number_method"):
        SeasonConfig(**base, frost_number_method="ttop")


def test_ee_cube_and_lazy_cube_use_the_same_setting(tmp_path):
    """Both engines: the EE engine's in-memory cube and a cube opened lazily on the DDT COGs (the
    local engine's) derive the same multi-year frost number as the hand computation."""
    from gee_alt.engines.ee.pull import cube_from_years

    ddf = np.array([100.0, 200.0, 400.0, 800.0, 1600.0])[:, None, None] * np.ones((5, 2, 3))
    ddt = np.full((5, 2, 3), 400.0)
    layers = {y: np.stack([ddt[i], np.zeros((2, 3)), np.full((2, 3), 10.0), ddf[i]]) for i, y in enumerate(YEARS)}
    ee = cube_from_years(layers, GRID, frost_number_method="running_mean", frost_number_years=3)
    np.testing.assert_allclose(ee[FROST_VAR].values[:, 0, 0][[0, 4]], [_f(150.0, 400.0), _f(1200.0, 400.0)], rtol=1e-6)
    for i, y in enumerate(YEARS):
        runs.write_ddt_year(tmp_path, y, ddt[i], GRID, ddf_degc_days=ddf[i], engine="local", method="m", season="s")
    lazy = runs.open_ddt_cube(
        tmp_path, YEARS, extra_attrs={"frost_number_method": "running_mean", "frost_number_years": 3}
    )
    assert isinstance(lazy[FROST_VAR].data, dsa.Array)
    np.testing.assert_array_equal(lazy[FROST_VAR].isel(year=2, y=slice(1, 2)).values, ee[FROST_VAR].values[2, 1:2])


@pytest.mark.parametrize(
    "method, window",
    [("running_mean", 3), ("running_mean", 9), ("trend", 5), ("year", 1), ("memory", 4), ("memory", 1)],
)
def test_frost_rows_of_a_lazy_cube_read_each_year_once_and_equal_the_cube(method, window, monkeypatch):
    """The downstream's row-chunk reader gives the lazy cube's frost number bit for bit (NaN years
    and pixels included) while reading each year's DDF and DDT once per chunk, not once per window."""
    from gee_alt.downstream import FrostRows

    rng = np.random.default_rng(4)
    years = list(range(2000, 2012))
    ddf = rng.uniform(500, 3000, (12, 6, 4))
    ddt = rng.uniform(200, 1500, (12, 6, 4))
    ddf[3, 1, 2] = np.nan
    ddt[5:9, 4, 1] = np.nan
    attrs = {"frost_number_method": method, "frost_number_years": window}
    lazy = make_ddt_cube(
        dsa.from_array(ddt, chunks=(1, 6, 4)),
        years,
        GRID_6x4,
        ddf_degc_days=dsa.from_array(ddf, chunks=(1, 6, 4)),
        extra_attrs=attrs,
    )
    eager = make_ddt_cube(ddt, years, GRID_6x4, ddf_degc_days=ddf, extra_attrs=attrs)
    import gee_alt.downstream as ds

    reads = []
    real_rows = ds._year_rows

    def counting(da, i, r0, r1):
        if da.name in (ds.DDF_VAR, ds.DDT_VAR):
            reads.append((da.name, i, r0))
        return real_rows(da, i, r0, r1)

    monkeypatch.setattr(ds, "_year_rows", counting)
    for r0, r1 in ((0, 4), (4, 6)):
        fr, fe = FrostRows(lazy, r0, r1), FrostRows(eager, r0, r1)
        assert fr.from_windows and not fe.from_windows
        for i in range(len(years)):
            want = eager[FROST_VAR].values[i, r0:r1]
            np.testing.assert_array_equal(fr(i), want)
            np.testing.assert_array_equal(fe(i), want)
    # 2 row chunks: each year's DDF and DDT read once per chunk, not once per window (the memory:
    # twice, one pass for the start line and one for the recursion; only the states are kept)
    passes = 2 if method == "memory" else 1
    want = sorted({(v, i, r0) for v in (ds.DDF_VAR, ds.DDT_VAR) for i in range(12) for r0 in (0, 4)})
    assert sorted(reads) == sorted(want * passes)
    monkeypatch.setattr(ds, "_year_rows", real_rows)

    monkeypatch.setattr(ds, "FROST_COLS", 3)  # column blocks of 3 and 1: the same values
    for r0, r1 in ((0, 4), (4, 6)):
        fc = FrostRows(lazy, r0, r1)
        for i in range(len(years)):
            np.testing.assert_array_equal(fc(i), eager[FROST_VAR].values[i, r0:r1])
        # a year asked out of order (restarts the memory's second pass): the same values
        np.testing.assert_array_equal(fc(3), eager[FROST_VAR].values[3, r0:r1])


GRID_6x4 = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (4, 6))


def _memory_by_hand(x, years, tau, start):
    q = np.exp(-1.0 / tau)
    out, s = [], start
    for v in x:
        s = s if np.isnan(v) else q * s + (1 - q) * v
        out.append(s)
    return np.array(out)


def test_memory_of_a_steady_trend_lags_it_by_q_over_1_minus_q_in_every_year():
    """Started from the steady-trend state, the memory of a straight line is the line lagged by
    slope * q / (1 - q) from the first year on (no spin-up transient); a constant is itself."""
    years = list(range(2000, 2025))
    t = np.arange(25.0)
    for tau in (1.0, 4.0, 8.0):
        q = np.exp(-1 / tau)
        got = ground_memory(1000.0 + 12.0 * t, years, tau)
        np.testing.assert_allclose(got, 1000.0 + 12.0 * t - 12.0 * q / (1 - q), rtol=1e-12)
        np.testing.assert_allclose(ground_memory(np.full(25, 700.0), years, tau), 700.0)


def test_memory_of_a_step_and_of_gaps_by_hand():
    """A warm step on a flat record: the state approaches it as 1 - q**n (hand recursion from the
    fitted start); a NaN year leaves the state unchanged; too few values give NaN."""
    years = list(range(2000, 2012))
    x = np.r_[np.full(6, 100.0), np.full(6, 200.0)]
    t = np.arange(12.0)
    b = np.polyfit(t, x, 1)
    q = np.exp(-1 / 4.0)
    start = np.polyval(b, -1.0) - b[0] * q / (1 - q)
    np.testing.assert_allclose(ground_memory(x, years, 4.0), _memory_by_hand(x, years, 4.0, start), rtol=1e-12)
    xg = x.copy()
    xg[[3, 7]] = np.nan
    tt = np.delete(t, [3, 7])
    bg = np.polyfit(tt, np.delete(x, [3, 7]), 1)
    start_g = np.polyval(bg, -1.0) - bg[0] * q / (1 - q)
    got = ground_memory(xg, years, 4.0)
    np.testing.assert_allclose(got, _memory_by_hand(xg, years, 4.0, start_g), rtol=1e-12)
    assert got[3] == got[2] and got[7] == got[6]
    few = np.full(12, np.nan)
    few[:5] = 100.0
    assert np.isnan(ground_memory(few, years, 4.0)).all()  # 5 of 12 < ceil(12 / 2)


def test_memory_frost_number_is_causal_but_for_its_start_and_equal_on_numpy_and_dask():
    """A later year reaches an earlier year's state only through the start (fitted on the whole
    record): a warm last year changes year k < last by exactly q**(k + 1) times the start's change.
    numpy = dask = frost_number_in_year, per pixel."""
    from gee_alt.science.frost_climate import frost_number_in_year

    years = list(range(2000, 2010))
    rng = np.random.default_rng(1)
    ddf = rng.uniform(800, 2500, (10, 5, 7))
    ddt = rng.uniform(300, 1600, (10, 5, 7))
    ddt[2, 0, 0] = np.nan
    got = multiyear_frost_number(ddf, ddt, years, "memory", 4)
    lazy = multiyear_frost_number(
        dsa.from_array(ddf, chunks=(2, 2, 3)), dsa.from_array(ddt, chunks=(3, 5, 2)), years, "memory", 4
    )
    np.testing.assert_array_equal(np.asarray(lazy), got)
    np.testing.assert_allclose(frost_number_in_year(ddf, ddt, years, 2006, "memory", 4), got[6], rtol=1e-6)
    x = ddt[:, 1, 1].copy()
    warm = x.copy()
    warm[-1] += 600.0
    q = np.exp(-1 / 4.0)
    t = np.arange(10.0)

    def start(v):
        b = np.polyfit(t, v, 1)
        return np.polyval(b, -1.0) - b[0] * q / (1 - q)

    d = ground_memory(warm, years, 4.0) - ground_memory(x, years, 4.0)
    np.testing.assert_allclose(d[:-1], q ** (t[:-1] + 1) * (start(warm) - start(x)), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(d[-1], q**10 * (start(warm) - start(x)) + (1 - q) * 600.0, rtol=1e-9)


def test_streamed_memory_needs_the_whole_record_first():
    """GroundMemory: stepping before every year was added is an error, not a silently wrong start."""
    from gee_alt.science.frost_climate import GroundMemory

    m = GroundMemory([2000, 2001, 2002], 4.0)
    m.add(np.array([1.0]))
    with pytest.raises(ValueError, match="add all 3 years"):
        m.step(np.array([1.0]))
    with pytest.raises(ValueError, match="ascending"):
        GroundMemory([2001, 2000], 4.0)
