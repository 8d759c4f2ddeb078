"""Helpers shared by the unit and integration tests (imported as ``helpers.*``; fixtures live in
``tests/conftest.py``).

Paths: :data:`REPO` (the checkout), :data:`TEST_DATA` (small real files copied into the repo, with
their source in ``tests/data/README.md``), :data:`SHARED_DATA` (larger real files beside the
checkout in ``../shared/data``; tests that need them skip with a reason when it is absent).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_DATA = REPO / "tests" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"
