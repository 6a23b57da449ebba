"""Shared test configuration.

The suite mirrors the package (``io/``, ``formats/``, ``ops/``, ``pipelines/``,
``simulate/``, ``cli/``, ``scipion/``); helpers live in :mod:`helpers` (this
folder is on ``sys.path``, so ``from helpers.fixtures import real_fixture``).
"""
import pytest

from helpers.fixtures import real_fixture


@pytest.fixture
def real():
    """The :func:`helpers.fixtures.real_fixture` helper as a fixture."""
    return real_fixture
