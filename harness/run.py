"""One regression run: golden checks, replay, output checks, ensemble, timing, coverage, report.

``python -m harness run`` calls :func:`run_regression`, which goes through

1. **golden**: every declared golden dataset exists (else MISSING) and matches its
   manifest and bless record; the total size is within budget;
2. **replay** and **pipeline**: each brick alone on its golden input, each pipeline
   end to end, compared with the expected outputs (:mod:`harness.replay`);
3. **schema** and **fitsverify** on every FITS output, **localization** of every
   simulated source of every golden dataset (:mod:`harness.checks`), and the
   **science** checks of the datasets listed in ``science.datasets`` (per-band counts,
   good time, light-curve limits, blocks and rates against the truth and astropy,
   :mod:`harness.science`) on the replayed brick outputs;
4. **ensemble**: a small campaign against the thresholds of the configuration;
5. **timing**: pytest-benchmark of the bricks, normalised, against the baselines;
6. **tests** and **coverage**: the test suite under coverage (or a coverage JSON given),
   the coverage history and its floor;
7. the reports (``reports/regression.html``, ``regression.md``, ``regression.json``).

Missing prerequisites are reported, not fatal: while the golden datasets do not exist
the run says so (MISSING) and, unless ``golden.required`` is true, does not fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import checks as chk
from harness import coverage_trend, science, timing
from harness.config import HarnessConfig, load_config, repo_root
from harness.filediff import is_fits
from harness.golden import GoldenStore, git_commit
from harness.regression_report import write_reports
from harness.replay import replay_dataset
from harness.results import CheckResult, RunSummary, Status
from mxt_pipeline.campaign.ensemble_report import ensemble_summary
from mxt_pipeline.campaign.runner import CampaignSpec, run_campaign
from mxt_pipeline.campaign.tables import records_to_tables
from mxt_pipeline.io import atomic_write_bytes

__all__ = ["RunOptions", "run_regression", "SECTIONS"]

#: Steps that can be skipped (``--skip``).
SECTIONS = ("golden", "replay", "pipeline", "checks", "localization", "science", "ensemble", "timing", "coverage")


@dataclass
class RunOptions:
    """What a regression run does and where it writes.

    Attributes
    ----------
    config : HarnessConfig
    reports_dir : Path
        Reports, histories, plots and benchmark baselines.
    golden_root : Path
    work_dir : Path, optional
        Scratch folder for replay outputs (a temporary folder when None; kept when given).
    coverage_json : Path, optional
        Use this coverage.py JSON report instead of running the tests under coverage.
    skip : set of str
        Steps not run (see :data:`SECTIONS`).
    require_golden : bool, optional
        Overrides ``golden.required``.
    record : bool
        Append to the coverage and timing histories and update the tracked trend plots
        and timing baselines.  Off by default: a run (``tox``, a developer) leaves the
        tracked files alone and stashes its figures in ``reports/tmp/pending/``;
        ``python -m harness record`` (CI on main) appends them.
    update_timing_baseline : bool
        Replace the timing baselines with this run's figures (explicit, reviewed update).
    test_paths : tuple of str
        What the coverage step runs under pytest.
    nojit_args : str, optional
        A pytest argument file (``tests/nojit.args``): after ``test_paths``, the coverage
        step runs these tests again with ``NUMBA_DISABLE_JIT=1`` and appends their
        coverage, so that the lines of the numba kernels count (as ``tox -e cov-nojit``).
        ``python -m harness run`` sets it; None runs ``test_paths`` only.
    run_tests : bool
        When no coverage report is given or fresh, run the suite under coverage (True,
        ``python -m harness run`` alone) or check and record no coverage at all (False,
        ``--no-tests``: ``tox -e regression``, whose ``cov`` environment ran the suite;
        the regression layer never runs the unit suite a second time).
    """

    config: HarnessConfig = field(default_factory=load_config)
    reports_dir: Path = field(default_factory=lambda: repo_root() / "reports")
    golden_root: Path = field(default_factory=lambda: repo_root() / "golden")
    work_dir: Path | None = None
    coverage_json: Path | None = None
    skip: set[str] = field(default_factory=set)
    require_golden: bool | None = None
    record: bool = False
    update_timing_baseline: bool = False
    test_paths: tuple[str, ...] = ("tests", "harness/tests")
    nojit_args: str | None = None
    run_tests: bool = True
    verbose: bool = False


def _log(opts: RunOptions, text: str) -> None:
    if opts.verbose:
        print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------


def golden_checks(store: GoldenStore, cfg: HarnessConfig) -> tuple[list[CheckResult], list[str]]:
    """Existence, checksums and size of the golden datasets; returns the usable names."""
    out: list[CheckResult] = []
    usable: list[str] = []
    declared = store.declared()
    for name in sorted(set(declared) | set(store.names())):
        if name not in store.names():
            desc = (cfg.golden.get("sets") or {}).get(name, {}).get("description", "")
            out.append(CheckResult("golden", name, Status.MISSING,
                                   f"golden dataset not made yet ({desc}); run 'python -m harness golden make {name}' then bless it"))  # fmt: skip
            continue
        res = store.verify(name)
        figs = {"files": res.n_files, "megabytes": round(res.total_bytes / 1e6, 3)}
        if res.ok:
            out.append(CheckResult("golden", name, Status.PASS, f"{res.n_files} files match the manifest and the bless record", figs))
            usable.append(name)
        else:
            out.append(CheckResult("golden", name, Status.FAIL, res.problems[0] + (f" (+{len(res.problems) - 1} more)" if len(res.problems) > 1 else ""),
                                   figs, details="\n".join(res.problems)))  # fmt: skip
    total_mb = store.total_bytes() / 1e6
    on_disk_mb = store.total_bytes(unique=False) / 1e6
    limit = float(cfg.golden.get("max_total_mb", 30))
    status = Status.PASS if total_mb <= limit else Status.FAIL
    out.append(CheckResult("golden", "size", status,
                           f"golden data take {total_mb:.2f} MB of distinct content ({on_disk_mb:.2f} MB on disk; at most {limit:g} MB)",
                           {"megabytes": round(total_mb, 3), "on_disk_mb": round(on_disk_mb, 3), "limit_mb": limit}))  # fmt: skip
    return out, usable


def _fits_outputs(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and is_fits(p)]


def replay_and_check(names: list[str], store: GoldenStore, opts: RunOptions, work: Path) -> list[CheckResult]:
    """Replay every usable golden dataset, then check every output it wrote."""
    cfg = opts.config
    out: list[CheckResult] = []
    for name in names:
        _log(opts, f"replay {name}")
        gdir = store.path(name)
        try:
            checks, outputs = replay_dataset(gdir, cfg, work, bricks="replay" not in opts.skip, pipeline="pipeline" not in opts.skip)
        except Exception as exc:  # one dataset's crash must not hide the others
            import traceback

            out.append(CheckResult("replay", name, Status.FAIL, f"replay of {name} crashed: {type(exc).__name__}: {exc}",
                                   details=traceback.format_exc()[-4000:]))  # fmt: skip
            continue
        out += checks
        if "checks" not in opts.skip:
            for label, folder in outputs.items():
                out += chk.output_checks(_fits_outputs(folder), label)
        if "localization" not in opts.skip:
            fresh = next((folder for label, folder in outputs.items() if label.startswith(f"{name}/") and folder.name == "pipeline"), None)
            out += _localization(name, gdir, cfg, fresh)
        if "science" not in opts.skip:
            out += _science(name, gdir, cfg, outputs)
    return out


def _science(name: str, gdir: Path, cfg: HarnessConfig, outputs: dict[str, Path]) -> list[CheckResult]:
    """The science checks (:mod:`harness.science`) listed for ``name`` in ``science.datasets``,
    on the outputs of its replayed bricks (the golden ones where a brick was not replayed)."""
    section = dict(cfg.raw.get("science") or {})
    wanted = (section.get("datasets") or {}).get(name)
    if not wanted:
        return []
    folders = {label.split("/", 1)[1]: folder for label, folder in outputs.items() if label.startswith(f"{name}/")}
    try:
        return science.science_checks(name, gdir, folders, section, wanted)
    except Exception as exc:  # a malformed product or truth is a failure of the check, not a crash
        import traceback

        return [CheckResult("science", name, Status.FAIL, f"science checks of {name} impossible: {type(exc).__name__}: {exc}",
                            details=traceback.format_exc()[-4000:])]  # fmt: skip


def _localization(name: str, gdir: Path, cfg: HarnessConfig, fresh: Path | None = None) -> list[CheckResult]:
    """Each simulated source of ``truth.json`` against the pipeline's source list.

    The source list is the one the replayed pipeline just wrote (``fresh``) when there
    is one, else the golden one (which checks the golden data themselves).
    """
    truth = gdir / "input" / "truth.json"
    golden_listing = gdir / "expected" / "pipeline" / "OUTPUTS.json"
    if not truth.exists() or not golden_listing.exists():
        return [CheckResult("localization", name, Status.SKIP, "no truth.json or no golden pipeline output")]
    try:
        golden_doc = json.loads(golden_listing.read_text(encoding="utf-8"))
        if not golden_doc["ports"].get("srclist"):
            return [CheckResult("localization", name, Status.SKIP, "the pipeline of this dataset writes no source list")]
        folder = fresh if fresh is not None and (fresh / "OUTPUTS.json").exists() else gdir / "expected" / "pipeline"
        doc = json.loads((folder / "OUTPUTS.json").read_text(encoding="utf-8"))
        files = [e["path"] for e in doc["ports"].get("srclist", [])]
        if not files:
            return [CheckResult("localization", name, Status.FAIL,
                                f"the replayed pipeline wrote no source list (the golden run wrote {golden_doc['ports']['srclist'][0]['path']})")]  # fmt: skip
        return chk.localization_check(folder / files[0], truth, name, cfg.localization)
    except Exception as exc:  # a malformed source list or truth is a failure, not a crash
        return [CheckResult("localization", name, Status.FAIL, f"localization check of {name} impossible: {type(exc).__name__}: {exc}")]


def ensemble_step(opts: RunOptions, work: Path) -> list[CheckResult]:
    """Run the small campaign of the configuration and check its ensemble figures."""
    import importlib.util

    conf = opts.config.ensemble
    camp = dict(conf.get("campaign") or {})
    thresholds = dict(conf.get("thresholds") or {})
    runner = str(camp.get("runner", "mxt_pipeline.campaign.execute:simulate_and_process"))
    module = runner.partition(":")[0]
    if importlib.util.find_spec(module) is None:
        return [CheckResult("ensemble", "campaign", Status.MISSING, f"the campaign run function {runner} does not exist yet")]

    t0 = time.perf_counter()
    options = dict(camp.get("options") or {})
    options.setdefault("caldb", str(repo_root() / "fixtures_caldb"))
    spec = CampaignSpec(case=str(camp.get("case", "montecarlo")), n=int(camp.get("runs", 12)),
                        seed=int(camp.get("seed", 0)), runner=runner, options=options)  # fmt: skip
    folder = work / "campaign"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        records = run_campaign(folder, spec, n_workers=int(camp.get("workers", 2)), progress=False)
    except Exception as exc:  # a crashed campaign is a failed check, with the reason
        return [CheckResult("ensemble", "campaign", Status.FAIL, f"campaign crashed: {type(exc).__name__}: {exc}")]
    sources, runs = records_to_tables(records)
    elapsed = [float(r.get("elapsed_s", 0.0)) for r in records]
    summary = ensemble_summary(sources, runs, elapsed)
    n_ok = int(summary.get("n_runs_ok", 0))
    head = CheckResult("ensemble", "campaign", Status.PASS if n_ok == spec.n else Status.FAIL,
                       f"{n_ok} of {spec.n} runs OK (case {spec.case}, seed {spec.seed})",
                       {k: v for k, v in summary.items() if isinstance(v, (int, float))},
                       elapsed_s=time.perf_counter() - t0)  # fmt: skip
    return [head, *chk.ensemble_check(summary, thresholds)]


def timing_step(names: list[str], opts: RunOptions, work: Path, commit: str) -> tuple[list[CheckResult], Path | None]:
    """pytest-benchmark of the bricks of the timed golden datasets, against the baselines."""
    conf = opts.config.timing
    wanted = [n for n in (conf.get("datasets") or names) if n in names]
    if not wanted:
        return [CheckResult("timing", "bricks", Status.MISSING, "no golden dataset to time the bricks on")], None
    bench_dir = opts.reports_dir / "benchmarks"
    work.mkdir(parents=True, exist_ok=True)
    bench_json = work / "benchmark.json"
    env = {
        "MXT_HARNESS_GOLDEN": str(opts.golden_root),
        "MXT_HARNESS_TIMING_SETS": ",".join(wanted),
        "MXT_HARNESS_TIMING_ROUNDS": str(int(conf.get("rounds", 5))),
        "MXT_HARNESS_TIMING_WARMUP": str(int(conf.get("warmup", 1))),
        "MXT_HARNESS_WORK": str(work / "timing"),
    }
    t0 = time.perf_counter()
    limit = float(conf.get("timeout_s", 300))
    try:
        proc = timing.run_pytest_benchmark(bench_json, extra_env=env, timeout_s=limit)
    except subprocess.TimeoutExpired:
        return [CheckResult("timing", "bricks", Status.FAIL, f"the brick benchmarks did not finish in {limit:.0f} s "
                            f"(datasets {', '.join(wanted)}; timing.timeout_s of the configuration)")], None  # fmt: skip
    if proc.returncode != 0 or not bench_json.exists():
        missing = missing_test_tools()
        why = (f": {' and '.join(missing)} not installed (pip install -e '.[test]')" if missing
               else f" (pytest exit {proc.returncode}; its output is in the details)")  # fmt: skip
        return [CheckResult("timing", "bricks", Status.FAIL, "the brick benchmarks failed to run" + why,
                            details=(proc.stdout + proc.stderr)[-4000:])], None  # fmt: skip
    samples = timing.read_benchmark_json(bench_json)
    baseline_path = bench_dir / "baseline.json"
    baseline = timing.load_baseline(baseline_path)

    def judge(samples):
        return timing.compare_with_baseline(
            samples, baseline, max_slowdown=float(conf.get("max_slowdown", 0.25)),
            update=opts.update_timing_baseline, meta={"commit": commit, "date": datetime.now(tz=UTC).strftime("%Y-%m-%d")},
        )  # fmt: skip

    verdicts, new_doc = judge(samples)
    confirmed = False
    if not opts.update_timing_baseline and any(not v.ok for v in verdicts):
        # Another job on a shared machine can slow one whole measurement down (35 %
        # between two runs of one commit was seen): a slowdown fails only when a second,
        # independent measurement confirms it; each brick keeps its faster measurement.
        bench2 = work / "benchmark-confirm.json"
        try:
            proc2 = timing.run_pytest_benchmark(bench2, extra_env=env, timeout_s=limit)
        except subprocess.TimeoutExpired:
            proc2 = None
        if proc2 is not None and proc2.returncode == 0 and bench2.exists():
            samples = timing.best_of(samples, timing.read_benchmark_json(bench2))
            verdicts, new_doc = judge(samples)
            confirmed = True
    out = []
    for v, s in zip(verdicts, samples):
        status = Status.PASS if v.ok else Status.FAIL
        figs = {"normalised": round(v.normalised, 4), "baseline": v.baseline, "median_s": round(s.median_s, 4),
                "calibration_median_s": round(s.calibration_median_s, 4)}  # fmt: skip
        if v.slowdown is not None:
            figs["slowdown"] = round(v.slowdown, 4)
        notes = [*v.notes, *(["best of two measurements"] if confirmed else [])]
        out.append(CheckResult("timing", v.name, status, "brick " + v.message() + ("; " + "; ".join(notes) if notes else ""), figs))
    pending = pending_dir(opts.reports_dir)
    shutil.copy2(bench_json, pending / "benchmarks.json")
    write_json_file(pending / "timing.json", {"commit": commit, "baseline": new_doc})
    if opts.record:
        plot = record_timing(opts.reports_dir)
    else:
        if opts.update_timing_baseline:  # an explicit, reviewed request
            timing.save_baseline(baseline_path, new_doc)
        # The report shows the trend with this run as its last point, drawn from a
        # copy of the history: the tracked history and plot are not touched.
        preview = pending / "timing-history-preview.csv"
        hist = bench_dir / "history.csv"
        shutil.copy2(hist, preview) if hist.exists() else preview.unlink(missing_ok=True)
        timing.append_history(preview, samples, commit=commit)
        plot = timing.plot_trend(timing.read_history(preview), pending / "timing-trend.png", new_doc)
    out.append(CheckResult("timing", "benchmarks", Status.PASS, f"{len(samples)} brick(s) timed in {time.perf_counter() - t0:.0f} s"))
    return out, plot


def missing_test_tools() -> list[str]:
    """The test tools the harness runs that are not importable (the ``test`` extra)."""
    import importlib.util

    wanted = {"pytest": "pytest", "pytest-benchmark": "pytest_benchmark", "pytest-cov": "pytest_cov"}
    return [name for name, mod in wanted.items() if importlib.util.find_spec(mod) is None]


def run_tests_with_coverage(opts: RunOptions, json_out: Path) -> CheckResult:
    """Run the test suite under coverage (branch), writing the JSON report."""
    missing = missing_test_tools()
    if missing:
        return CheckResult("tests", "pytest", Status.FAIL, f"cannot run the tests under coverage: {' and '.join(missing)} "
                           "not installed (pip install -e '.[test]')")  # fmt: skip
    root = repo_root()
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov=mxt_pipeline", "--cov=harness",
        "--cov-branch", f"--cov-report=json:{json_out}", "--cov-report=", *opts.test_paths,
    ]  # fmt: skip
    t0 = time.perf_counter()
    env = {**os.environ, "MXT_HARNESS_INNER": "1"}
    timeout = float(opts.config.coverage.get("tests_timeout_s", 540))
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env, timeout=timeout, check=False)
        if proc.returncode == 0 and opts.nojit_args and importlib.util.find_spec("numba") is not None:
            # The numba kernels once more, interpreted, so that coverage.py traces them.
            nojit = [*cmd[:-len(opts.test_paths)], "--cov-append", f"@{opts.nojit_args}"]
            proc = subprocess.run(nojit, cwd=root, capture_output=True, text=True, timeout=timeout, check=False,
                                  env={**env, "NUMBA_DISABLE_JIT": "1"})  # fmt: skip
    except subprocess.TimeoutExpired:
        return CheckResult("tests", "pytest", Status.FAIL, f"the test suite did not finish in {timeout:.0f} s")
    tail = (proc.stdout + proc.stderr)[-6000:]
    last = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.strip()), "")
    figs = {"elapsed_s": round(time.perf_counter() - t0, 1), "exit_code": proc.returncode}
    if proc.returncode != 0:
        return CheckResult("tests", "pytest", Status.FAIL, f"the test suite failed: {last}", figs, details=tail)
    return CheckResult("tests", "pytest", Status.PASS, last, figs)


def fresh_coverage_report(report: Path, roots: tuple[str, ...] = ("mxt_pipeline", "harness", "tests")) -> bool:
    """True when ``report`` exists and is newer than every ``.py`` file of ``roots``.

    ``tox`` runs the ``cov`` environment (the whole suite under coverage, JSON into
    ``reports/coverage.json``) before ``regression``: running the suite a second time
    would only cost minutes.
    """
    if not report.exists():
        return False
    t = report.stat().st_mtime
    root = repo_root()
    for r in roots:
        for p in (root / r).rglob("*.py"):
            if p.stat().st_mtime > t:
                return False
    return True


def coverage_step(opts: RunOptions, work: Path, commit: str) -> tuple[list[CheckResult], Path | None]:
    """Coverage figures, the check against floor and history, the history row, the plot."""
    out: list[CheckResult] = []
    report = opts.coverage_json
    if report is None:
        report = opts.reports_dir / "coverage.json"
        if fresh_coverage_report(report):
            out.append(CheckResult("tests", "pytest", Status.SKIP,
                                   f"{report.name} is newer than every source and test file: reused (tox -e cov ran the tests)"))  # fmt: skip
        elif not opts.run_tests:
            # Nothing checked and nothing recorded: no stale figures in the history.
            why = "is older than a source or test file" if report.exists() else "does not exist"
            out.append(CheckResult("coverage", "report", Status.SKIP,
                                   f"{report} {why} and --no-tests was given: coverage not checked nor recorded "
                                   "(tox -e cov writes it)"))  # fmt: skip
            pending = pending_dir(opts.reports_dir)
            for stale in ("coverage.json", "coverage-meta.json"):  # an older run's figures: not this commit's
                (pending / stale).unlink(missing_ok=True)
            return out, None
        else:
            out.append(run_tests_with_coverage(opts, report))
    if not Path(report).exists():
        out.append(CheckResult("coverage", "report", Status.FAIL, f"no coverage report at {report}"))
        return out, None
    packages = coverage_trend.package_coverage(Path(report))
    hist_path = opts.reports_dir / "coverage-history.csv"
    history = coverage_trend.read_history(hist_path)
    conf = opts.config.coverage
    verdict = coverage_trend.check_coverage(packages, history, conf)
    figs = {"line_pct": round(verdict.line_pct, 2), "branch_pct": round(verdict.branch_pct, 2),
            "floor_line": verdict.floor_line, "floor_branch": verdict.floor_branch}  # fmt: skip
    if verdict.previous_line is not None:
        figs["previous_line_pct"] = verdict.previous_line
    out.append(CheckResult("coverage", verdict.package, Status.PASS if verdict.ok else Status.FAIL, verdict.message(), figs))
    for w in verdict.warnings:
        out.append(CheckResult("coverage", "subpackage drop", Status.WARN, w))
    for name, cov in packages.items():
        if name != verdict.package:
            # A subpackage below its own floor (coverage.package_floors) fails by name.
            status = Status.FAIL if name in verdict.failed_packages else Status.PASS
            out.append(CheckResult("coverage", name, status,
                                   f"line {cov.line_pct:.1f}% ({cov.lines_covered}/{cov.lines_total}), branch {cov.branch_pct:.1f}%",
                                   {"line_pct": round(cov.line_pct, 2), "branch_pct": round(cov.branch_pct, 2)}))  # fmt: skip
    floor_line = float((conf.get("floor") or {}).get("line", 0.0))
    pending = pending_dir(opts.reports_dir)
    shutil.copy2(report, pending / "coverage.json")
    write_json_file(pending / "coverage-meta.json", {"commit": commit, "status": "ok" if verdict.ok else "fail",
                                                     "floor_line": floor_line})  # fmt: skip
    if opts.record:
        plot = record_coverage(opts.reports_dir)
    else:
        preview = pending / "coverage-history-preview.csv"
        shutil.copy2(hist_path, preview) if hist_path.exists() else preview.unlink(missing_ok=True)
        coverage_trend.append_history(preview, packages, commit=commit, status="ok" if verdict.ok else "fail",
                                      floor_line=floor_line)  # fmt: skip
        plot = coverage_trend.plot_trend(coverage_trend.read_history(preview), pending / "coverage-trend.png")
    return out, plot


# --------------------------------------------------------------------------------------
# Recording: the only writer of the tracked histories, plots and baselines
# --------------------------------------------------------------------------------------


def pending_dir(reports_dir: Path) -> Path:
    """``reports/tmp/pending``: the figures of the last run, waiting for ``harness record``
    (ignored by git)."""
    p = Path(reports_dir) / "tmp" / "pending"
    p.mkdir(parents=True, exist_ok=True)
    return p


def write_json_file(path: Path, doc: Any) -> None:
    atomic_write_bytes(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


def record_timing(reports_dir: Path) -> Path | None:
    """Append the pending timing figures to ``benchmarks/history.csv``, save the
    baselines, ``benchmarks/latest.json`` and ``timing-trend.png``; None when none pend."""
    pending = pending_dir(reports_dir)
    meta_path, bench = pending / "timing.json", pending / "benchmarks.json"
    if not (meta_path.exists() and bench.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    bench_dir = Path(reports_dir) / "benchmarks"
    bench_dir.mkdir(parents=True, exist_ok=True)
    samples = timing.read_benchmark_json(bench)
    timing.save_baseline(bench_dir / "baseline.json", meta["baseline"])
    hist = bench_dir / "history.csv"
    timing.append_history(hist, samples, commit=meta["commit"])
    plot = timing.plot_trend(timing.read_history(hist), Path(reports_dir) / "timing-trend.png", meta["baseline"])
    atomic_write_bytes(bench_dir / "latest.json", bench.read_bytes())  # a tracked file: never half written
    meta_path.unlink()
    bench.unlink()
    return plot


def record_coverage(reports_dir: Path) -> Path | None:
    """Append the pending coverage figures to ``coverage-history.csv`` and redraw
    ``coverage-trend.png``; None when none pend."""
    pending = pending_dir(reports_dir)
    meta_path, report = pending / "coverage-meta.json", pending / "coverage.json"
    if not (meta_path.exists() and report.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    hist_path = Path(reports_dir) / "coverage-history.csv"
    packages = coverage_trend.package_coverage(report)
    coverage_trend.append_history(hist_path, packages, commit=meta["commit"], status=meta["status"],
                                  floor_line=float(meta["floor_line"]))  # fmt: skip
    plot = coverage_trend.plot_trend(coverage_trend.read_history(hist_path), Path(reports_dir) / "coverage-trend.png")
    meta_path.unlink()
    report.unlink()
    return plot


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def run_regression(opts: RunOptions | None = None) -> RunSummary:
    """Run every step not skipped and write the reports; returns the summary.

    Never raises for a failing check; an unexpected error in a step becomes a FAIL of
    that step (with its traceback in the details) and the other steps still run.
    """
    import traceback

    opts = opts or RunOptions()
    cfg = opts.config
    t0 = time.perf_counter()
    commit = git_commit()
    summary = RunSummary(commit=commit, date=datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    required = cfg.golden.get("required", False) if opts.require_golden is None else opts.require_golden
    summary.missing_golden_fails = bool(required)
    store = GoldenStore(opts.golden_root, config=cfg)
    tmp = None
    if opts.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mxt-regression-")
        work = Path(tmp.name)
    else:
        work = Path(opts.work_dir)
        work.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path] = {}

    def guarded(section: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # a crash of the harness step itself
            summary.add(CheckResult(section, "harness", Status.FAIL, f"step crashed: {type(exc).__name__}: {exc}",
                                    details=traceback.format_exc()[-4000:]))  # fmt: skip
            return None

    try:
        usable: list[str] = []
        if "golden" not in opts.skip:
            _log(opts, "golden checks")
            res = guarded("golden", golden_checks, store, cfg)
            if res:
                summary.extend(res[0])
                usable = res[1]
        else:
            usable = [n for n in store.names() if store.verify(n).ok]
        if usable and not {"replay", "pipeline"} <= opts.skip:
            res = guarded("replay", replay_and_check, usable, store, opts, work)
            if res:
                summary.extend(res)
        if "ensemble" not in opts.skip:
            _log(opts, "ensemble")
            res = guarded("ensemble", ensemble_step, opts, work)
            if res:
                summary.extend(res)
        if "timing" not in opts.skip:
            _log(opts, "timing")
            res = guarded("timing", timing_step, usable, opts, work, commit)
            if res:
                summary.extend(res[0])
                if res[1]:
                    plots["normalised brick times"] = res[1]
        if "coverage" not in opts.skip:
            _log(opts, "coverage")
            res = guarded("coverage", coverage_step, opts, work, commit)
            if res:
                summary.extend(res[0])
                if res[1]:
                    plots["coverage"] = res[1]
        summary.extend(mutation_results(opts.reports_dir))
    finally:
        if tmp is not None:
            tmp.cleanup()
    summary.plots = {k: str(v) for k, v in plots.items()}
    summary.elapsed_s = time.perf_counter() - t0
    write_reports(summary, opts.reports_dir, plots)
    return summary


#: Goal of issue #22: share of the non-equivalent mutants killed in each science package.
MUTATION_GOAL = 0.9


def mutation_results(reports_dir: Path) -> list[CheckResult]:
    """One line per package of the last mutation run (``tox -e mutation`` wrote
    ``reports/mutation.json``; nothing when there is none).  Informational: a score
    below the goal is a warning, never a failure (a sample of a few mutants scatters)."""
    out: list[CheckResult] = []
    for stem, layer in (("mutation", "unit tests"), ("mutation-golden", "golden replay")):
        path = Path(reports_dir) / f"{stem}.json"
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text())
            packages = dict(data["packages"])
        except (ValueError, KeyError, TypeError) as exc:
            out.append(CheckResult("mutation", path.name, Status.WARN, f"unreadable mutation report: {exc}"))
            continue
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
        for name, p in packages.items():
            if "broken" in p or p.get("score") is None:
                out.append(CheckResult("mutation", f"{name} ({layer})", Status.WARN, "no score: the unmutated tests failed or nothing was sampled"))
                continue
            status = Status.PASS if p["score"] >= MUTATION_GOAL else Status.WARN
            msg = (f"{100 * p['score']:.0f} % of the non-equivalent mutants killed ({p['sampled']} sampled of "
                   f"{p['mutants_total']}, {p['survived'] + p['uncovered']} survived; {path.name} of {when})")
            out.append(CheckResult("mutation", f"{name} ({layer})", status, msg, {"score": p["score"], "sampled": p["sampled"]}))
    return out


def summary_text(summary: RunSummary, paths: dict[str, Any] | None = None) -> str:
    """What ``python -m harness run`` prints."""
    lines = [c.line() for c in summary.checks if c.status != Status.PASS]
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts().items() if v)
    lines.append(f"regression {'PASSED' if summary.ok else 'FAILED'} ({counts}) in {summary.elapsed_s:.0f} s")
    return "\n".join(lines)
