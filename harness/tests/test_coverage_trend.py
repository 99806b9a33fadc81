"""Coverage trend: per-package figures from coverage.py JSON, floor, drops, history, plot."""

from __future__ import annotations

import json

import pytest

from harness import coverage_trend as ct


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
