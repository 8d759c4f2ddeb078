"""The realistic world's permafrost follows the weather the world realizes (not a prescribed
trend): :func:`gee_alt.demo.realistic.climate.permafrost_warming_degc`. Checked against hand
computations of an exponential memory, and against the world's own weather."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gee_alt.demo.realistic import climate


@pytest.fixture
def anomalies(monkeypatch):
    """Replace the realized yearly anomaly by a function of the year (cache bypassed)."""

    def use(fn):
        monkeypatch.setattr(climate, "_year_anomaly_degc", lambda seed, trend, year: fn(year))

    return use


def test_steady_trend_is_followed_with_a_lag_of_about_the_memory(anomalies):
    r = 0.05
    anomalies(lambda y: r * (y - 2000))
    keep = math.exp(-1 / climate.GROUND_MEMORY_YR)
    lag = keep / (1 - keep)  # steady-state lag of an exponential memory behind a ramp, years
    for year in (2000, 2012, 2024):
        assert climate.permafrost_warming_degc(0, r, year) == pytest.approx(r * (year - 2000 - lag), abs=1e-6)
    assert 3.0 < lag < 4.0


def test_one_warm_year_is_damped_and_then_forgotten(anomalies):
    anomalies(lambda y: 1.0 if y == 2010 else 0.0)
    keep = math.exp(-1 / climate.GROUND_MEMORY_YR)
    assert climate.permafrost_warming_degc(0, 0.0, 2009) == pytest.approx(0.0, abs=1e-12)
    assert climate.permafrost_warming_degc(0, 0.0, 2010) == pytest.approx(1 - keep)
    assert climate.permafrost_warming_degc(0, 0.0, 2014) == pytest.approx((1 - keep) * keep**4)


def test_anomaly_is_the_world_weathers_own():
    w = climate.year_weather(7, 2013, 0.05, 1)
    c = climate.year_weather(7, 2013, 0.0, 1, climatology=True)
    assert climate._year_anomaly_degc(7, 0.05, 2013) == pytest.approx(float(np.mean(w.t_ref_degc - c.t_ref_degc)))


def test_ground_warms_with_the_realized_weather_not_the_prescribed_trend():
    """Over 2000-2024 the ground's warming tracks each seed's realized air warming: seeds whose
    weather warms less lose less permafrost (the prescribed trend is the same, 0.05 °C/yr)."""
    years = np.arange(2000, 2025)
    air, pf = [], []
    for seed in (7, 42, 2026, 99, 1, 2, 3, 4):
        air.append(np.polyfit(years, [climate._year_anomaly_degc(seed, 0.05, int(y)) for y in years], 1)[0])
        pf.append(np.polyfit(years, [climate.permafrost_warming_degc(seed, 0.05, int(y)) for y in years], 1)[0])
    assert np.corrcoef(air, pf)[0, 1] > 0.7
    assert np.std(pf) > 0.003  # not one prescribed slope for every seed
