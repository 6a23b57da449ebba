"""Paths to the repository's conventions and to the real fixture files.

``real_fixture(...)`` finds the real files in ``../shared/fixtures/real``
(beside the repository) and skips the test with a reason when that folder is
absent, e.g. in a clone without the shared data.
"""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONVENTIONS = REPO / "conventions"
VECTORS = CONVENTIONS / "vectors"
SHARED_REAL = Path(os.environ.get("SPECTOOLS_SHARED_FIXTURES",
                                  REPO.parent / "shared" / "fixtures" / "real"))


def real_fixture(*parts):
    """Path to a real fixture file; skips the calling test when it is absent."""
    path = SHARED_REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real fixture {'/'.join(parts)} not available ({SHARED_REAL} is absent)")
    return path
