"""Fixtures of the pipeline-framework tests: the toy pipeline and its inputs."""

from __future__ import annotations

import pytest

from .toybricks import build_toy, make_caldb, make_observation


@pytest.fixture
def toy():
    return build_toy()


@pytest.fixture
def toy_obs(tmp_path):
    return make_observation(tmp_path / "obs")


@pytest.fixture
def toy_caldb(tmp_path):
    return make_caldb(tmp_path / "caldb", factor=1.0)
