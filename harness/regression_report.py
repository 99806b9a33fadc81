"""The regression report: ``reports/regression.html`` (self-contained) and ``regression.md``.

The HTML page embeds its plots as base64 PNG data and its style inline, so it can be
attached to a merge request or archived as one file.  It lists every check with its
verdict, message and figures, and the full account (FITS diffs) of each failure in a
collapsible block.  The markdown file is the short summary: the verdict, counts per
section, and one line per failing or missing check.  ``regression.json`` keeps the
same content for tools.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from harness.results import RunSummary, Status
from mxt_pipeline.io import atomic_write_bytes

__all__ = ["write_reports", "render_html", "render_markdown"]

_COLOURS = {
    Status.PASS: "#2e7d32",
    Status.FAIL: "#c62828",
    Status.SKIP: "#757575",
    Status.MISSING: "#ef6c00",
    Status.WARN: "#f9a825",
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;font-size:.88em}
td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#f3f3f3}.st{font-weight:bold;color:#fff;text-align:center;width:5em}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em;margin:.3em 0}
.verdict{font-size:1.2em;font-weight:bold;padding:.4em .8em;display:inline-block;color:#fff}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
.fig{font-family:monospace;font-size:.85em;color:#444}
"""


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _figures(figs: dict) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in figs.items() if not isinstance(v, (list, dict)))


def render_html(summary: RunSummary, plots: dict[str, Path] | None = None) -> str:
    """The HTML page of a run (plots embedded)."""
    ok = summary.ok
    verdict_colour = _COLOURS[Status.PASS] if ok else _COLOURS[Status.FAIL]
    counts = summary.counts()
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>MXT regression report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>MXT pipeline regression report</h1>",
        f"<p>commit <code>{html.escape(summary.commit)}</code>, {html.escape(summary.date)}, "
        f"{summary.elapsed_s:.0f} s</p>",
        f"<p><span class='verdict' style='background:{verdict_colour}'>{'PASS' if ok else 'FAIL'}</span> ",
        " ".join(f"{k}: {v}" for k, v in counts.items() if v),
        "</p>",
    ]
    fails = summary.failures()
    if fails:
        out.append("<h2>Failures</h2><ul>")
        out += [f"<li><b>{html.escape(c.section)}/{html.escape(c.name)}</b>: {html.escape(c.message)}</li>" for c in fails]
        out.append("</ul>")
    for section in summary.sections():
        checks = [c for c in summary.checks if c.section == section]
        out.append(f"<h2>{html.escape(section)}</h2><table><tr><th>verdict</th><th>check</th><th>message and figures</th></tr>")
        for c in checks:
            colour = _COLOURS[c.status]
            cell = html.escape(c.message)
            figs = _figures(c.figures)
            if figs:
                cell += f"<div class='fig'>{html.escape(figs)}</div>"
            if c.details:
                open_attr = " open" if c.status == Status.FAIL else ""
                cell += f"<details{open_attr}><summary>details</summary><pre>{html.escape(c.details)}</pre></details>"
            out.append(
                f"<tr><td class='st' style='background:{colour}'>{c.status}</td>"
                f"<td>{html.escape(c.name)}</td><td>{cell}</td></tr>"
            )
        out.append("</table>")
    if plots:
        out.append("<h2>Trends</h2>")
        for title, path in plots.items():
            p = Path(path)
            if not p.exists():
                continue
            data = base64.b64encode(p.read_bytes()).decode("ascii")
            out.append(f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    out.append("</body></html>")
    return "\n".join(out)


def render_markdown(summary: RunSummary, plots: dict[str, Path] | None = None) -> str:
    """The short markdown summary."""
    ok = summary.ok
    lines = [
        "# MXT regression summary",
        "",
        f"**{'PASS' if ok else 'FAIL'}**: commit `{summary.commit}`, {summary.date}, {summary.elapsed_s:.0f} s.",
        "",
        "| section | pass | fail | missing | skip | warn |",
        "|---|---|---|---|---|---|",
    ]
    for section in summary.sections():
        cs = [c for c in summary.checks if c.section == section]
        n = {s: sum(1 for c in cs if c.status == s) for s in Status}
        lines.append(
            f"| {section} | {n[Status.PASS]} | {n[Status.FAIL]} | {n[Status.MISSING]} | {n[Status.SKIP]} | {n[Status.WARN]} |"
        )
    notable = [c for c in summary.checks if c.status in (Status.FAIL, Status.MISSING, Status.WARN)]
    if notable:
        lines += ["", "## Failures, missing data and warnings", ""]
        lines += [f"- {c.status} {c.section}/{c.name}: {c.message}" for c in notable]
    key = [c for c in summary.checks if c.section in ("coverage", "timing", "localization", "ensemble") and c.status == Status.PASS]
    if key:
        lines += ["", "## Figures", ""]
        lines += [f"- {c.section}/{c.name}: {c.message}" for c in key]
    if plots:
        lines += ["", "Plots: " + ", ".join(f"{t} (`{Path(p).name}`)" for t, p in plots.items() if Path(p).exists())]
    lines += ["", "Full report: `reports/regression.html`.", ""]
    return "\n".join(lines)


def _atomic_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_reports(summary: RunSummary, out_dir: str | os.PathLike[str], plots: dict[str, Path] | None = None) -> dict[str, Path]:
    """Write ``regression.html``, ``regression.md`` and ``regression.json`` into ``out_dir``."""
    out = Path(out_dir)
    paths = {
        "html": out / "regression.html",
        "md": out / "regression.md",
        "json": out / "regression.json",
    }
    _atomic_text(paths["html"], render_html(summary, plots))
    _atomic_text(paths["md"], render_markdown(summary, plots))
    _atomic_text(paths["json"], json.dumps(summary.to_dict(), indent=1, default=str) + "\n")
    return paths
