"""Fixtures of the simulation tests: the bundled CALDB calibration set, small scenarios."""

from __future__ import annotations

import pytest

#: Start of the test observations (mission time, 2026-07-06).
T0 = 3.0e8


@pytest.fixture(scope="session")
def calset():
    """The calibration set of the bundled CALDB valid at T0 (the simulator's default)."""
    from mxt_pipeline.caldb.simulator import load_simulator_calibration

    return load_simulator_calibration(None, met=T0)[0]


@pytest.fixture(scope="session")
def caldb_info():
    from mxt_pipeline.caldb.simulator import load_simulator_calibration

    return load_simulator_calibration(None, met=T0)[1]
