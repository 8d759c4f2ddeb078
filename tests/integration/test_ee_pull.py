"""The xee pull end to end through a stub pixel server (synthetic arrays, not EE results)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gee_alt.config import load_config
from gee_alt.cube import validate_ddt_cube
from gee_alt.engines.ee import pull, thaw
from gee_alt.errors import GeeAltError
from gee_alt.grid import grid_from_bbox
from gee_alt.io import read_raster, sha256_file
from helpers.ee import StubServer, known_year_arrays, years_in_expression

GRID = grid_from_bbox((99.0, 38.0, 99.06, 38.04), 30.0, "EPSG:32647")  # 177 x 149 px
LIMIT = 40_000  # a small request limit so the stub year needs ~10 requests
YEARS = [2001, 2003]
CLEAN_YEAR_REQUESTS = 14  # computePixels requests of one clean stub year (its tiles of the 4 layers)


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def run(cfg, out_dir, **kw):
    kw.setdefault("request_byte_limit", LIMIT)
    return pull.run_years(
        out_dir, YEARS, GRID, lambda y: thaw.ddt_image(cfg, y, GRID), max_workers=4, initial_delay_s=0.0, **kw
    )


def test_outputs_equal_served_arrays_and_requests_are_bounded(ee_offline, monkeypatch, tmp_path, cfg):
    stub = StubServer(GRID).install(monkeypatch)
    cube = run(cfg, tmp_path)
    validate_ddt_cube(cube)
    assert cube.attrs["engine"] == "ee" and list(cube.year.values) == YEARS
    bound = 1.1 * math.ceil(pull.bytes_per_year(GRID) / LIMIT)
    for i, year in enumerate(YEARS):
        known = known_year_arrays(year, GRID)
        np.testing.assert_array_equal(cube["ddt_degc_days"].values[i], known[0])
        np.testing.assert_array_equal(cube["ddt_sd_degc_days"].values[i], known[1])
        np.testing.assert_array_equal(cube["n_obs"].values[i], known[2].astype("int16"))
        np.testing.assert_array_equal(cube["ddf_degc_days"].values[i], known[3])
        r = read_raster(tmp_path / "ddt" / f"ddt_{year}.tif", bands=4)
        np.testing.assert_array_equal(r.data, known)
        assert r.descriptions == ["ddt_degc_days", "ddt_sd_degc_days", "n_obs", "ddf_degc_days"]
        assert stub.pixel_calls[year] <= bound and stub.pixel_calls[year] == CLEAN_YEAR_REQUESTS
    assert stub.value_calls == len(YEARS)  # one metadata call per year
    # tiles cover each year's grid exactly once
    for year in YEARS:
        area = sum(h * w for y, _, _, h, w in stub.tiles if y == year)
        assert area == GRID["shape_2d"][0] * GRID["shape_2d"][1]
    # resume: nothing is requested again, the cube is the same
    calls = dict(stub.pixel_calls)
    again = run(cfg, tmp_path)
    assert stub.pixel_calls == calls and stub.value_calls == len(YEARS)
    np.testing.assert_array_equal(again["ddt_degc_days"].values, cube["ddt_degc_days"].values)
    # a tampered file is pulled again (hash mismatch), the other year is not
    (tmp_path / "ddt" / "ddt_2003.tif").write_bytes(b"broken")
    run(cfg, tmp_path)
    assert stub.pixel_calls[2001] == calls[2001] and stub.pixel_calls[2003] == 2 * calls[2003]


def test_datong_grid_needs_three_requests_per_year():
    grid = load_config().grid()
    chunks = pull.io_chunks_for(grid)
    n = pull.requests_per_year(grid, chunks)
    assert n == 3 and n <= 1.1 * math.ceil(pull.bytes_per_year(grid) / pull.REQUEST_BYTE_LIMIT)  # 4 layers
    assert chunks["index"] * chunks["width"] * chunks["height"] * pull.BYTES_PER_PIXEL <= pull.REQUEST_BYTE_LIMIT


def test_transient_faults_give_identical_bytes(ee_offline, monkeypatch, tmp_path, cfg):
    StubServer(GRID).install(monkeypatch)
    run(cfg, tmp_path / "clean")
    flaky = StubServer(GRID, fail_rate=0.3, seed=5).install(monkeypatch)
    slept = []
    run(cfg, tmp_path / "flaky", sleep=slept.append, max_retries=8)
    assert flaky.failures > 3 and len(slept) == flaky.failures
    for year in YEARS:
        assert sha256_file(tmp_path / "clean" / "ddt" / f"ddt_{year}.tif") == sha256_file(
            tmp_path / "flaky" / "ddt" / f"ddt_{year}.tif"
        )


def test_non_retryable_error_is_recorded_per_year_with_one_line(ee_offline, monkeypatch, tmp_path, cfg):
    from gee_alt import runs

    stub = StubServer(GRID, fatal="User memory limit exceeded.").install(monkeypatch)
    record = runs.Progress(tmp_path, {"engine": "ee"})
    record.start(resume=False)
    assert run(cfg, tmp_path, progress_record=record) is None  # no year succeeded
    failed = record.failed()
    assert sorted(failed) == YEARS
    for year in YEARS:
        msg = failed[year]
        assert "User memory limit exceeded" in msg and "tile_scale" in msg and "\n" not in msg
        # each tile tried at most once, never retried (tiles already in flight when the first one
        # fails still arrive, so the count is bounded by a clean year's, not by when the error came)
        assert stub.pixel_calls[year] <= CLEAN_YEAR_REQUESTS
        assert not (tmp_path / "ddt" / f"ddt_{year}.tif").exists()


def test_a_failed_year_is_skipped_and_a_rerun_retries_only_it(ee_offline, monkeypatch, tmp_path, cfg):
    """Terra's 2001 gap used to fail the 2001 graph and stop the in-order pull: now 2001 is
    recorded as failed, 2003 is pulled, and the rerun requests 2001 only."""
    from gee_alt import runs

    class FailingYear(StubServer):
        broken = {2001}

        def compute_pixels(self, params):
            import ee

            if years_in_expression(params["expression"]) & self.broken:
                raise ee.EEException("Image.add: If one image has no bands, the other must also have no bands.")
            return super().compute_pixels(params)

    stub = FailingYear(GRID).install(monkeypatch)
    record = runs.Progress(tmp_path, {"engine": "ee"})
    record.start(resume=False)
    statuses = []
    cube = run(cfg, tmp_path, progress_record=record, progress=lambda y, st: statuses.append((y, st)))
    assert list(cube.year.values) == [2003] and statuses == [(2001, "failed"), (2003, "pulled")]
    assert "no bands" in record.failed()[2001] and not (tmp_path / "ddt" / "ddt_2001.tif").exists()
    calls_2003 = stub.pixel_calls[2003]
    FailingYear.broken = set()
    again = runs.Progress(tmp_path, {"engine": "ee"})
    again.start(resume=True)
    cube = run(cfg, tmp_path, progress_record=again)
    assert list(cube.year.values) == YEARS and again.failed() == {}
    assert stub.pixel_calls[2003] == calls_2003  # the finished year was not requested again
    np.testing.assert_array_equal(cube["ddt_degc_days"].values[0], known_year_arrays(2001, GRID)[0])


def test_retry_policy_backoff_and_classification():
    import ee

    errors = [
        ee.EEException("Too many concurrent aggregations."),
        ee.EEException("HTTP 503 Service Unavailable"),
        ConnectionError("reset"),
    ]
    slept = []

    def flaky():
        if errors:
            raise errors.pop(0)
        return "ok"

    call = pull.RetryingCall(flaky, "x", max_retries=3, initial_delay_s=1.0, sleep=slept.append, seed=0)
    assert call() == "ok" and call.calls == 4 and call.retries == 3
    assert [1 <= slept[0] < 2, 2 <= slept[1] < 4, 4 <= slept[2] < 8] == [True, True, True]
    assert pull.classify_error(ee.EEException("Computation timed out.")) == "fatal"
    assert pull.classify_error(ee.EEException("Image.load: Asset not found")) == "fatal"
    assert pull.classify_error(ee.EEException("Quota exceeded (429)")) == "transient"
    # status codes match as words only: sizes and counts that contain "500"/"503" are not transient
    assert pull.classify_error(ee.EEException("HTTP 503 Service Unavailable")) == "transient"
    assert pull.classify_error(ee.EEException("Request payload size exceeds the limit: 50331648 bytes")) == "fatal"
    assert pull.classify_error(ee.EEException("Collection query aborted after accumulating over 5000 elements")) == (
        "fatal"
    )
    always = pull.RetryingCall(
        lambda: (_ for _ in ()).throw(ee.EEException("503")),
        "x",
        max_retries=2,
        initial_delay_s=0,
        sleep=lambda s: None,
    )
    with pytest.raises(GeeAltError, match="after 2 retries"):
        always()
    assert always.calls == 3


def test_run_ee_without_credentials_says_how_to_authenticate(tmp_path, monkeypatch):
    from helpers.cli import assert_user_error, cli

    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("GEE_ALT_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "EE_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "sites.csv").write_text("site_id,lon,lat,year,alt_m\nA,99.5,38.0,2010,1.5\n")
    line = assert_user_error(
        cli("run", "--engine", "ee", "--insitu", tmp_path / "sites.csv", "--out", tmp_path / "run")
    )
    assert "auth/README.md" in line and "earthengine authenticate" in line
    assert not (tmp_path / "run").exists()


def test_retries_live_in_one_layer(ee_offline):
    """Inside a pull the earthengine-api client does not retry on its own (ee.data.setMaxRetries(0));
    its setting is restored afterwards, also when the pull fails."""
    import ee

    ee.data.setMaxRetries(5)
    with pull.retrying_ee_calls(max_retries=3, initial_delay_s=0.0):
        assert ee.data._get_state().max_retries == 0
    assert ee.data._get_state().max_retries == 5
    with pytest.raises(RuntimeError), pull.retrying_ee_calls(max_retries=3, initial_delay_s=0.0):
        raise RuntimeError("pull failed")
    assert ee.data._get_state().max_retries == 5


def test_thaw_progress_reaches_the_cube_as_the_local_definition(ee_offline, monkeypatch, tmp_path, cfg):
    """Each year's thaw-progress request is answered (stub: every window adds 1/35 of the season's
    DDT — test data) and becomes the cube's ``ddt_fraction_by_doy``: by hand 0 before 03-01,
    5/35 + 1/8·1/35 = 0.146429 at the end of 10 April 2001 (day 100), 1 after the season; the
    same curve as the local engine's :func:`gee_alt.science.thaw.ddt_fraction_by_doy` for a pixel
    with those windows; kept in the COG tag, so a resumed run hands the same cube."""
    import datetime as dt

    from gee_alt.engines.ee import composite
    from gee_alt.science.thaw import ddt_fraction_by_doy

    windows = composite.lst_windows(2001, cfg.season.thaw_start, cfg.season.thaw_end, cfg.season.lst_step_days)
    assert len(windows) == 35 and windows[-1].days == 3
    stub = StubServer(GRID, fractions=lambda y: {f"f{k:02d}": (k + 1) / 35 for k in range(35)}).install(monkeypatch)
    kw = dict(thaw_fraction_for_year=lambda y: thaw.thaw_fraction_request(cfg, y))
    cube = run(cfg, tmp_path, **kw)
    assert stub.fraction_calls == {2001: 1, 2003: 1}
    curve = cube["ddt_fraction_by_doy"].values  # (year, doy)
    assert curve[0, 58] == 0.0 and curve[0, 99] == pytest.approx(41 / 280, abs=1e-5) and curve[0, 340] == 1.0
    days = np.array([w.days for w in windows], float)
    lst = (1.0 / days)[:, None]  # each window adds the same DDT
    local = ddt_fraction_by_doy(lst, [dt.date.fromisoformat(w.start) for w in windows], days)
    np.testing.assert_allclose(curve[0], local, atol=5e-6)  # the tag keeps 5 decimals
    again = run(cfg, tmp_path, **kw)  # resumed: no request, the curve read back from the tag
    assert stub.fraction_calls == {2001: 1, 2003: 1}
    np.testing.assert_array_equal(again["ddt_fraction_by_doy"].values, curve)
