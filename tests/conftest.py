"""Shared pytest configuration: hypothesis profiles, matplotlib backend, fitsverify."""

from __future__ import annotations

import os

import matplotlib
import pytest
from hypothesis import HealthCheck, settings

from mxt_pipeline.io.fitsverify import fitsverify_available, run_fitsverify

matplotlib.use("Agg")

# 'ci' keeps property tests bounded on 2 shared cores; 'dev' explores more.
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=300, deadline=None)
# 'fuzz' (tox -e fuzz): 1500 examples per property, so the corrupted-file fuzzer of
# tests/fuzz drives >= 1e4 cases through the readers and `mxt validate`, and 75 per
# command through calibrate, detect and lightcurve.
settings.register_profile(
    "fuzz", max_examples=1500, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses pytest-benchmark ``timing``.

    Such a test asserts a ratio of two timings taken in the same run (best of a few
    rounds).  ``tox -e cov`` runs the suite on two pytest-xdist workers with
    ``-m "not timing"``, then the ``timing`` tests alone, serially: on two cores a
    neighbour worker would share the caches and memory bandwidth of the code being
    timed, and a ratio measured beside it is not the ratio the test means.
    """
    timing = pytest.mark.timing
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(timing)
    if hasattr(config, "workerinput"):
        # On an xdist worker (tox -e cov: --dist loadfile --no-loadscope-reorder), the
        # files that hold a `slow` test go first: the controller hands files out in
        # collection order, and the README test alone takes minutes - started last, it
        # would leave the other worker idle meanwhile.  Each worker sorts the same way,
        # so the collections stay identical; the order within a file is kept.
        slow_files = {item.path for item in items if item.get_closest_marker("slow")}
        items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture
def fitsverify():
    """Return a function ``f(path) -> FitsverifyResult``.

    Skips when fitsverify is missing on a developer machine; fails in CI, where
    ``.ci/run`` installs it.
    """
    if not fitsverify_available():
        if os.environ.get("CI"):
            pytest.fail("fitsverify must be installed in CI (.ci/run installs it)")
        pytest.skip("fitsverify is not installed")
    return run_fitsverify
