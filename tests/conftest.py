"""Fixtures for every test directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.pulse import pulse_lock


@pytest.fixture(autouse=True)
def _one_pulseaudio_test_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """PulseAudio-marked tests hold the machine-wide lock (tests/integration/pulse.py)."""
    if request.node.get_closest_marker("pulseaudio") is None:
        yield
        return
    with pulse_lock():
        yield
