"""The Google Earth Engine engine: pure graph builders and the edges that talk to the server.

- :mod:`~gee_alt.engines.ee.collections`: QA-masked, scaled inputs (MODIS LST/NDVI, Landsat C2 L2, DEM);
- :mod:`~gee_alt.engines.ee.composite`: yearly composites (growing-season NDVI, thaw-season LST windows);
- :mod:`~gee_alt.engines.ee.sharpen`: random-forest sharpening with residual correction and tree spread;
- :mod:`~gee_alt.engines.ee.thaw`: the yearly 30 m DDT image (``ddt_degc_days``, ``ddt_sd_degc_days``, ``n_obs``);
- :mod:`~gee_alt.engines.ee.validate`: Landsat ST vs downscaled LST statistics;
- :mod:`~gee_alt.engines.ee.offline`: building graphs with no credentials and no network;
- :mod:`~gee_alt.engines.ee.session`, :mod:`~gee_alt.engines.ee.pull`, :mod:`~gee_alt.engines.ee.plan`: I/O edges.

Graph builders are pure functions from config to ``ee`` objects; nothing is computed until
the pull.
"""
