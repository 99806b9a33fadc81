"""How tox runs the suite: every test exactly once, timing tests never beside a worker.

``tox -e cov`` splits the suite into a parallel pass (pytest-xdist, ``-m "not timing"``)
and a serial pass (``-m timing``); ``tests/conftest.py`` marks the timing tests and
orders the files for the workers.  A pass dropped from tox.ini, or a benchmark test
left unmarked, would silently stop running a test or start timing it beside another
worker: these tests fail instead.
"""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from mxt_pipeline.datapaths import REPO_ROOT

from . import conftest


def _commands(env: str) -> list[list[str]]:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(REPO_ROOT / "tox.ini", encoding="utf-8")
    text = ini[f"testenv:{env}"]["commands"].replace("\\\n", " ")
    return [shlex.split(line) for line in text.splitlines() if line.strip()]


def _marker(cmd: list[str]) -> str | None:
    return cmd[cmd.index("-m") + 1] if "-m" in cmd else None


def test_cov_runs_the_suite_in_parallel_and_the_timing_tests_serially():
    cmds = _commands("cov")
    suite = [c for c in cmds if c[0] == "pytest" and c[-2:] == ["tests", "harness/tests"]]
    assert [_marker(c) for c in suite] == ["not timing", "timing"], suite
    parallel, serial = suite
    assert "-n" in parallel and "--dist" in parallel and "--no-loadscope-reorder" in parallel
    assert "-n" not in serial and not any(a.startswith("--numprocesses") for a in serial)
    # Both passes and the no-JIT lane add up into one coverage report, written last.
    assert "--cov-append" not in parallel and "--cov-append" in serial
    last = cmds[-1]
    assert "NUMBA_DISABLE_JIT=1" in last and "--cov-append" in last and "@tests/nojit.args" in last
    assert "--cov-report=json:reports/coverage.json" in last


def test_regression_never_runs_the_unit_suite():
    (cmd,) = _commands("regression")
    assert cmd[:4] == ["python", "-m", "harness", "run"] and "--no-tests" in cmd


class _Item:
    """What the collection hook reads of a pytest item."""

    def __init__(self, path: str, fixtures: tuple[str, ...] = (), slow: bool = False):
        self.path = Path(path)
        self.fixturenames = fixtures
        self.markers = ["slow"] if slow else []

    def add_marker(self, mark):
        self.markers.append(mark.name)

    def get_closest_marker(self, name):
        return name if name in self.markers else None


class _Config:
    pass


def test_benchmark_tests_are_marked_timing():
    items = [_Item("a/test_x.py", ("tmp_path",)), _Item("a/test_bench.py", ("benchmark", "tmp_path"))]
    conftest.pytest_collection_modifyitems(_Config(), items)
    assert [i.markers for i in items] == [[], ["timing"]]


@pytest.mark.parametrize("worker", [False, True])
def test_files_with_a_slow_test_go_first_on_workers_only(worker):
    items = [_Item("a/test_1.py"), _Item("b/test_2.py"), _Item("c/test_docs.py"),
             _Item("c/test_docs.py", slow=True), _Item("d/test_3.py")]  # fmt: skip
    config = _Config()
    if worker:
        config.workerinput = {"workerid": "gw0"}
    conftest.pytest_collection_modifyitems(config, items)
    order = [str(i.path) for i in items]
    if worker:
        # The whole file first (the order within it kept), then the others in order.
        assert order == ["c/test_docs.py", "c/test_docs.py", "a/test_1.py", "b/test_2.py", "d/test_3.py"]
        assert items[1].markers == ["slow"]
    else:
        assert order == ["a/test_1.py", "b/test_2.py", "c/test_docs.py", "c/test_docs.py", "d/test_3.py"]
