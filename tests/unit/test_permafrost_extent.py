"""Frost number in the cube, ALT only on permafrost, permafrost COGs and the extent series;
in-situ obs_date and DDT summed to the reading date."""

import numpy as np
from pyproj import Transformer

from gee_alt import downstream, runs
from gee_alt.cube import FROST_VAR, THAW_FRACTION_VAR, make_ddt_cube
from gee_alt.grid import make_grid
from gee_alt.insitu.table import make_insitu_table, read_insitu
from gee_alt.io import read_raster
from gee_alt.science.sites import sample_ddt_at_sites

GRID = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (4, 3))
YEARS = [2010, 2011, 2012, 2013]


class _E:
    """A Stefan model with E = 0.05 and no classes."""

    e_by_class_ = None

    def predict(self, ddt, classes=None):
        return 0.05 * np.sqrt(ddt)

    def predict_sd(self, ddt, ddt_sd, classes=None):
        return np.full(np.shape(ddt), 0.1)


def _cube():
    ddt = np.full((4, 3, 4), 1600.0)
    ddf = np.full((4, 3, 4), 2500.0)  # F = 50 / (50 + 40) = 0.556: permafrost
    ddf[:, :, 0] = 900.0  # F = 30 / 70 = 0.43: none
    ddf[2:, :, 1] = 900.0  # the permafrost shrinks by one column in each of the last two years
    ddf[3:, :, 2] = 900.0
    ddf[0, 0, 3] = np.nan  # unknown freezing index
    return make_ddt_cube(ddt, YEARS, GRID, ddf_degc_days=ddf, engine="local")


def test_alt_only_on_permafrost_and_permafrost_cogs_and_extent(tmp_path):
    cube = _cube()
    np.testing.assert_allclose(cube[FROST_VAR].values[0, 1, 1], 50 / 90, rtol=1e-6)
    maps = downstream.alt_maps(cube, _E())
    assert np.isnan(maps.alt_m[:, :, 0]).all() and np.isnan(maps.alt_m[0, 0, 3])
    np.testing.assert_allclose(maps.alt_m[0, 1, 1], 2.0, rtol=1e-6)
    assert np.isnan(maps.alt_sd_m[:, :, 0]).all()
    downstream.write_alt(tmp_path, maps, {"E": 0.05}, stac=False)
    pf = read_raster(runs.permafrost_path(tmp_path, 2013), bands=None)
    assert list(pf.descriptions) == ["permafrost_class", "frost_number (single year)"]  # the cube states no window
    np.testing.assert_array_equal(pf.data[0][0], [0, 0, 0, 1])
    alt = read_raster(runs.alt_path(tmp_path, 2010), bands=1)
    assert "no permafrost" in alt.descriptions[0]
    ext = downstream.extent_series(maps)
    px_km2 = 30.0 * 30.0 / 1e6
    np.testing.assert_allclose(ext["area_km2"], [8 * px_km2, 9 * px_km2, 6 * px_km2, 3 * px_km2], rtol=1e-6)
    np.testing.assert_allclose(ext["fraction"], [8 / 11, 9 / 12, 6 / 12, 3 / 12])
    assert ext["area_trend_km2_per_yr"]["slope"] < 0
    summary = downstream.write_trend(tmp_path, maps, min_valid_years=2).summary
    assert summary["permafrost_extent"]["area_km2"] == ext["area_km2"]
    # the area mean covers permafrost pixels only: every mapped ALT is 2.0 m
    assert summary["area_mean_alt_m"]["mean"] == [2.0, 2.0, 2.0, 2.0]


def test_cube_without_freezing_index_maps_alt_everywhere():
    cube = make_ddt_cube(np.full((4, 3, 4), 1600.0), YEARS, GRID)
    maps = downstream.alt_maps(cube, _E())
    assert np.isfinite(maps.alt_m).all() and maps.permafrost is None


def test_obs_date_is_read_checked_and_calibration_sums_ddt_to_it(tmp_path):
    p = tmp_path / "insitu.csv"
    lon, lat = Transformer.from_crs("EPSG:32647", "EPSG:4326", always_xy=True).transform(600_045.0, 4_199_955.0)
    p.write_text(
        "site_id,lon,lat,year,alt_m,obs_date\n"
        f"A,{lon},{lat},2010,1.0,2010-08-01\n"
        f"B,{lon},{lat},2011,1.0,\n"
        f"C,{lon},{lat},2012,1.0,2013-08-01\n"
        f"D,{lon},{lat},2013,1.0,1st August\n"
    )
    t = read_insitu(p)
    assert list(t.obs_date) == ["2010-08-01", ""]
    reasons = " ".join(r for _, r in t.rejected)
    assert "not in the row's year" in reasons and "ISO date" in reasons
    frac = np.tile(np.linspace(0, 1, 366), (4, 1))  # thaw grows linearly through the year
    cube = make_ddt_cube(np.full((4, 3, 4), 1000.0), YEARS, GRID, ddt_fraction_by_doy=frac)
    assert THAW_FRACTION_VAR in cube
    ddt = sample_ddt_at_sites(cube, t)
    doy = 213  # 1 August 2010
    np.testing.assert_allclose(ddt, [1000.0 * (doy - 1) / 365, 1000.0], rtol=1e-5)
    # a table built in memory without dates: season totals
    t2 = make_insitu_table([{"site_id": "A", "lon": lon, "lat": lat, "year": 2010, "alt_m": 1.0}])
    np.testing.assert_allclose(sample_ddt_at_sites(cube, t2), [1000.0])


def test_lst_without_a_daily_mean_statement_is_refused_in_one_line(tmp_path):
    import pytest

    from gee_alt.engines.local.layout import InputLayout
    from gee_alt.errors import GeeAltError
    from gee_alt.export.cog import write_cog

    grid = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (40, 40))
    coarse = make_grid("EPSG:32647", (600.0, 0.0, 600_000.0, 0.0, -600.0, 4_200_000.0), (2, 2))
    write_cog(tmp_path / "dem.tif", np.full((40, 40), 4000.0, "float32"), grid)
    write_cog(tmp_path / "landsat_ndvi" / "ndvi_2010.tif", np.full((40, 40), 0.4, "float32"), grid)
    write_cog(tmp_path / "modis_ndvi" / "ndvi_2010.tif", np.full((2, 2), 0.4, "float32"), coarse)
    lst = tmp_path / "modis_lst" / "lst_2010.tif"

    def write(tags):
        write_cog(
            lst, np.full((2, 2, 2), 5.0, "float32"), coarse, tags=tags, band_descriptions=["2010-06-01", "2010-06-09"]
        )

    write({"units": "degC"})
    with pytest.raises(GeeAltError, match="no 'quantity' tag") as e:
        InputLayout(tmp_path).modis_lst(2010)
    assert "\n" not in str(e.value)
    write({"units": "degC", "quantity": "daytime LST"})
    with pytest.raises(GeeAltError, match="says 'daytime LST'"):
        InputLayout(tmp_path).modis_lst(2010)
    write({"units": "degC", "quantity": "Daily-mean land surface temperature, 8-day composite"})
    assert InputLayout(tmp_path).modis_lst(2010).raster.data.shape == (2, 2, 2)
