"""CF NetCDF of all years and STAC Items for yearly COGs."""

import json

import numpy as np
import pytest
import rasterio

from gee_alt.cube import make_ddt_cube
from gee_alt.errors import GeeAltError
from gee_alt.export.cog import write_cog
from gee_alt.grid import make_grid, rowcol_to_lonlat
from gee_alt.export.netcdf import available_engine, build_alt_dataset, read_alt_netcdf, write_alt_netcdf
from gee_alt.export.stac import make_stac_item, stac_item_for_cog, write_stac_item
from gee_alt.science.stefan import alt_from_ddt, alt_sd

GRID = make_grid("EPSG:32647", (30.0, 0.0, 600_000.0, 0.0, -30.0, 4_200_000.0), (7, 5))
YEARS = [2019, 2020, 2021]


def _cube():
    rng = np.random.default_rng(0)
    ddt = rng.uniform(800, 1600, (3, 5, 7)).astype(np.float32)
    ddt[1, 2, 3] = np.nan
    return make_ddt_cube(ddt, YEARS, GRID, ddt_sd_degc_days=np.full_like(ddt, 50.0), synthetic=True)


def test_netcdf_roundtrip_cf_attributes(tmp_path):
    cube = _cube()
    alt = alt_from_ddt(cube["ddt_degc_days"].values, 0.05)
    sd = alt_sd(cube["ddt_degc_days"].values, cube["ddt_sd_degc_days"].values, 0.05, 0.003)
    p = write_alt_netcdf(tmp_path / "alt.nc", cube, alt, sd, calibration={"E": 0.05, "E_ci95": [0.047, 0.053],
                                                                           "E_sd": 0.003, "n_used": 40})
    assert not list(tmp_path.glob(".tmp-*"))
    ds = read_alt_netcdf(p)
    assert ds.rio.crs.to_epsg() == 32647 and tuple(ds.rio.transform())[:6] == GRID["crs_transform"]
    assert list(ds["year"].values) == YEARS and ds["alt_m"].dims == ("year", "y", "x")
    np.testing.assert_allclose(ds["alt_m"].values, alt.astype(np.float32), equal_nan=True)
    np.testing.assert_allclose(ds["alt_sd_m"].values, sd.astype(np.float32), equal_nan=True)
    np.testing.assert_allclose(ds["ddt_degc_days"].values, cube["ddt_degc_days"].values, equal_nan=True)
    assert np.isnan(ds["alt_m"].values[1, 2, 3])
    assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["stefan_E"] == 0.05
    assert ds["alt_m"].attrs["standard_name"] == "permafrost_active_layer_thickness"
    assert ds["alt_m"].attrs["units"] == "m" and ds["alt_m"].encoding["grid_mapping"] == "spatial_ref"
    assert ds["time"].attrs["units"] == "days since 1970-01-01"
    # 2020-07-01 is day 18444 since 1970-01-01
    assert float(ds["time"].values[1]) == 18444.0
    gm = ds["spatial_ref"].attrs
    assert gm["grid_mapping_name"] == "transverse_mercator" and "UTM zone 47N" in gm["crs_wkt"]
    assert [float(v) for v in gm["GeoTransform"].split()] == [600000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0]
    np.testing.assert_allclose(ds["x"].values, 600_000 + 15 + 30 * np.arange(7))
    # GDAL reads the georeferencing back
    with rasterio.open(f"netcdf:{p}:alt_m") as src:
        assert src.crs.to_epsg() == 32647
        assert tuple(src.transform)[:6] == pytest.approx((30.0, 0.0, 600000.0, 0.0, -30.0, 4200000.0))
    assert available_engine() in ("scipy", "h5netcdf", "netcdf4")


def test_netcdf_shape_checked():
    with pytest.raises(GeeAltError, match="shape"):
        build_alt_dataset(_cube(), np.zeros((2, 5, 7)))


def test_stac_item_for_cog(tmp_path):
    data = np.arange(35, dtype=np.float32).reshape(5, 7)
    cog = write_cog(tmp_path / "alt_2020.tif", data, GRID, tags={"units": "m"})
    item = stac_item_for_cog(cog, 2020, properties={"gee_alt:E": 0.05},
                             extra_assets={"alt_sd_m": ("alt_sd_2020.tif", "ALT sd 2020", "m")})
    p = write_stac_item(tmp_path / "alt_2020.json", item)
    back = json.loads(p.read_text())
    assert back["type"] == "Feature" and back["stac_version"] == "1.0.0" and back["id"] == "gee-alt-alt_m-2020"
    assert back["properties"]["datetime"] is None
    assert back["properties"]["start_datetime"] == "2020-01-01T00:00:00Z"
    assert back["properties"]["proj:epsg"] == 32647 and back["properties"]["proj:shape"] == [5, 7]
    with rasterio.open(cog) as src:
        assert back["properties"]["proj:transform"][:6] == list(src.transform)[:6]
    assert back["assets"]["alt_m"]["href"] == "alt_2020.tif"
    assert back["assets"]["alt_m"]["type"].endswith("profile=cloud-optimized")
    assert back["assets"]["alt_m"]["raster:bands"][0]["unit"] == "m"
    assert {"rel": "self", "href": "./alt_2020.json", "type": "application/geo+json"} in back["links"]
    # footprint: closed ring containing the lon/lat of every corner pixel centre, inside bbox
    ring = back["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]
    w, s, e, n = back["bbox"]
    lon, lat = rowcol_to_lonlat(GRID, [0.5, 0.5, 4.5, 4.5], [0.5, 6.5, 0.5, 6.5])
    assert np.all((lon > w) & (lon < e) & (lat > s) & (lat < n))
    lon_c, lat_c = rowcol_to_lonlat(GRID, [0.0, 0.0, 5.0, 5.0], [0.0, 7.0, 0.0, 7.0])  # grid corners
    assert [w, s, e, n] == pytest.approx([lon_c.min(), lat_c.min(), lon_c.max(), lat_c.max()], abs=1e-6)
    assert set(back) >= {"type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "properties", "links",
                         "assets"}
    item2 = make_stac_item("x.tif", GRID, 2021, collection="gee-alt")
    assert item2["collection"] == "gee-alt" and item2["links"][0]["rel"] == "collection"
