"""A minimal stand-in for GDAL's Python bindings (``osgeo``) built on rasterio.

For the downscaling benchmark's pyDMS runner only (see ``scripts/osgeo_shim/README.md``); never
imported by gee_alt.
"""
