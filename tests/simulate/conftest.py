"""Fixtures of the simulation tests: the bundled CALDB calibration set, small scenarios."""

from __future__ import annotations

import pytest

from mxt_pipeline.errors import MXTCaldbError

#: Start of the test observations (mission time, 2026-07-06).
T0 = 3.0e8


@pytest.fixture(scope="session")
def calset():
    """The calibration set of the bundled CALDB valid at T0 (the simulator's default)."""
    try:
        from mxt_pipeline.simulate.calibration import load_calibration

        cs, _ = load_calibration(None, met=T0)
    except ImportError as exc:  # the CALDB models are written by another part of the project
        pytest.skip(f"CALDB models not available: {exc}")
    except MXTCaldbError as exc:
        pytest.skip(f"bundled CALDB not available: {exc}")
    return cs


@pytest.fixture(scope="session")
def caldb_info():
    from mxt_pipeline.simulate.calibration import load_calibration

    try:
        return load_calibration(None, met=T0)[1]
    except (ImportError, MXTCaldbError) as exc:
        pytest.skip(f"CALDB not available: {exc}")
