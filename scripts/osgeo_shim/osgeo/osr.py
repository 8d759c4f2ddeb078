"""``osgeo.osr`` stand-in: a spatial reference on :class:`rasterio.crs.CRS`."""

from __future__ import annotations

from rasterio.crs import CRS


class SpatialReference:
    """The subset of ``osr.SpatialReference`` a raster workflow needs (import/export WKT, PROJ, EPSG)."""

    def __init__(self, wkt: str = ""):
        self._crs = CRS.from_wkt(wkt) if wkt else None

    def ImportFromEPSG(self, code: int) -> int:  # noqa: N802 (GDAL's API names)
        self._crs = CRS.from_epsg(int(code))
        return 0

    def ImportFromWkt(self, wkt: str) -> int:  # noqa: N802
        self._crs = CRS.from_wkt(wkt)
        return 0

    def ImportFromProj4(self, proj4: str) -> int:  # noqa: N802
        self._crs = CRS.from_proj4(proj4)
        return 0

    def ExportToWkt(self) -> str:  # noqa: N802
        return self._crs.to_wkt() if self._crs is not None else ""

    def ExportToProj4(self) -> str:  # noqa: N802
        return self._crs.to_proj4() if self._crs is not None else ""

    def SetAxisMappingStrategy(self, strategy: int) -> None:  # noqa: N802
        return None


OAMS_TRADITIONAL_GIS_ORDER = 0
