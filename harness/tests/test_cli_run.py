"""The command line and the run steps that need no golden data."""

from __future__ import annotations

import json

from click.testing import CliRunner

from harness import run as run_mod
from harness.cli import cli, main
from harness.results import Status
from harness.run import (
    RunOptions,
    coverage_step,
    ensemble_step,
    fresh_coverage_report,
    run_regression,
)

from .products import write_events_file


def _coverage_json(path, covered=90, total=100):
    doc = {"files": {"mxt_pipeline/io/fits.py": {"summary": {"covered_lines": covered, "num_statements": total,
                                                             "covered_branches": 9, "num_branches": 10}}}}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def test_diff_command(tmp_path):
    a = write_events_file(tmp_path / "a.fits", n=20, seed=1)
    b = write_events_file(tmp_path / "b.fits", n=20, seed=2)
    r = CliRunner().invoke(cli, ["diff", str(a), str(a)])
    assert r.exit_code == 0 and "identical within tolerances" in r.output
    r = CliRunner().invoke(cli, ["diff", str(a), str(b)])
    assert r.exit_code == 1 and "[EVENTS] column ENERGY" in r.output
    t1, t2 = tmp_path / "x.txt", tmp_path / "y.txt"
    t1.write_text("1")
    t2.write_text("2")
    r = CliRunner().invoke(cli, ["diff", str(t1), str(t2)])
    assert r.exit_code == 1 and "SHA-256" in r.output


def test_coverage_command_records_and_checks(tmp_path, config):
    cfg_path = tmp_path / "c.yaml"
    raw = {**config.raw, "coverage": {"package": "mxt_pipeline", "floor": {"line": 80.0, "branch": 50.0}, "max_drop": 0.5}}
    import yaml

    cfg_path.write_text(yaml.safe_dump(raw))
    rep = tmp_path / "reports"
    r = CliRunner().invoke(cli, ["--config", str(cfg_path), "coverage", "--json", str(_coverage_json(tmp_path / "a.json")),
                                 "--reports", str(rep), "--record"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (rep / "coverage-history.csv").exists() and (rep / "coverage-trend.png").exists()
    r = CliRunner().invoke(cli, ["--config", str(cfg_path), "coverage", "--json",
                                 str(_coverage_json(tmp_path / "b.json", covered=89)), "--reports", str(rep)])  # fmt: skip
    assert r.exit_code == 1 and "dropped by 1.00 points" in r.output


def test_run_command_without_golden(tmp_path, monkeypatch):
    r = CliRunner().invoke(cli, ["run", "--skip", "ensemble,coverage", "--skip", "timing", "--reports", str(tmp_path / "r"),
                                 "--golden", str(tmp_path / "g"), "--no-record", "--allow-missing-golden"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "MISSING golden/grb_bright" in r.output and "regression PASSED" in r.output
    r = CliRunner().invoke(cli, ["run", "--skip", "nonsense"])
    assert r.exit_code == 2 and "unknown step" in r.output
    assert main(["run", "--skip", "ensemble,coverage,timing", "--reports", str(tmp_path / "r2"), "--golden",
                 str(tmp_path / "g"), "--no-record", "--require-golden"]) == 1  # fmt: skip
    assert main(["--help"]) == 0
    assert main(["golden", "list"]) == 0


def test_coverage_step_with_given_report(tmp_path, config):
    cfg = config.with_overrides(coverage={"floor": {"line": 95.0, "branch": 0.0}})
    opts = RunOptions(config=cfg, coverage_json=_coverage_json(tmp_path / "c.json"), reports_dir=tmp_path, record=False)
    checks, plot = coverage_step(opts, tmp_path, "abc")
    # Without record: a preview of the trend for the report, no tracked history written.
    assert plot == tmp_path / "tmp" / "pending" / "coverage-trend.png"
    assert not (tmp_path / "coverage-history.csv").exists() and not (tmp_path / "coverage-trend.png").exists()
    main_check = next(c for c in checks if c.name == "mxt_pipeline")
    assert main_check.status == Status.FAIL and "below the floor 95.00%" in main_check.message


def test_coverage_step_fails_a_subpackage_below_its_floor(tmp_path, config):
    """coverage.package_floors: the package below its floor is the failing check, by name."""
    doc = {"files": {
        "mxt_pipeline/simulate/bench.py": {"summary": {"covered_lines": 99, "num_statements": 100,
                                                       "covered_branches": 80, "num_branches": 100}},
        "mxt_pipeline/calib/energy.py": {"summary": {"covered_lines": 99, "num_statements": 100,
                                                     "covered_branches": 90, "num_branches": 100}},
    }}  # fmt: skip
    report = tmp_path / "c.json"
    report.write_text(json.dumps(doc))
    cfg = config.with_overrides(coverage={"floor": {"line": 0.0, "branch": 0.0}, "package_floors": {
        "mxt_pipeline.simulate": {"line": 95.0, "branch": 85.0},
        "mxt_pipeline.calib": {"line": 95.0, "branch": 85.0}}})  # fmt: skip
    checks, _ = coverage_step(RunOptions(config=cfg, coverage_json=report, reports_dir=tmp_path, record=False), tmp_path, "abc")
    by_name = {c.name: c for c in checks}
    assert by_name["mxt_pipeline.simulate"].status == Status.FAIL
    assert by_name["mxt_pipeline.calib"].status == Status.PASS
    main_check = by_name["mxt_pipeline"]
    assert main_check.status == Status.FAIL
    assert "mxt_pipeline.simulate: branch coverage 80.00% is below its floor 85.00%" in main_check.message


def test_fresh_coverage_report(tmp_path):
    assert not fresh_coverage_report(tmp_path / "absent.json")
    stale = _coverage_json(tmp_path / "old.json")
    import os

    os.utime(stale, (0, 0))
    assert not fresh_coverage_report(stale)


def test_ensemble_step_missing_runner(tmp_path, config):
    cfg = config.with_overrides(ensemble={"campaign": {"runner": "mxt_pipeline.no_such_module:run"}})
    res = ensemble_step(RunOptions(config=cfg), tmp_path)
    assert [c.status for c in res] == [Status.MISSING]


def test_a_crashing_step_is_a_failure_not_a_crash(tmp_path, config, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("step exploded")

    monkeypatch.setattr(run_mod, "golden_checks", boom)
    s = run_regression(RunOptions(config=config, reports_dir=tmp_path, golden_root=tmp_path / "g", record=False,
                                  skip={"ensemble", "timing", "coverage"}))  # fmt: skip
    assert not s.ok and s.failures()[0].message == "step crashed: RuntimeError: step exploded"
    assert "Traceback" in s.failures()[0].details


def test_tests_step_runs_pytest(tmp_path, config, monkeypatch):
    """The coverage step runs the given test paths under coverage when no report is fresh."""
    test_file = tmp_path / "test_tiny.py"
    test_file.write_text("def test_ok():\n    assert True\n")
    opts = RunOptions(config=config, reports_dir=tmp_path / "r", record=False, test_paths=(str(test_file),))
    (tmp_path / "r").mkdir()
    res = run_mod.run_tests_with_coverage(opts, tmp_path / "r" / "coverage.json")
    assert res.status == Status.PASS and "1 passed" in res.message, res.details
    assert (tmp_path / "r" / "coverage.json").exists()

    # A failing suite (its exit status) is a FAIL with the summary line.
    import subprocess

    def fake_run(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, stdout="FAILED t.py::x\n1 failed in 0.1s\n", stderr="")

    monkeypatch.setattr(run_mod.subprocess, "run", fake_run)
    res = run_mod.run_tests_with_coverage(opts, tmp_path / "r" / "c2.json")
    assert res.status == Status.FAIL and res.message == "the test suite failed: 1 failed in 0.1s"


def test_only_record_writes_the_tracked_history(tmp_path, config):
    """A check leaves the history and the trend plot alone; ``record`` appends what it found."""
    rep = tmp_path / "reports"
    rep.mkdir()
    (rep / "coverage-history.csv").write_text("")
    r = CliRunner().invoke(cli, ["coverage", "--json", str(_coverage_json(tmp_path / "a.json")), "--reports", str(rep)])
    assert (rep / "coverage-history.csv").read_text() == "" and not (rep / "coverage-trend.png").exists(), r.output
    assert (rep / "tmp" / "pending" / "coverage-trend.png").exists()  # the report still shows the trend
    r = CliRunner().invoke(cli, ["record", "--reports", str(rep)])
    assert r.exit_code == 0, r.output
    assert "coverage: recorded" in r.output and "timing: nothing pending" in r.output
    rows = (rep / "coverage-history.csv").read_text().splitlines()
    assert len(rows) > 1 and (rep / "coverage-trend.png").exists()
    # Recorded once: a second record has nothing left.
    r = CliRunner().invoke(cli, ["record", "--reports", str(rep)])
    assert r.exit_code == 1 and (rep / "coverage-history.csv").read_text().splitlines() == rows


def test_missing_test_tools_are_named_with_the_install_command(tmp_path, config, monkeypatch):
    """A venv with ``pip install .`` (no test extra): the report says what to install."""
    import importlib.util

    from harness import run as run_mod

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytest_benchmark" else real(name, *a))
    assert run_mod.missing_test_tools() == ["pytest-benchmark"]
    res = run_mod.run_tests_with_coverage(RunOptions(config=config, reports_dir=tmp_path), tmp_path / "c.json")
    assert res.status == Status.FAIL and "pytest-benchmark not installed" in res.message and ".[test]" in res.message


def test_a_default_run_leaves_the_tracked_reports_unchanged(tmp_path, config):
    """``python -m harness run`` (what tox runs) writes no tracked file: the histories,
    trend plots and benchmark baselines stay byte for byte as committed."""
    import shutil

    from harness.config import repo_root

    src = repo_root() / "reports"
    tracked = ["coverage-history.csv", "coverage-trend.png", "timing-trend.png", "benchmarks/history.csv",
               "benchmarks/baseline.json", "benchmarks/latest.json"]  # fmt: skip
    rep = tmp_path / "reports"
    for name in tracked:
        if (src / name).exists():
            (rep / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / name, rep / name)
    before = {n: (rep / n).read_bytes() for n in tracked if (rep / n).exists()}
    assert before
    opts = RunOptions(config=config, reports_dir=rep, golden_root=tmp_path / "g",
                      coverage_json=_coverage_json(tmp_path / "c.json"),
                      skip={"golden", "replay", "pipeline", "checks", "localization", "ensemble", "timing"})  # fmt: skip
    run_regression(opts)
    assert {n: (rep / n).read_bytes() for n in before} == before
    assert (rep / "regression.html").exists() and (rep / "tmp" / "pending" / "coverage.json").exists()


def test_tests_step_appends_the_interpreted_kernels(tmp_path, config, monkeypatch):
    """With ``nojit_args`` the kernels' tests run a second time, NUMBA_DISABLE_JIT=1,
    appending to the coverage data of the first run (as ``tox -e cov-nojit``)."""
    import subprocess

    calls = []

    def fake_run(cmd, **kw):
        calls.append((cmd, kw["env"]))
        return subprocess.CompletedProcess(cmd, 0, stdout="3 passed in 0.1s\n", stderr="")

    monkeypatch.setattr(run_mod.subprocess, "run", fake_run)
    opts = RunOptions(config=config, reports_dir=tmp_path, test_paths=("tests/a.py", "tests/b.py"),
                      nojit_args="tests/nojit.args")  # fmt: skip
    res = run_mod.run_tests_with_coverage(opts, tmp_path / "c.json")
    assert res.status == Status.PASS
    (first, env1), (second, env2) = calls
    assert first[-2:] == ["tests/a.py", "tests/b.py"] and "NUMBA_DISABLE_JIT" not in env1
    assert second[-2:] == ["--cov-append", "@tests/nojit.args"] and env2["NUMBA_DISABLE_JIT"] == "1"
    assert "tests/a.py" not in second and f"--cov-report=json:{tmp_path / 'c.json'}" in second


def test_the_last_mutation_scores_are_reported(tmp_path):
    """reports/mutation.json (tox -e mutation) gives one informational line per package."""
    assert run_mod.mutation_results(tmp_path) == []
    rep = {"packages": {"gti": {"mutants_total": 391, "sampled": 5, "killed": 5, "timeout": 0, "survived": 0,
                                "uncovered": 0, "score": 1.0},
                        "detect": {"mutants_total": 9, "sampled": 4, "killed": 2, "timeout": 0, "survived": 2,
                                   "uncovered": 0, "score": 0.5},
                        "calib": {"mutants_total": 9, "broken": "1 failed"}}}  # fmt: skip
    (tmp_path / "mutation.json").write_text(json.dumps(rep))
    res = {r.name: r for r in run_mod.mutation_results(tmp_path)}
    assert {r.section for r in res.values()} == {"mutation"}
    assert res["gti (unit tests)"].status == Status.PASS and res["gti (unit tests)"].message.startswith("100 %")
    assert res["detect (unit tests)"].status == Status.WARN and "2 survived" in res["detect (unit tests)"].message
    assert res["calib (unit tests)"].status == Status.WARN
    (tmp_path / "mutation-golden.json").write_text("{")
    assert run_mod.mutation_results(tmp_path)[-1].status == Status.WARN


def test_no_tests_reuses_a_fresh_report_and_never_runs_the_suite(tmp_path, config, monkeypatch):
    """``--no-tests`` (tox -e regression): a fresh report is checked; a stale or absent one
    leaves coverage unchecked and unrecorded, and pytest is never started."""
    import os

    def no_pytest(*a, **k):
        raise AssertionError("the regression layer started the unit suite")

    monkeypatch.setattr(run_mod, "run_tests_with_coverage", no_pytest)
    rep = tmp_path / "reports"
    rep.mkdir()
    opts = RunOptions(config=config, reports_dir=rep, record=False, run_tests=False)
    # Absent: SKIP, nothing pending (an older run's pending figures are dropped).
    pending = rep / "tmp" / "pending"
    pending.mkdir(parents=True)
    (pending / "coverage.json").write_text("{}")
    (pending / "coverage-meta.json").write_text("{}")
    checks, plot = coverage_step(opts, tmp_path, "abc")
    assert plot is None and [c.status for c in checks] == [Status.SKIP]
    assert "does not exist" in checks[0].message and "--no-tests" in checks[0].message
    assert not (pending / "coverage.json").exists() and not (pending / "coverage-meta.json").exists()
    # Stale (older than the sources): the same.
    report = _coverage_json(rep / "coverage.json")
    os.utime(report, (0, 0))
    checks, plot = coverage_step(opts, tmp_path, "abc")
    assert plot is None and [c.status for c in checks] == [Status.SKIP] and "older than" in checks[0].message
    # Fresh: reused and checked.
    os.utime(report, None)
    checks, _ = coverage_step(opts, tmp_path, "abc")
    assert checks[0].name == "pytest" and checks[0].status == Status.SKIP and "reused" in checks[0].message
    assert any(c.name == "mxt_pipeline" for c in checks)
    assert (pending / "coverage.json").exists()
    # The command line passes the flag through (tox -e regression gives --no-tests).
    seen = []

    def capture(o):
        seen.append(o.run_tests)
        raise KeyboardInterrupt  # stop before the steps

    monkeypatch.setattr(run_mod, "run_regression", capture)
    CliRunner().invoke(cli, ["run", "--no-tests", "--reports", str(rep)])
    CliRunner().invoke(cli, ["run", "--reports", str(rep)])
    assert seen == [False, True]
