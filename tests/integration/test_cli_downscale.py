"""`gee-alt downscale` on rasters it has never seen, and its bad-input behaviour."""

import json

import numpy as np
import pytest
import rasterio

from gee_alt.export.cog import write_cog
from gee_alt.io import read_raster
from gee_alt.science.resample import interpolate
from helpers.cli import assert_user_error, cli
from helpers.scenes import sharpen_scene


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    s = sharpen_scene(n=384, seed=23, n_bands=3, gap_frac=0.15)
    write_cog(d / "dem.tif", s["dem"], s["fine_grid"], tags={"units": "m"})
    write_cog(d / "ndvi.tif", s["ndvi"], s["fine_grid"])
    write_cog(
        d / "lst_1km_sinusoidal.tif",
        s["coarse"],
        s["coarse_grid"],
        tags={"units": "degC"},
        band_descriptions=["d1", "d2", "d3"],
    )
    np.save(d / "truth.npy", s["truth"])
    return d, s


def test_downscale_beats_bilinear_on_unseen_multiband_rasters(files, tmp_path):
    d, s = files
    out = tmp_path / "fine.tif"
    code, stdout, err = cli(
        "downscale",
        d / "lst_1km_sinusoidal.tif",
        "--dem",
        d / "dem.tif",
        "-p",
        d / "ndvi.tif",
        "--temperature",
        "--out",
        out,
        "--json",
        "--quiet",
    )
    assert code == 0, err
    res = json.loads(stdout)
    assert res["bands"] == 3 and "slope_deg" in res["predictors"] and "ndvi" in res["predictors"]
    fine = read_raster(out)
    assert fine.grid == s["fine_grid"] and fine.descriptions == ["d1", "d2", "d3"]
    bil = interpolate(s["coarse"], s["coarse_grid"], s["fine_grid"], "bilinear")
    truth = np.load(d / "truth.npy")
    for b in range(3):
        m = np.isfinite(fine.data[b]) & np.isfinite(bil[b])
        r_f = np.sqrt(np.mean((fine.data[b][m] - truth[b][m]) ** 2))
        r_b = np.sqrt(np.mean((bil[b][m] - truth[b][m]) ** 2))
        assert r_f < 0.6 * r_b, (b, r_f, r_b)
    # NaN gaps of the coarse raster stay gaps
    assert np.isnan(fine.data).any()
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)


def test_downscale_bad_inputs(files, tmp_path):
    d, s = files
    out = tmp_path / "o.tif"
    assert_user_error(cli("downscale", d / "nope.tif", "--dem", d / "dem.tif", "--out", out), "not found", "nope.tif")
    (tmp_path / "text.tif").write_text("hello")
    assert_user_error(
        cli("downscale", tmp_path / "text.tif", "--dem", d / "dem.tif", "--out", out), "not a readable raster"
    )
    assert_user_error(cli("downscale", d / "lst_1km_sinusoidal.tif", "--out", out), "--dem")
    # a predictor on another grid
    from gee_alt.grid import subgrid

    write_cog(tmp_path / "shifted.tif", s["ndvi"][:300, :300], subgrid(s["fine_grid"], 10, 10, 300, 300))
    assert_user_error(
        cli(
            "downscale",
            d / "lst_1km_sinusoidal.tif",
            "--dem",
            d / "dem.tif",
            "-p",
            tmp_path / "shifted.tif",
            "--out",
            out,
        ),
        "another grid",
    )
    # a coarse raster somewhere else
    from gee_alt.grid import make_grid

    far = make_grid("EPSG:32647", (1000, 0, 100000, 0, -1000, 3000000), (10, 10))
    write_cog(tmp_path / "far.tif", np.ones((10, 10)), far)
    assert_user_error(cli("downscale", tmp_path / "far.tif", "--dem", d / "dem.tif", "--out", out), "overlap")
    write_cog(tmp_path / "allnan.tif", np.full((10, 10), np.nan), s["coarse_grid"] | {"shape_2d": (10, 10)})
    assert_user_error(cli("downscale", tmp_path / "allnan.tif", "--dem", d / "dem.tif", "--out", out), "no valid pixel")
    # output exists, and an unwritable output
    out.write_text("keep me")
    assert_user_error(cli("downscale", d / "lst_1km_sinusoidal.tif", "--dem", d / "dem.tif", "--out", out), "exists")
    assert out.read_text() == "keep me"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_user_error(
        cli("downscale", d / "lst_1km_sinusoidal.tif", "--dem", d / "dem.tif", "--out", blocker / "x.tif"),
        "cannot write",
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")) == []
