"""Written exports read back: the CF NetCDF (xarray, rioxarray, GDAL) and STAC Item files (pystac)."""

import json

import numpy as np
import pystac
import pytest
import rasterio
import rioxarray
import xarray as xr
from pystac.extensions.projection import ProjectionExtension

from gee_alt.cube import grid_of
from gee_alt.errors import GeeAltError
from gee_alt.export.cog import write_cog
from gee_alt.export.netcdf import available_engine, read_alt_netcdf, write_alt_netcdf
from gee_alt.export.stac import alt_item, stac_item_for_cog, write_item
from gee_alt.science.stefan import alt_from_ddt, alt_sd
from helpers.export import GRID, TRANSFORM, YEARS, ddt_cube


def test_netcdf_roundtrip_values_and_georeferencing(tmp_path):
    cube = ddt_cube()
    alt = alt_from_ddt(cube["ddt_degc_days"].values, 0.05)
    sd = alt_sd(cube["ddt_degc_days"].values, cube["ddt_sd_degc_days"].values, 0.05, 0.003)
    p = write_alt_netcdf(
        tmp_path / "alt.nc",
        cube,
        alt,
        sd,
        calibration={"E": 0.05, "E_ci95": [0.047, 0.053], "E_sd": 0.003, "n_used": 40},
    )
    assert not list(tmp_path.glob(".tmp-*"))
    ds = read_alt_netcdf(p)
    assert list(ds["year"].values) == YEARS and ds["alt_m"].dims == ("year", "y", "x")
    np.testing.assert_allclose(ds["alt_m"].values, alt.astype(np.float32), equal_nan=True)
    np.testing.assert_allclose(ds["alt_sd_m"].values, sd.astype(np.float32), equal_nan=True)
    np.testing.assert_allclose(ds["ddt_degc_days"].values, cube["ddt_degc_days"].values, equal_nan=True)
    assert np.isnan(ds["alt_m"].values[1, 2, 3])
    assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["stefan_E"] == 0.05
    assert (
        ds["alt_m"].attrs["standard_name"] == "permafrost_active_layer_thickness" and ds["alt_m"].attrs["units"] == "m"
    )
    assert ds["time"].attrs["units"] == "days since 1970-01-01" and float(ds["time"].values[1]) == 18444.0
    # rioxarray: the dataset and each variable read back carry the grid
    assert ds.rio.crs.to_epsg() == 32647 and tuple(ds.rio.transform())[:6] == TRANSFORM
    assert grid_of(ds) == GRID and grid_of(ds["alt_sd_m"].sel(year=2021)) == GRID
    with xr.open_dataset(p, decode_coords=False) as raw:  # the CF attributes on disk
        assert raw["alt_m"].attrs["grid_mapping"] == "spatial_ref"
        assert raw["spatial_ref"].attrs["grid_mapping_name"] == "transverse_mercator"
        assert "UTM zone 47N" in raw["spatial_ref"].attrs["crs_wkt"]
    with rioxarray.open_rasterio(f"netcdf:{p}:alt_m", decode_times=False) as da:  # through GDAL
        assert da.rio.crs.to_epsg() == 32647 and tuple(da.rio.transform())[:6] == pytest.approx(TRANSFORM)
        assert da.shape == (3, 5, 7)
    with rasterio.open(f"netcdf:{p}:alt_m") as src:
        assert src.crs.to_epsg() == 32647
        assert tuple(src.transform)[:6] == pytest.approx(TRANSFORM)
    assert available_engine() in ("scipy", "h5netcdf", "netcdf4")


def test_written_item_has_a_relative_self_link_and_same_bytes(tmp_path):
    item = alt_item(GRID, 2020, "alt_2020.tif", "alt_sd_2020.tif")
    p = write_item(tmp_path / "alt_2020.stac.json", item)
    assert not list(tmp_path.glob(".tmp-*"))
    d = json.loads(p.read_text())
    assert [ln for ln in d["links"] if ln["rel"] == "self"] == [
        {"rel": "self", "href": "./alt_2020.stac.json", "type": "application/geo+json"}
    ]
    back = pystac.Item.from_dict(d)
    assert back.id == "gee-alt-alt_m-2020" and ProjectionExtension.ext(back).epsg == 32647
    assert back.assets["alt_sd_m"].href == "alt_sd_2020.tif"
    again = write_item(
        tmp_path / "copy" / "alt_2020.stac.json", alt_item(GRID, 2020, "alt_2020.tif", "alt_sd_2020.tif")
    )
    assert again.read_bytes() == p.read_bytes()


def test_stac_item_for_cog_reads_only_the_grid(tmp_path):
    cog = write_cog(tmp_path / "alt_2020.tif", np.arange(35, dtype=np.float32).reshape(5, 7), GRID)
    item = stac_item_for_cog(cog, 2020, alt_sd_href="alt_sd_2020.tif", properties={"gee_alt:E": 0.05})
    proj = ProjectionExtension.ext(item)
    assert proj.epsg == 32647 and proj.shape == [5, 7] and proj.transform[:6] == list(TRANSFORM)
    assert item.assets["alt_m"].href == "alt_2020.tif" and item.properties["gee_alt:E"] == 0.05
    built = alt_item(GRID, 2020, "alt_2020.tif", "alt_sd_2020.tif", properties={"gee_alt:E": 0.05})
    assert item.to_dict(transform_hrefs=False) == built.to_dict(transform_hrefs=False)
    with pytest.raises(GeeAltError, match="not found"):
        stac_item_for_cog(tmp_path / "missing.tif", 2020)
