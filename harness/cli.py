"""Command line of the harness: ``python -m harness COMMAND``.

Commands::

    run                      the whole regression run (exit 1 on a regression)
    golden list              declared and present golden datasets
    golden verify [NAME...]  checksums against the manifests and bless records
    golden make [NAME...]    write candidates (build/golden-candidates/), never golden/
    golden diff NAME         what blessing the candidate would change
    bless NAME --reason "."  show the diff, ask, promote the candidate, record why
    diff TEST REFERENCE      the FITS/JSON-aware diff of two files (exit 1 if they differ)
    record                   append the last run's coverage and timing figures to the
                             tracked histories and redraw the trend plots (CI, on main)
    coverage --json PATH     check a coverage report against the floor and the history
    timing [--update-baseline]   the brick benchmarks against their baselines

``run``, ``coverage`` and ``timing`` never modify tracked files (``--record`` asks
them to); their figures wait in ``reports/tmp/pending/`` for ``record``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harness.config import load_config
from mxt_pipeline.cli.runner import run_group

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Configuration file (default harness/config.yaml).")  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """MXT regression harness: golden replay, FITS diffs, checks, trends, report."""
    ctx.obj = {"config": load_config(config_path)}


@cli.command("run")
@click.option("--skip", multiple=True, help="Step to skip (golden, replay, pipeline, checks, localization, science, ensemble, timing, coverage); repeatable or comma-separated.")
@click.option("--coverage-json", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Use this coverage.py JSON report instead of running the tests under coverage.")  # fmt: skip
@click.option("--reports", "reports_dir", type=click.Path(file_okay=False), default=None, help="Reports folder (default reports/).")
@click.option("--golden", "golden_root", type=click.Path(file_okay=False), default=None, help="Golden folder (default golden/).")
@click.option("--work", "work_dir", type=click.Path(file_okay=False), default=None, help="Keep replay outputs in this folder.")
@click.option("--require-golden/--allow-missing-golden", default=None, help="Override golden.required of the configuration.")
@click.option("--update-timing-baseline", is_flag=True, help="Replace the timing baselines with this run's figures.")
@click.option("--record/--no-record", default=False, show_default=True,
              help="Also append to the tracked coverage and timing histories (what 'record' does afterwards).")
@click.option("--tests/--no-tests", "run_tests", default=True, show_default=True,
              help="Without a fresh reports/coverage.json, run the test suite under coverage (--tests) or leave "
                   "coverage unchecked and unrecorded (--no-tests: tox -e regression, after tox -e cov).")  # fmt: skip
@click.option("-v", "--verbose", is_flag=True, help="Say which step runs.")
@click.pass_context
def run_cmd(ctx, skip, coverage_json, reports_dir, golden_root, work_dir, require_golden, update_timing_baseline, record,
            run_tests, verbose) -> None:  # fmt: skip
    """Run the regression harness and write reports/regression.{html,md,json}."""
    from harness.run import SECTIONS, RunOptions, run_regression, summary_text

    skipped = {s.strip() for item in skip for s in item.split(",") if s.strip()}
    unknown = skipped - set(SECTIONS)
    if unknown:
        raise click.BadParameter(f"unknown step(s) {sorted(unknown)}; known: {', '.join(SECTIONS)}", param_hint="--skip")
    opts = RunOptions(config=ctx.obj["config"], skip=skipped, require_golden=require_golden,
                      record=record, update_timing_baseline=update_timing_baseline, verbose=verbose,
                      nojit_args="tests/nojit.args", run_tests=run_tests)  # fmt: skip
    if reports_dir:
        opts.reports_dir = Path(reports_dir)
    if golden_root:
        opts.golden_root = Path(golden_root)
    if work_dir:
        opts.work_dir = Path(work_dir)
    if coverage_json:
        opts.coverage_json = Path(coverage_json)
    summary = run_regression(opts)
    click.echo(summary_text(summary))
    click.echo(f"report: {opts.reports_dir / 'regression.html'}")
    ctx.exit(0 if summary.ok else 1)


@cli.group("golden")
def golden_grp() -> None:
    """Golden datasets: list, verify, make candidates, diff."""


def _store(ctx, golden_root=None, candidates=None):
    from harness.golden import GoldenStore

    return GoldenStore(golden_root, candidates, config=ctx.obj["config"])


@golden_grp.command("list")
@click.pass_context
def golden_list(ctx) -> None:
    """Declared golden datasets and whether they exist."""
    store = _store(ctx)
    present = set(store.names())
    for name in sorted(set(store.declared()) | present):
        state = "present" if name in present else "MISSING"
        click.echo(f"{name:24s} {state}")


@golden_grp.command("verify")
@click.argument("names", nargs=-1)
@click.option("--golden", "golden_root", type=click.Path(file_okay=False), default=None)
@click.pass_context
def golden_verify(ctx, names, golden_root) -> None:
    """Recompute the checksums of golden datasets (all present ones by default)."""
    store = _store(ctx, golden_root)
    names = names or store.names()
    bad = 0
    for name in names:
        res = store.verify(name)
        if res.ok:
            click.echo(f"OK    {name}: {res.n_files} files")
        else:
            bad += 1
            click.echo(f"FAIL  {name}:")
            for p in res.problems:
                click.echo(f"      {p}")
    ctx.exit(1 if bad else 0)


@golden_grp.command("make")
@click.argument("names", nargs=-1)
@click.option("--candidates", type=click.Path(file_okay=False), default=None, help="Candidates folder (default build/golden-candidates).")
@click.pass_context
def golden_make(ctx, names, candidates) -> None:
    """Generate candidates with the simulator and the pipeline (golden/ is not touched)."""
    from harness.generate import generate_golden
    from harness.golden import GoldenError

    store = _store(ctx, candidates=candidates)
    names = names or store.declared()
    for name in names:
        try:
            path = store.make_candidate(name, generate_golden)
        except GoldenError as exc:
            click.echo(f"golden make {name}: {exc}", err=True)
            ctx.exit(1)
            return
        except Exception as exc:  # the simulator or a brick failed: say which, no traceback dump
            click.echo(f"golden make {name} failed (no candidate written): {type(exc).__name__}: {exc}", err=True)
            ctx.exit(1)
            return
        doc = json.loads((path / "MANIFEST.json").read_text())
        click.echo(f"candidate {name}: {path} ({len(doc['files'])} files, {doc['total_bytes'] / 1e6:.2f} MB)")
    click.echo("review with 'python -m harness golden diff NAME', promote with 'python -m harness bless NAME --reason ...'")


def _print_diffs(diffs) -> int:
    changed = 0
    for rel, d in sorted(diffs.items()):
        if d.identical:
            continue
        changed += 1
        click.echo(f"--- {rel}")
        click.echo(d.account())
    click.echo(f"{changed} of {len(diffs)} file(s) differ")
    return changed


@golden_grp.command("diff")
@click.argument("name")
@click.option("--candidates", type=click.Path(file_okay=False), default=None)
@click.option("--golden", "golden_root", type=click.Path(file_okay=False), default=None)
@click.pass_context
def golden_diff(ctx, name, candidates, golden_root) -> None:
    """Show what blessing the candidate of NAME would change (exit 1 if anything)."""
    store = _store(ctx, golden_root, candidates)
    changed = _print_diffs(store.diff_candidate(name))
    ctx.exit(1 if changed else 0)


@cli.command("bless")
@click.argument("name")
@click.option("--reason", required=True, help="Why the golden data change (recorded in BLESS.log).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (the diff is still printed).")
@click.option("--candidates", type=click.Path(file_okay=False), default=None)
@click.option("--golden", "golden_root", type=click.Path(file_okay=False), default=None)
@click.pass_context
def bless_cmd(ctx, name, reason, yes, candidates, golden_root) -> None:
    """Promote the candidate of NAME into golden/ after showing the diff."""
    from harness.golden import GoldenError

    store = _store(ctx, golden_root, candidates)

    def confirm(diffs) -> bool:
        _print_diffs(diffs)
        return yes or click.confirm(f"bless {name} into {store.path(name)}?", default=False)

    try:
        rec = store.bless(name, reason, confirm=confirm)
    except GoldenError as exc:
        click.echo(f"bless refused: {exc}", err=True)
        ctx.exit(1)
        return
    click.echo(f"blessed {name} by {rec.user} at {rec.date} (commit {rec.commit}): "
               f"{len(rec.changed)} changed, {len(rec.added)} added, {len(rec.removed)} removed")  # fmt: skip


@cli.command("diff")
@click.argument("test", type=click.Path(exists=True, dir_okay=False))
@click.argument("reference", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def diff_cmd(ctx, test, reference) -> None:
    """Compare TEST with REFERENCE (FITS, JSON or bytes); exit 1 when they differ."""
    from harness.filediff import compare_files

    d = compare_files(test, reference, ctx.obj["config"])
    click.echo(d.account())
    ctx.exit(0 if d.identical else 1)


@cli.command("record")
@click.option("--reports", "reports_dir", type=click.Path(file_okay=False), default=None, help="Reports folder (default reports/).")
@click.pass_context
def record_cmd(ctx, reports_dir) -> None:
    """Append the last run's coverage and timing figures to the tracked histories.

    The one step that writes ``reports/coverage-history.csv``,
    ``reports/benchmarks/{history.csv,baseline.json,latest.json}`` and the two trend
    plots; CI runs it on main after ``tox``.  Exit 1 when no run left figures.
    """
    from harness.run import RunOptions, record_coverage, record_timing

    opts = RunOptions(config=ctx.obj["config"])
    reports = Path(reports_dir) if reports_dir else opts.reports_dir
    done = {"coverage": record_coverage(reports), "timing": record_timing(reports)}
    for what, plot in done.items():
        click.echo(f"{what}: " + (f"recorded, {plot}" if plot else "nothing pending (run 'python -m harness run' first)"))
    ctx.exit(0 if any(done.values()) else 1)


@cli.command("coverage")
@click.option("--json", "json_path", type=click.Path(exists=True, dir_okay=False), required=True, help="coverage.py JSON report.")
@click.option("--reports", "reports_dir", type=click.Path(file_okay=False), default=None)
@click.option("--record/--no-record", default=False, show_default=True, help="Also append to the tracked history.")
@click.pass_context
def coverage_cmd(ctx, json_path, reports_dir, record) -> None:
    """Check a coverage report against the floor and the history (append it with --record)."""
    from harness.golden import git_commit
    from harness.run import RunOptions, coverage_step

    opts = RunOptions(config=ctx.obj["config"], coverage_json=Path(json_path), record=record)
    if reports_dir:
        opts.reports_dir = Path(reports_dir)
    checks, _ = coverage_step(opts, opts.reports_dir, git_commit())
    for c in checks:
        click.echo(c.line())
    ctx.exit(1 if any(c.failed for c in checks) else 0)


@cli.command("timing")
@click.option("--update-baseline", is_flag=True, help="Replace the baselines with this run's figures.")
@click.option("--reports", "reports_dir", type=click.Path(file_okay=False), default=None)
@click.pass_context
def timing_cmd(ctx, update_baseline, reports_dir) -> None:
    """Time the bricks on golden data against the baselines."""
    import tempfile

    from harness.golden import GoldenStore, git_commit
    from harness.run import RunOptions, timing_step

    opts = RunOptions(config=ctx.obj["config"], update_timing_baseline=update_baseline)
    if reports_dir:
        opts.reports_dir = Path(reports_dir)
    store = GoldenStore(opts.golden_root, config=opts.config)
    usable = [n for n in store.names() if store.verify(n).ok]
    with tempfile.TemporaryDirectory(prefix="mxt-timing-") as work:
        checks, _ = timing_step(usable, opts, Path(work), git_commit())
    for c in checks:
        click.echo(c.line())
    ctx.exit(1 if any(c.failed for c in checks) else 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    return run_group(cli, argv, "python -m harness")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
