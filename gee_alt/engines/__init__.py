"""Engines: each turns its settings into the yearly DDT cube of a run, and nothing more.

An engine (:class:`Engine`) is created from validated settings, checks its inputs before any
output is written (:meth:`Engine.preflight`), says what identifies its run for resuming
(:meth:`Engine.settings`), and :meth:`Engine.produce` writes each finished year through the one
DDT writer (:func:`gee_alt.runs.write_ddt_year`), records it in the shared resume record
(:class:`gee_alt.runs.Progress`) and hands back an :class:`EngineOutput`: the DDT cube in memory
plus the rasters the site screen needs. Everything after that (:mod:`gee_alt.downstream`) is the
same for every engine.

- :mod:`gee_alt.engines.local`: scikit-learn on local GeoTIFFs (the demo scene, or yours);
- :mod:`gee_alt.engines.ee`: Google Earth Engine graphs, pulled with xee.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import xarray as xr

if TYPE_CHECKING:  # the engines package stays light: importing an engine's layout loads no downstream
    from gee_alt.downstream import SiteFields

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def no_progress(description: str, total: int) -> Callable[[int], None]:
    """A progress factory that shows nothing."""
    return lambda n=1: None


@dataclass
class EngineOutput:
    """What an engine hands to the downstream.

    ``cube``: the DDT cube of all requested years (schema in :mod:`gee_alt.cube`, checked);
    ``fields``: DEM, mean NDVI and land cover on the cube grid; ``resumed_years``: years taken
    from an interrupted run instead of being recomputed; ``missing_years``: years that failed
    (the cube holds the others; the run ends incomplete and a rerun retries them);
    ``validation``: engine-side scores (e.g. Landsat ST vs downscaled LST) for ``validation.json``.
    """

    cube: xr.Dataset
    fields: SiteFields
    resumed_years: list[int] = field(default_factory=list)
    missing_years: dict[int, str] = field(default_factory=dict)  # year -> one-line reason (run incomplete)
    validation: dict = field(default_factory=dict)  # engine-side scores merged into validation.json


class Engine(Protocol):
    """The contract every engine keeps (see the module docstring)."""

    name: str
    synthetic: bool

    def settings(self) -> dict: ...

    def preflight(self) -> None: ...

    def bbox_lonlat(self) -> tuple[float, float, float, float]: ...

    def produce(self, run, progress_record, progress: ProgressFactory = no_progress) -> EngineOutput: ...
