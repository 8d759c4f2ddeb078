"""The CF dataset of all years and the STAC Items, built in memory: georeferencing and fields from the grid."""

import datetime as dt

import numpy as np
import pystac
import pytest
from pyproj import CRS, Transformer
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterExtension
from pystac.validation import validate_dict

from gee_alt.cube import grid_of
from gee_alt.errors import GeeAltError
from gee_alt.export.netcdf import build_alt_dataset
from gee_alt.export.stac import alt_item
from gee_alt.grid import MODIS_1KM, MODIS_SINUSOIDAL, make_grid
from gee_alt.science.stefan import alt_from_ddt
from helpers.export import GRID, TRANSFORM, ddt_cube

UTC = dt.UTC


def test_alt_dataset_is_georeferenced_by_rioxarray():
    cube = ddt_cube()
    alt = alt_from_ddt(cube["ddt_degc_days"].values, 0.05)
    ds = build_alt_dataset(cube, alt, 0.1 * alt)
    assert ds.rio.crs.to_epsg() == 32647 and tuple(ds.rio.transform())[:6] == TRANSFORM
    assert grid_of(ds) == GRID and grid_of(ds["alt_m"]) == GRID
    for v in ("alt_m", "alt_sd_m", "ddt_degc_days", "ddt_sd_degc_days"):
        assert ds[v].encoding["grid_mapping"] == "spatial_ref", v
    assert "grid_mapping" not in ds["time_bnds"].encoding
    gm = ds["spatial_ref"].attrs
    # UTM zone 47N: transverse Mercator on the 99 degE meridian, k0 0.9996, false easting 500 km
    assert gm["grid_mapping_name"] == "transverse_mercator" and gm["longitude_of_central_meridian"] == 99.0
    assert gm["scale_factor_at_central_meridian"] == 0.9996 and gm["false_easting"] == 500000.0
    assert CRS.from_wkt(gm["crs_wkt"]).to_epsg() == 32647
    # GDAL order: x origin, pixel width, row rotation, y origin, column rotation, pixel height
    assert [float(v) for v in gm["GeoTransform"].split()] == [600000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0]
    assert ds["x"].attrs["standard_name"] == "projection_x_coordinate" and ds["y"].attrs["axis"] == "Y"
    np.testing.assert_array_equal(ds["x"].values, 600_015.0 + 30.0 * np.arange(7))
    np.testing.assert_array_equal(ds["y"].values, 4_199_985.0 - 30.0 * np.arange(5))
    assert ds["alt_m"].attrs["standard_name"] == "permafrost_active_layer_thickness"
    assert ds["alt_m"].attrs["units"] == "m" and ds["alt_m"].attrs["ancillary_variables"] == "alt_sd_m"
    assert float(ds["time"].values[1]) == 18444.0  # 2020-07-01 is day 18444 since 1970-01-01


def test_netcdf_shape_checked():
    with pytest.raises(GeeAltError, match="shape"):
        build_alt_dataset(ddt_cube(), np.zeros((2, 5, 7)))


def test_alt_item_fields_come_from_the_grid():
    item = alt_item(GRID, 2020, "alt_2020.tif", "alt_sd_2020.tif", properties={"gee_alt:E": 0.05})
    d = item.to_dict(include_self_link=False, transform_hrefs=False)
    validate_dict(d, extensions=[])  # the core Item schema pystac ships (offline)
    back = pystac.Item.from_dict(d)
    assert back.id == "gee-alt-alt_m-2020" and back.datetime is None
    assert back.common_metadata.start_datetime == dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert back.common_metadata.end_datetime == dt.datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert back.properties["gee_alt:E"] == 0.05
    assert ProjectionExtension.has_extension(back) and RasterExtension.has_extension(back)
    proj = ProjectionExtension.ext(back)
    assert proj.epsg == 32647 and proj.wkt2 is None
    assert proj.shape == [5, 7]  # [height, width]
    assert proj.transform == [30.0, 0.0, 600000.0, 0.0, -30.0, 4200000.0, 0.0, 0.0, 1.0]
    assert proj.bbox == [600000.0, 4199850.0, 600210.0, 4200000.0]  # 7 x 30 m east, 5 x 30 m south
    for key, href in (("alt_m", "alt_2020.tif"), ("alt_sd_m", "alt_sd_2020.tif")):
        asset = back.assets[key]
        assert asset.href == href and asset.media_type == pystac.MediaType.COG and asset.roles == ["data"]
        (band,) = RasterExtension.ext(asset).bands
        assert band.data_type == DataType.FLOAT32 and band.nodata == "nan" and band.unit == "m"
        assert band.spatial_resolution == 30.0
    assert set(back.assets) == {"alt_m", "alt_sd_m"}


def test_alt_item_footprint_is_the_grid_outline_in_lonlat():
    item = alt_item(GRID, 2020, "alt_2020.tif")
    ring = item.geometry["coordinates"][0]
    assert item.geometry["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) == 4 * 20 + 1
    to_lonlat = Transformer.from_crs("EPSG:32647", "EPSG:4326", always_xy=True)
    corners = [to_lonlat.transform(x, y) for x in (600_000.0, 600_210.0) for y in (4_199_850.0, 4_200_000.0)]
    lon, lat = np.array(corners).T
    # east of the 99 degE central meridian the outline's extremes are its corners
    assert item.bbox == pytest.approx([lon.min(), lat.min(), lon.max(), lat.max()], abs=1e-9)
    assert ring[0] == pytest.approx(list(to_lonlat.transform(600_000.0, 4_200_000.0)), abs=1e-12)
    assert list(item.assets) == ["alt_m"]


def test_alt_item_without_epsg_carries_wkt2():
    g = make_grid(MODIS_SINUSOIDAL, (MODIS_1KM, 0.0, 8_621_323.027359463, 0.0, -MODIS_1KM, 4_264_330.243818946), (4, 3))
    proj = ProjectionExtension.ext(pystac.Item.from_dict(alt_item(g, 2015, "a.tif").to_dict()))
    assert proj.epsg is None and CRS.from_wkt(proj.wkt2) == CRS.from_user_input(MODIS_SINUSOIDAL)
    assert proj.shape == [3, 4] and proj.transform[:6] == list(g["crs_transform"])
