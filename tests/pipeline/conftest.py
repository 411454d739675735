"""Fixtures of the session tests over fake engines."""

from __future__ import annotations

import pytest


@pytest.fixture
def sessions():
    """Sessions a test started; each must close, all its threads joined, in 1.5 s."""
    made = []
    yield made
    for session in made:
        assert session.close(1.5), "threads still running after close()"
