"""``gee-alt prepare``: the local engine's input layout built from raw NASA/USGS files.

For users without Earth Engine. The QA rules, scales and daily-mean model are the ones the
Earth Engine engine uses (:mod:`gee_alt.science.product_rules`); grids are the ones it pulls
(:mod:`gee_alt.engines.ee.local_inputs`: the 30 m UTM grid of the AOI, MODIS lattices around it).

- :mod:`~gee_alt.prepare.modis_files`: MODIS granules (HDF4-EOS via pyhdf, or GeoTIFF exports)
  identified and read by window;
- :mod:`~gee_alt.prepare.lst`: MOD11A1/MYD11A1 days -> thaw-season window composites;
- :mod:`~gee_alt.prepare.ndvi`: MOD13Q1 -> growing-season MODIS NDVI;
- :mod:`~gee_alt.prepare.landsat`: Landsat C2 L2 scenes -> growing-season NDVI on the DEM grid;
- :mod:`~gee_alt.prepare.dem`: DEM tiles -> ``dem.tif``;
- :mod:`~gee_alt.prepare.build`: the whole layout, resumable.
"""
