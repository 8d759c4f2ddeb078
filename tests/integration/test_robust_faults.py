"""Fault injection at the Earth Engine transport (the stub pixel server of ``ee_fixtures``).

- transient faults (HTTP 429, 500, 503, socket timeouts, "Too many concurrent aggregations")
  at 30 % of calls, pixel and metadata: the outputs are byte-identical to a fault-free pull;
- non-retryable errors (memory limit, computation timed out, asset not found, permission
  denied): one clear line (library and CLI), no retry, no output file of the failing year;
- bounded retries: each backoff delay is capped and all backoff of a pull is capped, so a
  server failing forever stops with one line instead of waiting without bound (this test
  would fail with the old, uncapped exponential backoff and a large ``max_retries``).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from gee_alt.config import load_config
from gee_alt.engines.ee import pull, thaw
from gee_alt.errors import GeeAltError
from gee_alt.grid import grid_from_bbox
from gee_alt.io import sha256_file
from helpers.cli import assert_user_error, cli
from helpers.ee import StubServer

GRID = grid_from_bbox((99.0, 38.0, 99.06, 38.04), 30.0, "EPSG:32647")
YEARS = [2001, 2003]
LIMIT = 40_000
TRANSIENT = [
    lambda: _ee("HTTP Error 429: Too Many Requests"),
    lambda: _ee("500 Internal Error"),
    lambda: _ee("503 Service Unavailable"),
    lambda: TimeoutError("The read operation timed out"),
    lambda: _ee("Too many concurrent aggregations."),
]
FATAL = [
    "User memory limit exceeded.",
    "Computation timed out.",
    "Image.load: Asset 'x' not found.",
    "Permission denied: caller does not have access",
]


def _ee(msg):
    import ee

    return ee.EEException(msg)


class FaultyServer(StubServer):
    """The stub with each call failing at ``rate`` with one of :data:`TRANSIENT` (seeded)."""

    def __init__(self, grid, rate, seed):
        super().__init__(grid)
        self.rate, self.frng, self.injected = rate, random.Random(seed), {}

    def _fault(self):
        with self.lock:
            if self.frng.random() >= self.rate:
                return
            k = self.frng.randrange(len(TRANSIENT))
            self.injected[k] = self.injected.get(k, 0) + 1
        raise TRANSIENT[k]()

    def compute_value(self, obj):
        self._fault()
        return super().compute_value(obj)

    def compute_pixels(self, params):
        self._fault()
        return super().compute_pixels(params)


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def _pull(cfg, out, **kw):
    return pull.run_years(
        out,
        YEARS,
        GRID,
        lambda y: thaw.ddt_image(cfg, y, GRID),
        max_workers=3,
        initial_delay_s=0.0,
        request_byte_limit=LIMIT,
        **kw,
    )


def test_transient_faults_at_30_percent_give_identical_outputs(ee_offline, monkeypatch, tmp_path, cfg):
    StubServer(GRID).install(monkeypatch)
    clean = _pull(cfg, tmp_path / "clean")
    total, kinds = 0, set()
    for seed in range(3):
        srv = FaultyServer(GRID, 0.3, seed).install(monkeypatch)
        slept = []
        cube = _pull(cfg, tmp_path / f"flaky{seed}", sleep=slept.append, max_retries=12)
        assert len(slept) == sum(srv.injected.values())  # every fault was retried, nothing else
        np.testing.assert_array_equal(cube["ddt_degc_days"].values, clean["ddt_degc_days"].values)
        for y in YEARS:
            assert sha256_file(tmp_path / f"flaky{seed}" / "ddt" / f"ddt_{y}.tif") == sha256_file(
                tmp_path / "clean" / "ddt" / f"ddt_{y}.tif"
            )
        total += sum(srv.injected.values())
        kinds |= set(srv.injected)
    assert kinds == set(range(len(TRANSIENT))) and total >= 15
    print(f"\nEE transport: {total} transient faults injected, outputs identical")


@pytest.mark.parametrize("message", FATAL)
def test_non_retryable_errors_stop_the_year_with_one_line(ee_offline, monkeypatch, tmp_path, cfg, message):
    """A non-retryable error stops its year at once (one line, recorded) and the next year is
    still tried: a failed year never stops the run."""
    from gee_alt import runs

    stub = StubServer(GRID, fatal=message).install(monkeypatch)
    record = runs.Progress(tmp_path, {"engine": "ee"})
    record.start(resume=False)
    assert _pull(cfg, tmp_path, progress_record=record, sleep=lambda s: pytest.fail("retried")) is None
    for year in YEARS:
        msg = record.failed()[year]
        assert "\n" not in msg and message.split(":")[0].rstrip(".") in msg
        assert stub.pixel_calls[year] <= 10  # each tile tried once
        assert not (tmp_path / "ddt" / f"ddt_{year}.tif").exists()
    assert list(tmp_path.rglob(".tmp-*")) == []


def test_non_retryable_error_through_the_cli(ee_offline, monkeypatch, tmp_path):
    from gee_alt.engines.ee import session

    (tmp_path / "s.toml").write_text(
        "[study]\nyears = [2010, 2011]\n[aoi]\nbbox = [99.0, 38.0, 99.06, 38.04]\n[pull]\ninitial_delay_s = 0.0\n"
    )
    (tmp_path / "sites.csv").write_text("site_id,lon,lat,year,alt_m\nA,99.03,38.02,2010,1.5\n")
    monkeypatch.setattr(session, "initialize", lambda *a, **k: None)
    StubServer(GRID, fatal="User memory limit exceeded.").install(monkeypatch)
    line = assert_user_error(
        cli(
            "run",
            "--engine",
            "ee",
            "--config",
            tmp_path / "s.toml",
            "--project",
            "p",
            "--insitu",
            tmp_path / "sites.csv",
            "--out",
            tmp_path / "run",
            "--quiet",
        ),
        "User memory limit exceeded",
        "tile_scale",
    )
    assert "Traceback" not in line
    assert not (tmp_path / "run").exists()  # a fresh run dir is removed again: nothing partial


def test_retries_are_bounded_in_count_and_time():
    slept = []

    def always():
        raise _ee("503 Service Unavailable")

    call = pull.RetryingCall(always, "x", max_retries=10_000, initial_delay_s=1.0, sleep=slept.append, seed=0)
    with pytest.raises(GeeAltError) as ei:
        call()
    assert "\n" not in str(ei.value) and "try again later" in str(ei.value)
    assert max(slept) <= pull.MAX_DELAY_S
    assert sum(slept) <= pull.MAX_TOTAL_SLEEP_S  # unbounded backoff would be ~2**10000 s
    assert call.calls < 100
    # a 429 storm that ends: retried with growing, capped delays, then succeeds
    errors = [_ee("HTTP Error 429: Too Many Requests")] * 9
    slept.clear()

    def storm():
        if errors:
            raise errors.pop()
        return "ok"

    call = pull.RetryingCall(storm, "x", max_retries=12, initial_delay_s=0.5, sleep=slept.append, seed=1)
    assert call() == "ok" and call.retries == 9
    assert slept == sorted(slept) or max(slept) == pull.MAX_DELAY_S
    assert all(d <= pull.MAX_DELAY_S for d in slept)


def test_timeouts_and_resets_are_transient_memory_is_not():

    assert pull.classify_error(TimeoutError("timed out")) == "transient"
    assert pull.classify_error(ConnectionResetError("reset by peer")) == "transient"
    assert pull.classify_error(_ee("Read timed out. (read timeout=60)")) == "transient"
    assert pull.classify_error(_ee("Computation timed out.")) == "fatal"
    assert pull.classify_error(_ee("User memory limit exceeded.")) == "fatal"
