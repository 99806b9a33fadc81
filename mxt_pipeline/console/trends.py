"""The harness page's data: last regression report, coverage and timing trends as SVG.

The trends are drawn as inline SVG from the harness's history files
(``reports/coverage-history.csv``, ``reports/benchmarks/history.csv``): no plotting
library in the request path and nothing fetched from the internet.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

__all__ = ["Series", "line_chart_svg", "coverage_series", "timing_series", "HarnessReports"]

_PALETTE = ("#4e9af1", "#f1a44e", "#5cc98b", "#e0605a", "#b07cf0", "#47c4c9", "#d9c84a", "#9aa4b2")


@dataclass(frozen=True)
class Series:
    """One line of a chart: a name and its values, one per run (None: not measured)."""

    name: str
    values: tuple[float | None, ...]


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def _runs(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(commit, date) of each run, in file order."""
    seen: dict[tuple[str, str], None] = {}
    for r in rows:
        seen.setdefault((r.get("commit", ""), r.get("date", "")), None)
    return list(seen)


def _float(text: str | None) -> float | None:
    try:
        v = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None


def coverage_series(path: Path, packages: tuple[str, ...] = ("mxt_pipeline", "harness")) -> tuple[list[str], list[Series]]:
    """Line coverage (%) of the top-level packages per run of the coverage history."""
    rows = _read_csv(path)
    runs = _runs(rows)
    idx = {r: i for i, r in enumerate(runs)}
    series = []
    for pkg in packages:
        vals: list[float | None] = [None] * len(runs)
        for r in rows:
            if r.get("package") == pkg:
                vals[idx[(r.get("commit", ""), r.get("date", ""))]] = _float(r.get("line_pct"))
        if any(v is not None for v in vals):
            series.append(Series(f"{pkg} lines %", tuple(vals)))
    return [d[:10] for _, d in runs], series


def timing_series(path: Path) -> tuple[list[str], list[Series]]:
    """Normalised brick times (brick time / calibration workload) per run."""
    rows = _read_csv(path)
    runs = _runs(rows)
    idx = {r: i for i, r in enumerate(runs)}
    by_brick: dict[str, list[float | None]] = {}
    for r in rows:
        vals = by_brick.setdefault(r.get("brick", ""), [None] * len(runs))
        vals[idx[(r.get("commit", ""), r.get("date", ""))]] = _float(r.get("normalised"))
    return [d[:10] for _, d in runs], [Series(k, tuple(v)) for k, v in sorted(by_brick.items())]


def line_chart_svg(labels: list[str], series: list[Series], *, title: str, ylabel: str, log_y: bool = False,
                   width: int = 760, height: int = 300) -> str:  # fmt: skip
    """An SVG line chart (a string, already escaped) of ``series`` over the runs ``labels``."""
    left, right, top, bottom = 62, 190, 30, 44
    pw, ph = width - left - right, height - top - bottom
    pts = [v for s in series for v in s.values if v is not None and (v > 0 or not log_y)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}">', f'<text x="{left}" y="18" class="chart-title">{escape(title)}</text>']  # fmt: skip
    if not pts or not labels:
        out.append(f'<text x="{left}" y="{top + ph / 2}" class="chart-empty">no history yet</text></svg>')
        return "".join(out)
    f = math.log10 if log_y else (lambda v: v)
    lo, hi = f(min(pts)), f(max(pts))
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad = 0.08 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    n = len(labels)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - (f(v) - lo) / (hi - lo))

    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="chart-frame"/>')
    for k in range(5):  # horizontal grid with tick labels
        fv = lo + (hi - lo) * k / 4
        yy = top + ph * (1 - k / 4)
        val = 10**fv if log_y else fv
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" class="chart-grid"/>'
                   f'<text x="{left - 6}" y="{yy + 4:.1f}" class="chart-tick" text-anchor="end">{val:.3g}</text>')  # fmt: skip
    step = max(1, n // 8)
    for i in range(0, n, step):
        out.append(f'<text x="{x(i):.1f}" y="{top + ph + 16}" class="chart-tick" text-anchor="middle">{escape(labels[i])}</text>')
    out.append(f'<text x="14" y="{top + ph / 2}" class="chart-axis" transform="rotate(-90 14 {top + ph / 2})" '
               f'text-anchor="middle">{escape(ylabel)}</text>')  # fmt: skip
    for k, s in enumerate(series):
        colour = _PALETTE[k % len(_PALETTE)]
        seg: list[str] = []
        for i, v in enumerate(s.values):
            if v is None or (log_y and v <= 0):
                continue
            seg.append(f"{x(i):.1f},{y(v):.1f}")
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"><title>{escape(s.name)} '
                       f'{escape(labels[i])}: {v:.4g}</title></circle>')  # fmt: skip
        if len(seg) > 1:
            out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        ly = top + 12 + 16 * k
        out.append(f'<rect x="{left + pw + 14}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{left + pw + 30}" y="{ly + 1}" class="chart-legend">{escape(s.name)}</text>')  # fmt: skip
    out.append("</svg>")
    return "".join(out)


class HarnessReports:
    """The harness's report folder (``reports/``)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder.resolve() if folder is not None and folder.is_dir() else None

    def regression_markdown(self) -> str | None:
        if self.folder is None:
            return None
        p = self.folder / "regression.md"
        try:
            return p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def regression_html(self) -> Path | None:
        if self.folder is None:
            return None
        p = self.folder / "regression.html"
        return p if p.is_file() else None

    def charts(self) -> list[str]:
        if self.folder is None:
            return []
        labels, cov = coverage_series(self.folder / "coverage-history.csv")
        tlabels, tim = timing_series(self.folder / "benchmarks" / "history.csv")
        return [
            line_chart_svg(labels, cov, title="Line coverage per run", ylabel="covered lines (%)"),
            line_chart_svg(tlabels, tim, title="Brick time per run (normalised by the calibration workload)",
                           ylabel="time / workload", log_y=True),
        ]  # fmt: skip
