"""Coverage trend: per-package figures from coverage.py JSON, floor, drops, history, plot."""

from __future__ import annotations

import json

import pytest

from harness import coverage_trend as ct
from mxt_pipeline.errors import MXTInputError


def _report(files: dict[str, tuple[int, int, int, int]]) -> dict:
    """A coverage.py JSON report: path -> (covered lines, statements, covered branches, branches)."""
    return {
        "meta": {"version": "7.0"},
        "files": {
            p: {"summary": {"covered_lines": a, "num_statements": b, "covered_branches": c, "num_branches": d}}
            for p, (a, b, c, d) in files.items()
        },
        "totals": {},
    }


FILES = {
    "mxt_pipeline/io/fits.py": (90, 100, 18, 20),
    "mxt_pipeline/io/spec.py": (50, 50, 10, 10),
    "mxt_pipeline/errors.py": (10, 20, 0, 0),
    "/abs/checkout/harness/fitsdiff.py": (80, 100, 30, 40),
    "harness/tests/test_x.py": (5, 5, 0, 0),  # tests are not counted
    "other/thing.py": (1, 100, 0, 0),  # outside the packages
}


def test_package_grouping_and_percentages(tmp_path):
    path = tmp_path / "coverage.json"
    path.write_text(json.dumps(_report(FILES)))
    pk = ct.package_coverage(path)
    assert set(pk) == {"mxt_pipeline", "mxt_pipeline.io", "mxt_pipeline.errors", "harness", "harness.fitsdiff"}
    assert (pk["mxt_pipeline"].lines_covered, pk["mxt_pipeline"].lines_total) == (150, 170)
    assert pk["mxt_pipeline"].line_pct == pytest.approx(100 * 150 / 170)
    assert pk["mxt_pipeline"].branch_pct == pytest.approx(100 * 28 / 30)
    assert pk["mxt_pipeline.io"].line_pct == pytest.approx(140 / 150 * 100)
    with pytest.raises(ValueError):
        ct.package_coverage({"nope": 1})


def _check(files, history, floor_line=0.0, floor_branch=0.0):
    return ct.check_coverage(ct.package_coverage(_report(files)), history,
                             {"package": "mxt_pipeline", "floor": {"line": floor_line, "branch": floor_branch}, "max_drop": 0.5})  # fmt: skip


def test_floor(tmp_path):
    ok = _check(FILES, [], floor_line=88.0)
    assert ok.ok  # 88.24 %
    bad = _check(FILES, [], floor_line=90.0)
    assert not bad.ok and "below the floor 90.00%" in bad.message()
    badb = _check(FILES, [], floor_branch=95.0)
    assert not badb.ok and "branch coverage" in badb.message()


def _history_with(tmp_path, files, status="ok", floor=0.0):
    path = tmp_path / "hist.csv"
    ct.append_history(path, ct.package_coverage(_report(files)), commit="abc", status=status, floor_line=floor)
    return path


def test_drop_more_than_half_a_point_fails(tmp_path):
    hist = ct.read_history(_history_with(tmp_path, FILES))
    slightly = dict(FILES, **{"mxt_pipeline/errors.py": (10, 21, 0, 0)})  # 88.24 -> 87.72: -0.52
    res = _check(slightly, hist)
    assert not res.ok and "dropped by 0.52 points" in res.message()
    tiny = dict(FILES, **{"mxt_pipeline/errors.py": (9, 20, 0, 0)})  # 150->149/170: -0.59
    assert not _check(tiny, hist).ok
    small = dict(FILES, **{"mxt_pipeline/io/fits.py": (90, 100, 18, 20), "mxt_pipeline/errors.py": (10, 20, 0, 0), "mxt_pipeline/new.py": (7, 8, 0, 0)})
    assert _check(small, hist).ok  # 157/178 = 88.20: -0.04


def test_failing_rows_are_not_the_reference(tmp_path):
    path = _history_with(tmp_path, FILES)
    worse = dict(FILES, **{"mxt_pipeline/errors.py": (0, 20, 0, 0)})
    ct.append_history(path, ct.package_coverage(_report(worse)), commit="def", status="fail", floor_line=0.0)
    # Running again on the worse code still compares with the last passing run.
    assert not _check(worse, ct.read_history(path)).ok


def test_floor_is_never_lowered(tmp_path):
    hist = ct.read_history(_history_with(tmp_path, FILES, floor=85.0))
    res = _check(FILES, hist, floor_line=80.0)
    assert not res.ok and "never lowered" in res.message()
    assert _check(FILES, hist, floor_line=86.0).ok


def test_history_header_once_and_plot(tmp_path):
    path = _history_with(tmp_path, FILES)
    ct.append_history(path, ct.package_coverage(_report(FILES)), commit="def", status="ok", floor_line=1.0)
    text = path.read_text().splitlines()
    assert text[0].split(",") == list(ct.HISTORY_FIELDS)
    assert sum(1 for line in text if line.startswith("commit,")) == 1
    rows = ct.read_history(path)
    assert len(rows) == 2 * 5 and {r["commit"] for r in rows} == {"abc", "def"}
    png = ct.plot_trend(rows, tmp_path / "trend.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ct.plot_trend([], tmp_path / "none.png") is None


# Per-package floors (coverage.package_floors): the science packages on their own.
SCIENCE = {
    "mxt_pipeline/calib/energy.py": (97, 100, 45, 50),  # 97 % / 90 %
    "mxt_pipeline/simulate/bench.py": (96, 100, 41, 50),  # 96 % / 82 %
    "mxt_pipeline/simulate/cases.py": (100, 100, 0, 0),  # 98 % / 82 % together
    "mxt_pipeline/detect/search.py": (94, 100, 48, 50),  # 94 % / 96 %
}
FLOORS = {"mxt_pipeline.calib": {"line": 95.0, "branch": 85.0},
          "mxt_pipeline.simulate": {"line": 95.0, "branch": 85.0},
          "mxt_pipeline.detect": {"line": 95.0, "branch": 85.0}}  # fmt: skip


def _check_floors(files, floors):
    return ct.check_coverage(ct.package_coverage(_report(files)), [],
                             {"package": "mxt_pipeline", "floor": {"line": 0.0, "branch": 0.0},
                              "package_floors": floors})  # fmt: skip


def test_package_floor_failures_name_the_package_and_the_figure():
    res = _check_floors(SCIENCE, FLOORS)
    assert not res.ok
    assert sorted(res.failed_packages) == ["mxt_pipeline.detect", "mxt_pipeline.simulate"]
    msg = res.message()
    # simulate: 41 of 50 branches; detect: 94 of 100 lines; calib passes both.
    assert "mxt_pipeline.simulate: branch coverage 82.00% is below its floor 85.00%" in msg
    assert "mxt_pipeline.detect: line coverage 94.00% is below its floor 95.00%" in msg
    assert "mxt_pipeline.calib" not in msg
    assert "mxt_pipeline.simulate: line" not in msg and "mxt_pipeline.detect: branch" not in msg
    # The whole package passes its own floor: only the subpackages fail.
    assert ct.check_coverage(ct.package_coverage(_report(SCIENCE)), [], {"floor": {"line": 90.0}}).ok


def test_package_floors_pass_at_the_floor_and_fail_just_below():
    exact = {"mxt_pipeline/geometry/wcs.py": (95, 100, 85, 100)}
    floors = {"mxt_pipeline.geometry": {"line": 95.0, "branch": 85.0}}
    assert _check_floors(exact, floors).ok
    below = {"mxt_pipeline/geometry/wcs.py": (95, 100, 84, 100)}
    res = _check_floors(below, floors)
    assert not res.ok and res.failed_packages == ["mxt_pipeline.geometry"]
    assert "mxt_pipeline.geometry: branch coverage 84.00% is below its floor 85.00%" in res.message()
    # Only one kind given: the other is not checked.
    assert _check_floors(below, {"mxt_pipeline.geometry": {"line": 95.0}}).ok


def test_package_floor_on_a_package_absent_from_the_report_fails():
    res = _check_floors(SCIENCE, {"mxt_pipeline.lightcurve": {"line": 95.0, "branch": 85.0}})
    assert not res.ok and res.failed_packages == ["mxt_pipeline.lightcurve"]
    assert "mxt_pipeline.lightcurve: no file of the package" in res.message()


@pytest.mark.parametrize("floors", [
    ["mxt_pipeline.calib"],
    {"mxt_pipeline.calib": 95.0},
    {"mxt_pipeline.calib": {}},
    {"mxt_pipeline.calib": {"line": 95.0, "brnach": 85.0}},
    {"mxt_pipeline.calib": {"line": 195.0}},
    {"mxt_pipeline.calib": {"line": "high"}},
    {"mxt_pipeline.calib": {"branch": True}},
])  # fmt: skip
def test_malformed_package_floors_fail_the_check(floors):
    with pytest.raises(MXTInputError):
        ct.parse_package_floors(floors)
    res = _check_floors(SCIENCE, floors)
    assert not res.ok and "coverage.package_floors" in res.message()


def test_configured_science_floors_are_the_issue_figures():
    """harness/config.yaml holds >= 95 % line and >= 85 % branch for the five science packages."""
    from harness.config import load_config

    floors = ct.parse_package_floors(load_config().coverage.get("package_floors"))
    for pkg in ("calib", "detect", "lightcurve", "simulate", "geometry"):
        line, branch = floors[f"mxt_pipeline.{pkg}"]
        assert line >= 95.0 and branch >= 85.0, pkg
