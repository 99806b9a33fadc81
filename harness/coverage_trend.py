"""Coverage trend: one row per package and run in ``reports/coverage-history.csv``.

Input: the JSON report of coverage.py (``coverage json`` or ``pytest --cov-report=json``),
whose ``files`` entries give, per source file, ``covered_lines``/``num_statements`` and
``covered_branches``/``num_branches``.  Files are grouped by package at depth two
(``mxt_pipeline/io/fits.py`` -> ``mxt_pipeline.io``, ``mxt_pipeline/errors.py`` ->
``mxt_pipeline.errors``) and totalled per top-level package (``mxt_pipeline``,
``harness``).

The check (on the ``coverage.package`` total, ``mxt_pipeline`` by default):

* line (and branch) coverage below the floor of the configuration fails; the harness
  never writes the configuration, and a floor lower than one recorded in the history
  fails too (the floor is only ever raised, by hand);
* each subpackage of ``coverage.package_floors`` (the science packages) must reach its
  own line and branch floors: a package below one fails, named with its figure and
  floor, and so does a package with no file in the report (a floor on nothing would
  pass forever);
* a drop of more than ``coverage.max_drop`` points (0.5) from the last passing run
  fails. Rows of failing runs are recorded with ``status=fail`` and are not used as the
  reference, so a drop cannot be laundered by running twice.

Smaller drops of single subpackages are reported as warnings (code moving between
subpackages moves coverage with it).
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from harness.history import read_history, save_trend, trend_axes
from mxt_pipeline.errors import MXTInputError

__all__ = [
    "PackageCoverage",
    "CoverageCheck",
    "package_coverage",
    "read_history",
    "append_history",
    "check_coverage",
    "check_package_floors",
    "parse_package_floors",
    "plot_trend",
    "HISTORY_FIELDS",
]

HISTORY_FIELDS = (
    "commit", "date", "package", "lines_covered", "lines_total", "line_pct",
    "branches_covered", "branches_total", "branch_pct", "floor_line", "status",
)  # fmt: skip

_TOP_PACKAGES = ("mxt_pipeline", "harness")


@dataclass
class PackageCoverage:
    """Covered and total lines and branches of one package."""

    package: str
    lines_covered: int = 0
    lines_total: int = 0
    branches_covered: int = 0
    branches_total: int = 0

    @property
    def line_pct(self) -> float:
        return 100.0 * self.lines_covered / self.lines_total if self.lines_total else 100.0

    @property
    def branch_pct(self) -> float:
        return 100.0 * self.branches_covered / self.branches_total if self.branches_total else 100.0

    def add(self, summary: dict[str, Any]) -> None:
        self.lines_covered += int(summary.get("covered_lines", 0))
        self.lines_total += int(summary.get("num_statements", 0))
        self.branches_covered += int(summary.get("covered_branches", 0))
        self.branches_total += int(summary.get("num_branches", 0))


def _package_of(path: str) -> tuple[str, str] | None:
    """(top package, depth-two package) of a source path, or None outside them."""
    parts = PurePosixPath(path.replace(os.sep, "/")).parts
    for i, part in enumerate(parts):
        if part in _TOP_PACKAGES:
            rest = parts[i + 1 :]
            if not rest:
                return None
            if "tests" in rest[:-1]:
                return None
            sub = rest[0][:-3] if rest[0].endswith(".py") else rest[0]
            return part, f"{part}.{sub}"
    return None


def package_coverage(report: dict[str, Any] | str | os.PathLike[str]) -> dict[str, PackageCoverage]:
    """Per-package coverage from a coverage.py JSON report (a dict or a path).

    Returns
    -------
    dict
        Package name -> coverage; the top-level totals under ``mxt_pipeline`` and
        ``harness``, the subpackages under dotted names.
    """
    if not isinstance(report, dict):
        report = json.loads(Path(report).read_text(encoding="utf-8"))
    files = report.get("files")
    if not isinstance(files, dict):
        raise ValueError("not a coverage.py JSON report (no 'files' mapping)")
    out: dict[str, PackageCoverage] = {}
    for path, entry in files.items():
        key = _package_of(path)
        if key is None:
            continue
        summary = entry.get("summary", {})
        for name in key:
            out.setdefault(name, PackageCoverage(name)).add(summary)
    return dict(sorted(out.items()))


def append_history(
    path: str | os.PathLike[str],
    packages: dict[str, PackageCoverage],
    *,
    commit: str,
    status: str,
    floor_line: float,
    date: str | None = None,
) -> None:
    """Append one row per package (the file and its header are created if needed)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    date = date or datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    new = not p.exists() or p.stat().st_size == 0
    with open(p, "a", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS)
        if new:
            w.writeheader()
        for pkg in packages.values():
            w.writerow(
                {
                    "commit": commit,
                    "date": date,
                    "package": pkg.package,
                    "lines_covered": pkg.lines_covered,
                    "lines_total": pkg.lines_total,
                    "line_pct": f"{pkg.line_pct:.2f}",
                    "branches_covered": pkg.branches_covered,
                    "branches_total": pkg.branches_total,
                    "branch_pct": f"{pkg.branch_pct:.2f}",
                    "floor_line": f"{floor_line:.2f}",
                    "status": status,
                }
            )


@dataclass
class CoverageCheck:
    """Verdict of the coverage check."""

    ok: bool
    package: str
    line_pct: float
    branch_pct: float
    floor_line: float
    floor_branch: float
    previous_line: float | None = None
    previous_branch: float | None = None
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Subpackages below one of their ``package_floors``.
    failed_packages: list[str] = field(default_factory=list)

    def message(self) -> str:
        head = f"{self.package}: line {self.line_pct:.2f}% (floor {self.floor_line:.2f}), branch {self.branch_pct:.2f}% (floor {self.floor_branch:.2f})"
        if self.previous_line is not None:
            head += f"; previous line {self.previous_line:.2f}%"
        return "; ".join([head, *self.failures]) if self.failures else head


def _last_ok(history: list[dict[str, str]], package: str) -> dict[str, str] | None:
    for row in reversed(history):
        if row.get("package") == package and row.get("status", "ok") == "ok":
            return row
    return None


def check_coverage(
    packages: dict[str, PackageCoverage],
    history: list[dict[str, str]],
    config: dict[str, Any],
) -> CoverageCheck:
    """Compare the current figures with the floor and with the last passing run.

    Parameters
    ----------
    packages : dict
        From :func:`package_coverage`.
    history : list of dict
        From :func:`read_history` (before this run's rows are appended).
    config : dict
        The ``coverage`` section: ``package``, ``floor.line``, ``floor.branch``,
        ``max_drop`` (points), ``warn_drop_subpackage`` (points), ``package_floors``
        (``{subpackage: {line: %, branch: %}}``, see :func:`check_package_floors`).
    """
    name = str(config.get("package", "mxt_pipeline"))
    floor = config.get("floor") or {}
    floor_line = float(floor.get("line", 0.0))
    floor_branch = float(floor.get("branch", 0.0))
    max_drop = float(config.get("max_drop", 0.5))
    pkg = packages.get(name)
    if pkg is None:
        return CoverageCheck(False, name, 0.0, 0.0, floor_line, floor_branch,
                             failures=[f"no file of package {name} in the coverage report"])  # fmt: skip
    res = CoverageCheck(True, name, pkg.line_pct, pkg.branch_pct, floor_line, floor_branch)
    if pkg.line_pct < floor_line:
        res.failures.append(f"line coverage {pkg.line_pct:.2f}% is below the floor {floor_line:.2f}%")
    if pkg.branch_pct < floor_branch:
        res.failures.append(f"branch coverage {pkg.branch_pct:.2f}% is below the floor {floor_branch:.2f}%")
    recorded_floors = [float(r["floor_line"]) for r in history if r.get("package") == name and r.get("floor_line")]
    if recorded_floors and floor_line < max(recorded_floors) - 1e-9:
        res.failures.append(
            f"the line floor {floor_line:.2f}% is lower than the {max(recorded_floors):.2f}% already "
            "recorded: the floor is never lowered"
        )
    prev = _last_ok(history, name)
    if prev is not None:
        res.previous_line = float(prev["line_pct"])
        res.previous_branch = float(prev["branch_pct"])
        if res.previous_line - pkg.line_pct > max_drop:
            res.failures.append(
                f"line coverage dropped by {res.previous_line - pkg.line_pct:.2f} points "
                f"(from {res.previous_line:.2f}% at {prev['commit']}; at most {max_drop} allowed)"
            )
        if res.previous_branch - pkg.branch_pct > max_drop:
            res.failures.append(
                f"branch coverage dropped by {res.previous_branch - pkg.branch_pct:.2f} points "
                f"(from {res.previous_branch:.2f}% at {prev['commit']}; at most {max_drop} allowed)"
            )
    warn_drop = float(config.get("warn_drop_subpackage", 2.0))
    for sub, cov in packages.items():
        if sub == name or not sub.startswith(name + "."):
            continue
        p = _last_ok(history, sub)
        if p is not None and float(p["line_pct"]) - cov.line_pct > warn_drop:
            res.warnings.append(f"{sub}: line coverage {float(p['line_pct']):.1f}% -> {cov.line_pct:.1f}%")
    try:
        below = check_package_floors(packages, config.get("package_floors"))
    except MXTInputError as exc:  # a malformed floor fails the check, never passes it
        below = {}
        res.failures.append(str(exc))
    for sub, msgs in below.items():
        res.failures.extend(msgs)
        res.failed_packages.append(sub)
    res.ok = not res.failures
    return res


def parse_package_floors(floors: Any) -> dict[str, tuple[float, float]]:
    """``coverage.package_floors`` as ``{package: (line floor, branch floor)}`` (percent).

    Raises
    ------
    MXTInputError
        Not a mapping of package names to ``{line: %, branch: %}`` with numbers in
        [0, 100] (an unknown key, such as a misspelt ``brnach``, is refused rather
        than read as no floor).
    """
    if floors is None:
        return {}
    if not isinstance(floors, dict):
        raise MXTInputError("coverage.package_floors must map package names to {line: %, branch: %}",
                             keyword="package_floors")  # fmt: skip
    out: dict[str, tuple[float, float]] = {}
    for name, spec in floors.items():
        where = f"coverage.package_floors.{name}"
        if not isinstance(spec, dict) or not spec or set(spec) - {"line", "branch"}:
            raise MXTInputError(f"{where} must be a mapping with 'line' and/or 'branch' (percent)", keyword=str(name))
        vals = []
        for kind in ("line", "branch"):
            v = spec.get(kind, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 100.0:
                raise MXTInputError(f"{where}.{kind} must be a number in [0, 100], got {v!r}", keyword=str(name))
            vals.append(float(v))
        out[str(name)] = (vals[0], vals[1])
    return out


def check_package_floors(packages: dict[str, PackageCoverage], floors: Any) -> dict[str, list[str]]:
    """Per-package floors: ``{package: [failure, ...]}`` for the packages that miss one.

    Parameters
    ----------
    packages : dict
        From :func:`package_coverage`.
    floors : mapping or None
        ``coverage.package_floors`` of the configuration (see :func:`parse_package_floors`).

    Returns
    -------
    dict
        Only the failing packages; each message names the package, the figure and the floor.
    """
    out: dict[str, list[str]] = {}
    for name, (floor_line, floor_branch) in parse_package_floors(floors).items():
        cov = packages.get(name)
        if cov is None or cov.lines_total == 0:
            out[name] = [f"{name}: no file of the package in the coverage report (its floor cannot be checked)"]
            continue
        msgs = []
        if cov.line_pct < floor_line:
            msgs.append(f"{name}: line coverage {cov.line_pct:.2f}% is below its floor {floor_line:.2f}%")
        if cov.branch_pct < floor_branch:
            msgs.append(f"{name}: branch coverage {cov.branch_pct:.2f}% is below its floor {floor_branch:.2f}%")
        if msgs:
            out[name] = msgs
    return out


def plot_trend(history: list[dict[str, str]], path: str | os.PathLike[str], packages: tuple[str, ...] = _TOP_PACKAGES) -> Path | None:
    """Plot line and branch coverage per run of the top packages, with the floor."""
    rows = [r for r in history if r.get("package") in packages]
    if not rows:
        return None
    fig, ax, runs, index = trend_axes(rows)
    series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    floor: list[tuple[int, float]] = []
    for r in rows:
        i = index[(r["date"], r["commit"])]
        series[(r["package"], "line")].append((i, float(r["line_pct"])))
        series[(r["package"], "branch")].append((i, float(r["branch_pct"])))
        if r["package"] == packages[0] and r.get("floor_line"):
            floor.append((i, float(r["floor_line"])))
    for (pkg, kind), pts in sorted(series.items()):
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker="o", ms=3, ls="-" if kind == "line" else "--", label=f"{pkg} {kind}")
    if floor:
        xs, ys = zip(*floor)
        ax.step(xs, ys, where="post", color="k", lw=1, label="line floor")
    return save_trend(fig, ax, runs, path, "coverage (%)", fontsize=7, loc="lower left")
