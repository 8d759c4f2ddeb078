"""gee-alt: 30 m permafrost active-layer thickness from satellite data.

Two engines (Google Earth Engine, and a local scikit-learn engine) produce the same yearly
thawing-degree-day cube; one shared downstream calibrates the Stefan relation
``ALT = E * sqrt(DDT)`` on in-situ sites and writes yearly ALT GeoTIFFs.
"""

__version__ = "0.1.0"

from gee_alt.errors import GeeAltError

__all__ = ["GeeAltError", "__version__"]
