"""The demo at the study's full extent (issue 12 item 5): the realistic world generated tile by
tile gives the same bytes as in one piece, ``--size full`` is the whole study grid, and bad
``--size`` values are one-line usage errors. The full world itself is never generated here (far
too slow for a test; scripts/bench_scale.py runs it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gee_alt.demo.realistic import ground
from gee_alt.demo.worlds import make_world, write_world
from gee_alt.grid import DATONG_BBOX, grid_from_bbox, same_grid
from tests.helpers.cli import assert_user_error, cli


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _year_2010_inputs(scene):
    """The daily pass's inputs for 2010 of a seed-3 world: the day coefficients, the cloud cooling
    on the blocks, the snow season, the thawing n-factor and a zero wetting field."""
    from gee_alt.demo.realistic import climate

    g = scene.ground
    w = climate.year_weather(3, 2010, 0.05, 6)
    coef = ground.daily_coefficients(w)
    cooling = ground.cooling_blocks(scene.cloud_blocks(w), w.doy)
    return coef, cooling, scene.snow(2010), ground.thawing_n_factor(g.ndvi_static, g.organic_m), np.zeros_like(g.theta)


@pytest.mark.slow
def test_tiled_generator_writes_the_same_bytes_as_one_piece(tmp_path):
    """256² in 128² tiles (4 tiles) vs in one 256² tile: every input and truth file, the scoring
    sample and the per-year facts (the mine's true effect needs the daily pass on its pixels)."""
    years = [2016]
    got = {}
    for tile in (128, 256):
        scene = make_world("realistic", seed=7, years=years, size_px=256, tile_px=tile)
        assert len(scene.tiles()) == (4 if tile == 128 else 1)
        out = tmp_path / f"t{tile}"
        sample = write_world(scene, out / "inputs", out / "truth", years, workers=1)
        got[tile] = (_files(out), sample)
    files_t, sample_t = got[128]
    files_1, sample_1 = got[256]
    assert files_t.keys() == files_1.keys()
    assert {"inputs/dem.tif", "inputs/insitu.csv", "truth/alt_2016.tif", "truth/ddt_2016.tif"} <= files_t.keys()
    assert [k for k in files_t if files_t[k] != files_1[k]] == []
    np.testing.assert_array_equal(sample_t.lst_degc[2016], sample_1.lst_degc[2016])
    assert sample_t.facts == sample_1.facts
    assert sample_t.facts[2016]["mine_pixels"] > 0


def test_tiled_pass_matches_one_daily_pass_on_unaligned_tiles():
    """Tiles whose edges are not on cloud-block edges (as the full grid's last row and column of
    tiles) take the per-pixel block lookup; the window's sums, samples and site series equal one
    pass over the whole window."""
    scene = make_world("realistic", seed=3, years=[2010], size_px=128, tile_px=48)  # 48 = 6 blocks of 8
    scene.inner = (slice(80, 80 + 124), slice(80, 80 + 124))  # a window whose right/bottom edge cuts blocks
    scene.shape = (124, 124)
    g = scene.ground
    coef, cooling, snow, nf, zero = _year_2010_inputs(scene)
    sample = np.array([0, 5, 124 * 60 + 123, 124 * 124 - 1])
    sites = np.array([124 * 123 + 2, 77])
    tiled = scene.tiled_pass(
        lambda rs, cs: scene.tile_basis(rs, cs, g.ndvi_static, g.theta, zero, yearly=True),
        coef,
        cooling,
        snow,
        nf,
        sample=sample,
        sites=sites,
    )
    assert any(rs.stop % 8 or cs.stop % 8 for rs, cs in scene.tiles())
    whole = (slice(80, 204), slice(80, 204))
    rr, cc = np.mgrid[whole]
    one = ground.daily_pass(
        scene.tile_basis(*whole, g.ndvi_static, g.theta, zero, yearly=True),
        coef,
        cooling,
        scene.pixel_blocks(rr.ravel(), cc.ravel()),
        ground.SnowSeason(
            *(np.ascontiguousarray(a[whole]).ravel() for a in (snow.melt_doy, snow.onset_doy, snow.thaw_start_doy))
        ),
        np.ascontiguousarray(nf[whole]).ravel(),
        sample=sample,
        sites=sites,
    )
    np.testing.assert_array_equal(tiled.skin_ddt.ravel(), one.skin_ddt)
    np.testing.assert_array_equal(tiled.ground_thaw.ravel(), one.ground_thaw)
    np.testing.assert_array_equal(tiled.at_sample, one.at_sample)
    np.testing.assert_array_equal(tiled.thaw_at_sites, one.thaw_at_sites)
    assert one.skin_ddt.max() > 500  # a real summer, not zeros


def test_daily_pass_pixel_blocks_do_not_change_a_bit():
    """The daily pass walks the pixels in cache-sized blocks: one block of a pixel (index lookup)
    or of one row of cloud blocks (window lookup) gives every sum, sample and site series of one
    block holding the whole tile, bit for bit; a block edge cuts the samples and the sites."""
    scene = make_world("realistic", seed=3, years=[2010], size_px=128, tile_px=128)
    g = scene.ground
    coef, cooling, snow, nf, zero = _year_2010_inputs(scene)
    (rs, cs) = scene.tiles()[0]
    basis = scene.tile_basis(rs, cs, g.ndvi_static, g.theta, zero, yearly=True)
    n = basis.shape[1]
    row_px = 8 * 128  # one row of 8-px cloud blocks across the 128-px tile
    sample = np.array([0, row_px - 1, row_px, 5 * row_px + 17, n - 1])
    sites = np.array([n - 1, row_px, 3])
    snow_t = ground.SnowSeason(
        *(np.ascontiguousarray(a[rs, cs]).ravel() for a in (snow.melt_doy, snow.onset_doy, snow.thaw_start_doy))
    )
    rr, cc = np.mgrid[rs, cs]
    for blocks, small in ((scene.tile_blocks(rs, cs), row_px), (scene.pixel_blocks(rr.ravel(), cc.ravel()), 1000)):
        assert (blocks.window is not None) == (small == row_px)
        assert blocks.part_size(small + 5) == (small if blocks.window is not None else small + 5)
        for mean in (False, True):
            got = [
                ground.daily_pass(
                    basis,
                    coef,
                    cooling,
                    blocks,
                    snow_t,
                    np.ascontiguousarray(nf[rs, cs]).ravel(),
                    sample=sample,
                    sites=sites,
                    ground_mean=mean,
                    pixel_block=pb,
                )
                for pb in (small, n)
            ]
            for name in ("skin_ddt", "ground_thaw", "ground_mean", "at_sample", "thaw_at_sites"):
                a, b = getattr(got[0], name), getattr(got[1], name)
                assert (a is None) == (b is None) == (name == "ground_mean" and not mean)
                if a is not None:
                    assert a.tobytes() == b.tobytes(), name
            assert got[1].skin_ddt.max() > 500 and got[1].thaw_at_sites.max() > 0


def test_full_size_is_the_whole_study_grid():
    """``size 'full'``: the window is the study grid (3215 x 2065 px at 30 m), the outer grid is
    whole cloud blocks with at least the pad on every side, and the tiles cover the window once.
    Nothing is generated (the statics are lazy)."""
    scene = make_world("realistic", seed=42, years=[2010], size_px="full", tile_px=512)
    study = grid_from_bbox(DATONG_BBOX, 30.0)
    assert study["shape_2d"] == (3215, 2065)
    assert same_grid(scene.grid, study)
    assert scene.shape == (2065, 3215)
    oy, ox = scene.outer_shape
    assert oy % scene.block_px == 0 and ox % scene.block_px == 0
    assert scene.inner[0].start == 80 and oy - scene.inner[0].stop >= 80
    assert scene.inner[1].start == 80 and ox - scene.inner[1].stop >= 80
    cover = np.zeros((oy, ox), "int8")
    for rs, cs in scene.tiles():
        cover[rs, cs] += 1
        assert rs.stop - rs.start <= 512 and cs.stop - cs.start <= 512
    assert (cover[scene.inner] == 1).all() and cover.sum() == 3215 * 2065
    # the window's lower-left corner sits on the study grid's (same lattice, same origin)
    assert scene.grid["crs_transform"] == study["crs_transform"]
    with pytest.raises(ValueError, match="realistic"):
        make_world("ideal", seed=42, years=[2010], size_px="full")


def test_cli_size_parsing():
    from gee_alt.cli.run_commands import parse_demo_size
    from gee_alt.errors import GeeAltError

    assert parse_demo_size("full") == "full"
    assert parse_demo_size(" FULL ") == "full"
    assert parse_demo_size("512") == 512
    assert parse_demo_size("128") == 128
    for bad in ("130", "4096", "124", "fulll", "", "1e3", "-512"):
        with pytest.raises(GeeAltError, match="--size"):
            parse_demo_size(bad)


@pytest.mark.parametrize("size", ["130", "4096", "big", "full2"])
def test_cli_bad_size_is_one_line(tmp_path, size):
    out = tmp_path / "run"
    assert_user_error(cli("demo", "--out", out, "--size", size, "--years", "2010", "--quiet"), "--size", size)
    assert not out.exists()


def test_cli_full_size_refuses_the_ideal_world(tmp_path):
    out = tmp_path / "run"
    res = cli("demo", "--out", out, "--size", "full", "--world", "ideal", "--years", "2010", "--quiet")
    assert_user_error(res, "--size full", "realistic")
    assert not out.exists()


def test_footprints_do_not_depend_on_the_cell_chunks():
    """The PSF operators built a few thousand source cells at a time (as the full grid's 30 m
    NDVI operator is, to bound memory) equal the one-chunk build, entry for entry."""
    from gee_alt.demo.realistic import sensors

    scene = make_world("realistic", seed=1, years=[2010], size_px=128)
    for cell_px, target in ((1, scene.ndvi_grid), (scene.block_px, scene.lst_grid)):
        one = sensors.footprints(scene.outer_grid, cell_px, target)
        chunked = sensors.footprints(scene.outer_grid, cell_px, target, chunk_cells=3001)
        for attr in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(one.weights, attr), getattr(chunked.weights, attr))
        np.testing.assert_array_equal(one.complete, chunked.complete)
        assert one.complete.sum() > 10


def test_release_frees_the_statics_and_they_come_back_the_same():
    scene = make_world("realistic", seed=5, years=[2010], size_px=128)
    dem, sites = scene.dem_m.copy(), scene.field_sites
    scene.release()
    assert "dem_m" not in scene.__dict__ and "field_sites" not in scene.__dict__
    np.testing.assert_array_equal(scene.dem_m, dem)
    np.testing.assert_array_equal(scene.field_sites.row, sites.row)
