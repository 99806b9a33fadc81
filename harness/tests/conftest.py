"""Fixtures of the harness's own tests: hypothesis profiles, a private checkout layout."""

from __future__ import annotations

import os

import matplotlib
import pytest
from hypothesis import HealthCheck, settings

from harness.config import load_config
from mxt_pipeline.io.fitsverify import fitsverify_available, run_fitsverify

matplotlib.use("Agg")

# Same profiles as tests/conftest.py: 'ci' keeps property tests bounded on 2 cores.
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def config():
    """The harness configuration of the checkout."""
    return load_config()


@pytest.fixture
def fitsverify():
    """``run_fitsverify``; skips locally and fails in CI when fitsverify is missing."""
    if not fitsverify_available():
        if os.environ.get("CI"):
            pytest.fail("fitsverify must be installed in CI (.ci/run installs it)")
        pytest.skip("fitsverify is not installed")
    return run_fitsverify


@pytest.fixture
def source_date(monkeypatch):
    """Fix DATE so that two products written in one test differ only where a test says."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
