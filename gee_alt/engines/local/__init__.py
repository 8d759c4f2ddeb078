"""The local engine: the same science as the Earth Engine engine, on local rasters with scikit-learn.

Must not import ``ee``.
"""
