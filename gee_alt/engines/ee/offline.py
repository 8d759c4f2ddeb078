"""Initialise earthengine-api with no credentials and no network (for ``plan`` and tests).

The library normally downloads its algorithm catalog from the server when initialised. Here
the catalog shipped with earthengine-api (``ee/tests/algorithms.json``, the same one
``ee.apitestcase`` uses) is installed instead, so ``ee.Image(...)`` and friends build real
graphs offline and wrong algorithm or argument names raise exactly as they would against the
server. Nothing here needs pytest or unittest.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator

OFFLINE_PROJECT = "gee-alt-offline"


@functools.lru_cache(maxsize=1)
def shipped_algorithms() -> dict:
    """The algorithm catalog shipped inside earthengine-api, converted like the server's answer."""
    import ee
    from ee import _cloud_api_utils

    path = os.path.join(os.path.dirname(os.path.realpath(ee.__file__)), "tests", "algorithms.json")
    with open(path, encoding="utf-8") as f:
        return _cloud_api_utils.convert_algorithms(json.load(f))


def _offline_compute_value(obj):
    """Refuse any server computation while offline (a plan must never need one)."""
    import ee

    raise ee.EEException("offline: no Earth Engine server in this session (plan builds graphs only)")


def init_offline() -> None:
    """Initialise ``ee`` against the shipped catalog; no credentials, no network.

    Leaves the patched ``ee.data`` functions in place (use :func:`offline_ee` to restore).
    """
    import ee
    from ee import deprecation

    ee.Reset()
    ee.data._install_cloud_api_resource = lambda: None  # no HTTP client
    ee.data.getAlgorithms = shipped_algorithms
    ee.data.computeValue = _offline_compute_value
    deprecation._FetchDataCatalogStac = lambda: {}  # no catalog download for deprecation notes
    ee.Initialize(None, "", project=OFFLINE_PROJECT)


_PATCHED = ("_install_cloud_api_resource", "getAlgorithms", "computeValue", "computePixels")


@contextlib.contextmanager
def offline_ee() -> Iterator[None]:
    """Context manager: offline-initialised ``ee`` inside, previous ``ee.data`` state restored after."""
    import ee
    from ee import _state, deprecation

    saved = {name: getattr(ee.data, name) for name in _PATCHED}
    saved_stac = deprecation._FetchDataCatalogStac
    try:
        init_offline()
        yield
    finally:
        for name, fn in saved.items():
            setattr(ee.data, name, fn)
        deprecation._FetchDataCatalogStac = saved_stac
        _state.reset_state()
