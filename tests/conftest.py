"""Fixtures shared by ``tests/unit`` and ``tests/integration``.

Helper functions and classes (stub pixel server, CLI runner, small scenes) are in
``tests/helpers``; this file holds only pytest fixtures and makes ``helpers`` importable.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def ee_offline():
    """``ee`` initialised against the algorithm catalog that earthengine-api ships
    (``ee.apitestcase``): graphs can be built, and a wrong algorithm or argument name raises as
    it would on the server. No credentials, no network."""
    from ee import apitestcase

    case = apitestcase.ApiTestCase("setUp")
    case.setUp()
    try:
        yield
    finally:
        case.tearDown()
