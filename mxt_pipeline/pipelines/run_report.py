"""The run report: per brick status, time, inputs/outputs with checksums, CALDB files.

Written in three forms beside the products: ``run_report.json`` (complete, for
programs: the harness reads it for timing trends), ``run_report.md`` and
``run_report.html`` (short, for people: the science first, sources with position,
R90 and DET_ML, the burst offset, exposure and gaps, the previews inline; then the
status, a time breakdown per brick, the products and what went wrong).

The science section is read from the products in the folder at the time the report is
written (source list, burst file, preview PNGs) and from the bricks' metrics, so it
shows exactly what was published.
"""

from __future__ import annotations

import html
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mxt_pipeline._version import __version__
from mxt_pipeline.errors import MXTError
from mxt_pipeline.io import read_product
from mxt_pipeline.io.fits import atomic_write_bytes
from mxt_pipeline.pipelines.brick import BrickResult
from mxt_pipeline.pipelines.ports import FileRecord, write_json

__all__ = [
    "build_report",
    "write_report",
    "report_markdown",
    "report_html",
    "environment",
    "science_summary",
    "split_clock",
    "REPORT_FILES",
    "CLOCK_FIELDS",
    "BRICK_CLOCK_FIELDS",
]

#: File names of the report in a collection.
REPORT_FILES = ("run_report.json", "run_report.md", "run_report.html")


def environment() -> dict[str, str]:
    """Versions of the interpreter and of the numerical libraries."""
    import astropy
    import numpy
    import scipy


    return {
        "mxt_pipeline": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "astropy": astropy.__version__,
        "platform": platform.platform(terse=True),
    }


def build_report(
    *,
    pipeline: str,
    status: str,
    bricks: Sequence[BrickResult],
    target: Mapping[str, Any],
    inputs: Sequence[FileRecord],
    caldb: Sequence[Mapping[str, Any]],
    versions: Mapping[str, str],
    timing: Mapping[str, float],
    started: str,
    finished: str,
    collection: str | None = None,
    run_key: str | None = None,
    stopped_at: Mapping[str, Any] | None = None,
    reason: Mapping[str, Any] | None = None,
    missing_inputs: Sequence[str] = (),
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see ``docs/pipelines.md`` for the fields)."""
    total = float(timing.get("total_s", 0.0)) or sum(b.elapsed_s for b in bricks)
    return {
        "report_version": 1,
        "pipeline": pipeline,
        "status": status,
        "collection": collection,
        "run_key": run_key,
        "versions": dict(versions),
        "started": started,
        "finished": finished,
        "stopped_at": dict(stopped_at) if stopped_at else None,
        "reason": dict(reason) if reason else None,
        "target": dict(target),
        "inputs": [r.to_dict() for r in inputs],
        "missing_inputs": list(missing_inputs),
        "caldb": [dict(c) for c in caldb],
        "bricks": [b.to_dict() for b in bricks],
        "timing": {
            **{k: round(float(v), 6) for k, v in timing.items()},
            "per_brick_s": {b.name: round(b.elapsed_s, 6) for b in bricks},
            "per_brick_fraction": {b.name: (round(b.elapsed_s / total, 4) if total > 0 else 0.0) for b in bricks},
        },
        "environment": environment(),
    }


#: Report fields that hold wall-clock readings: different at every run, so kept out
#: of the published collection (which two identical runs must reproduce byte for
#: byte) and written to the run's timings file instead.
CLOCK_FIELDS = ("started", "finished", "timing")
BRICK_CLOCK_FIELDS = ("started", "elapsed_s", "phase_s")


def split_clock(report: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a report into its reproducible part and its wall-clock readings.

    Returns
    -------
    (dict, dict)
        The report without :data:`CLOCK_FIELDS` (and each brick without
        :data:`BRICK_CLOCK_FIELDS`), for the collection; and the timings:
        ``collection``, ``run_key``, the clock fields, and ``bricks`` mapping each
        brick name to its clock fields.
    """
    published = {k: v for k, v in report.items() if k not in CLOCK_FIELDS}
    published["bricks"] = [{k: v for k, v in b.items() if k not in BRICK_CLOCK_FIELDS} for b in report["bricks"]]
    timings: dict[str, Any] = {"collection": report.get("collection"), "run_key": report.get("run_key")}
    timings.update({k: report[k] for k in CLOCK_FIELDS if k in report})
    timings["bricks"] = {b["name"]: {k: b[k] for k in BRICK_CLOCK_FIELDS if k in b} for b in report["bricks"]}
    return published, timings


def _short(sha: str) -> str:
    return sha[:12]


def _seconds(brick: Mapping[str, Any]) -> str:
    return f"{brick['elapsed_s']:.3f}" if "elapsed_s" in brick else "-"


def _share(frac: Mapping[str, float], brick: Mapping[str, Any]) -> str:
    return f"{100 * frac[brick['name']]:.1f}%" if brick["name"] in frac else "-"


def _metrics(report: Mapping[str, Any], brick: str) -> dict[str, Any]:
    for b in report.get("bricks", []):
        if b.get("name") == brick:
            return dict(b.get("metrics") or {})
    return {}


def science_summary(folder: str | os.PathLike[str] | None, report: Mapping[str, Any]) -> dict[str, Any]:
    """What a scientist looks for first, from the products in ``folder`` and the metrics.

    Returns a dict with ``sources`` (one dict per source list row: SRC_ID, RA, DEC,
    ERR_R90 in arcsec, DET_ML, RATE, RATE_ERR), ``burst`` (the burst file's source and
    trigger, or None), ``exposure_s``, ``lost_s_by_origin`` and ``previews`` (PNG file
    names of the folder).  Missing products give empty entries: a failed run has fewer.
    """
    import json

    out: dict[str, Any] = {"sources": [], "burst": None, "previews": []}
    cal = _metrics(report, "calibrate")
    out["exposure_s"] = cal.get("ontime_s")
    out["lost_s_by_origin"] = cal.get("lost_s_by_origin") or {}
    if folder is None:
        return out
    root = Path(folder)
    for path in sorted(root.glob("mxt_sop_sky_*.fits")):
        try:
            table = read_product(path, "MXT_SOP_SKY").table("SRCLIST")
        except (MXTError, OSError):
            continue
        for row in table:
            out["sources"].append({k: (int(row[k]) if k == "SRC_ID" else float(row[k]))
                                   for k in ("SRC_ID", "RA", "DEC", "ERR_R90", "DET_ML", "RATE", "RATE_ERR")
                                   if k in table.colnames})  # fmt: skip
    for path in sorted(root.glob("mxt_burst_*.json")):
        try:
            out["burst"] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    out["previews"] = [p.name for p in sorted(root.glob("*.png"), key=lambda p: (not p.name.startswith("mxt_img"), p.name))]
    return out


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _science_lines(sci: Mapping[str, Any]) -> list[str]:
    """The science section in Markdown."""
    lines = ["## Science", ""]
    burst = sci.get("burst")
    if burst:
        src, trig = burst.get("source") or {}, burst.get("trigger") or {}
        if burst.get("detected") and src:
            lines.append(f"- burst: SRC_ID {src.get('src_id')} at RA {src['ra']:.4f}, Dec {src['dec']:+.4f} deg, "
                         f"R90 {_fmt(src.get('err_r90_arcsec'), '.1f')}\" (90% confidence), "
                         f"{_fmt(src.get('offset_from_trigger_arcsec'), '.1f')}\" from the trigger position "
                         f"({trig.get('origin', '?')}, radius {_fmt(trig.get('error_radius_arcmin'), '.1f')}')")  # fmt: skip
        else:
            lines.append("- burst: not detected")
    if sci.get("exposure_s") is not None:
        lost = {k: v for k, v in (sci.get("lost_s_by_origin") or {}).items() if v}
        gaps = ", ".join(f"{k.lower()} {v:.0f} s" for k, v in sorted(lost.items())) or "none"
        lines.append(f"- exposure (good time): {sci['exposure_s']:.0f} s; time lost to gaps: {gaps}")
    if sci.get("sources"):
        lines += ["", "| SRC_ID | RA (deg) | Dec (deg) | R90 (\", 90%) | DET_ML | rate (ct/s) |",
                  "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in sci["sources"]:
            lines.append(f"| {r.get('SRC_ID')} | {r['RA']:.4f} | {r['DEC']:+.4f} | {_fmt(r.get('ERR_R90'), '.1f')} | "
                         f"{_fmt(r.get('DET_ML'), '.1f')} | {_fmt(r.get('RATE'), '.3f')} +- {_fmt(r.get('RATE_ERR'), '.3f')} |")
    elif sci.get("burst") is not None or sci.get("exposure_s") is not None:
        lines.append("- no source detected")
    if sci.get("previews"):
        lines += [""] + [f"![{name}]({name})" for name in sci["previews"]]
    return lines + [""]


def report_markdown(report: Mapping[str, Any], science: Mapping[str, Any] | None = None) -> str:
    """A short human-readable account of a run (``science``: :func:`science_summary`)."""
    t = report["target"]
    lines = [
        f"# {report['pipeline']} run of {t.get('obs_id', '?')}: {report['status']}",
        "",
        f"- collection: `{report.get('collection') or '-'}`",
        f"- versions: pipeline {report['versions'].get('pipeline', '?')}, CALDB {report['versions'].get('caldb', '?')}",
        f"- mode: {t.get('mode', '?')}" + (f", burst {t['burst_id']}" if t.get("burst_id") else ""),
    ]
    timing = report.get("timing") or {}
    if "started" in report:  # absent from a published report: the times are in the timings file
        lines.append(f"- started {report['started']}, finished {report.get('finished')}, "
                     f"total {timing.get('total_s', 0.0):.2f} s")  # fmt: skip
    if report.get("stopped_at"):
        s = report["stopped_at"]
        lines.append(f"- stopped at brick `{s.get('brick', '-')}`, phase {s.get('phase', '-')}")
    if report.get("reason"):
        r = report["reason"]
        lines.append(f"- reason: {r.get('type')}: {r.get('message')}")
    if report.get("missing_inputs"):
        lines.append("- missing inputs: " + ", ".join(f"`{Path(m).name}`" for m in report["missing_inputs"]))
    if science:
        lines += ["", *_science_lines(science)]
    lines += ["", "## Bricks", "", "| brick | status | time (s) | share | outputs | warnings |", "|---|---|---:|---:|---|---|"]
    frac = timing.get("per_brick_fraction", {})
    for b in report["bricks"]:
        outs = ", ".join(f"`{o['path']}`" for o in b["outputs"][:4]) + (" ..." if len(b["outputs"]) > 4 else "")
        warn = "; ".join(b["warnings"])[:160]
        resumed = " (resumed)" if b.get("resumed") else ""
        lines.append(
            f"| {b['name']} | {b['status']}{resumed} | {_seconds(b)} | {_share(frac, b)} "
            f"| {outs or '-'} | {warn or '-'} |"
        )
    if report["caldb"]:
        lines += ["", "## Calibration files", "", "| code | file | sha256 |", "|---|---|---|"]
        lines += [f"| {c['code']} | `{c['file']}` | `{_short(c['sha256'])}` |" for c in report["caldb"]]
    products = [o for b in report["bricks"] for o in b["outputs"]]
    if products:
        lines += ["", "## Products", "", "| file | brick port | size | sha256 |", "|---|---|---:|---|"]
        owner = {o["path"]: b["name"] for b in report["bricks"] for o in b["outputs"]}
        lines += [
            f"| `{o['path']}` | {owner[o['path']]} {o['port']} | {o['size']} | `{_short(o['sha256'])}` |" for o in products
        ]
    return "\n".join(lines) + "\n"


def _science_html(sci: Mapping[str, Any], folder: Path | None) -> str:
    """The science section: burst, exposure and gaps, the source table, previews inline."""
    import base64

    e = html.escape
    parts = ["<h2>Science</h2>"]
    burst = sci.get("burst")
    if burst:
        src, trig = burst.get("source") or {}, burst.get("trigger") or {}
        if burst.get("detected") and src:
            parts.append(
                f"<p><b>Burst</b>: source {e(str(src.get('src_id')))} at RA {src['ra']:.4f}&deg;, Dec {src['dec']:+.4f}&deg;, "
                f"R90 {_fmt(src.get('err_r90_arcsec'), '.1f')}&Prime; (90% confidence), "
                f"<b>{_fmt(src.get('offset_from_trigger_arcsec'), '.1f')}&Prime; from the trigger position</b> "
                f"({e(str(trig.get('origin', '?')))}, radius {_fmt(trig.get('error_radius_arcmin'), '.1f')}&prime;).</p>"
            )  # fmt: skip
        else:
            parts.append("<p><b>Burst</b>: not detected.</p>")
    if sci.get("exposure_s") is not None:
        lost = {k: v for k, v in (sci.get("lost_s_by_origin") or {}).items() if v}
        gaps = ", ".join(f"{e(k.lower())} {v:.0f} s" for k, v in sorted(lost.items())) or "none"
        parts.append(f"<p><b>Exposure</b> (good time) {sci['exposure_s']:.0f} s; time lost to gaps: {gaps}.</p>")
    if sci.get("sources"):
        rows = "".join(
            f"<tr><td>{r.get('SRC_ID')}</td><td>{r['RA']:.4f}</td><td>{r['DEC']:+.4f}</td>"
            f"<td>{_fmt(r.get('ERR_R90'), '.1f')}</td><td>{_fmt(r.get('DET_ML'), '.1f')}</td>"
            f"<td>{_fmt(r.get('RATE'), '.3f')} &plusmn; {_fmt(r.get('RATE_ERR'), '.3f')}</td></tr>"
            for r in sci["sources"]
        )
        parts.append("<table><tr><th>SRC_ID</th><th>RA (&deg;)</th><th>Dec (&deg;)</th><th>R90 (&Prime;, 90%)</th>"
                     f"<th>DET_ML</th><th>rate (ct/s)</th></tr>{rows}</table>")  # fmt: skip
    elif burst is not None or sci.get("exposure_s") is not None:
        parts.append("<p>No source detected.</p>")
    for name in sci.get("previews") or []:
        path = None if folder is None else folder / name
        if path is not None and path.is_file():
            # Inline, so the page stays one self-contained file (mail, web console).
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{e(name)}' style='max-width:100%' src='data:image/png;base64,{data}'>"
                         f"<figcaption><code>{e(name)}</code></figcaption></figure>")  # fmt: skip
    return "\n".join(parts)


def report_html(report: Mapping[str, Any], science: Mapping[str, Any] | None = None,
                folder: str | os.PathLike[str] | None = None) -> str:  # fmt: skip
    """The same account as :func:`report_markdown`, as a self-contained HTML page
    (``science``: :func:`science_summary`; previews read from ``folder``)."""
    e = html.escape
    t = report["target"]
    colour = {"SUCCESS": "#2e7d32", "PARTIAL": "#ef6c00", "NO_DATA": "#546e7a"}.get(report["status"], "#c62828")
    timing = report.get("timing") or {}
    total = max(float(timing.get("total_s", 0.0)), 1e-9)
    rows = []
    for b in report["bricks"]:
        width = 100.0 * b.get("elapsed_s", 0.0) / total
        rows.append(
            f"<tr><td>{e(b['name'])}</td><td>{e(b['status'])}{' (resumed)' if b.get('resumed') else ''}</td>"
            f"<td style='text-align:right'>{_seconds(b)}</td>"
            f"<td><div style='background:#90a4ae;height:0.8em;width:{width:.1f}%'></div></td>"
            f"<td>{e('; '.join(b['warnings'])[:200])}</td></tr>"
        )
    prods = "".join(
        f"<tr><td><code>{e(o['path'])}</code></td><td>{e(b['name'])}</td><td>{o['size']}</td>"
        f"<td><code>{e(_short(o['sha256']))}</code></td></tr>"
        for b in report["bricks"]
        for o in b["outputs"]
    )
    cal = "".join(
        f"<tr><td>{e(c['code'])}</td><td><code>{e(c['file'])}</code></td><td><code>{e(_short(c['sha256']))}</code></td></tr>"
        for c in report["caldb"]
    )
    reason = ""
    if report.get("reason"):
        r = report["reason"]
        where = report.get("stopped_at") or {}
        reason = (
            f"<p><b>Stopped</b> at brick {e(str(where.get('brick', '-')))}, phase {e(str(where.get('phase', '-')))}: "
            f"{e(str(r.get('type')))}: {e(str(r.get('message')))}</p>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(report['pipeline'])} {e(str(t.get('obs_id', '')))}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:0.2em 0.6em}} th{{background:#eceff1}}</style></head><body>
<h1>{e(report['pipeline'])} run of {e(str(t.get('obs_id', '?')))}:
<span style="color:{colour}">{e(report['status'])}</span></h1>
<p>Collection <code>{e(str(report.get('collection') or '-'))}</code>; pipeline {e(report['versions'].get('pipeline', '?'))},
CALDB {e(report['versions'].get('caldb', '?'))}{f"; total {timing['total_s']:.2f} s" if "total_s" in timing else ""}.</p>
{reason}
{_science_html(science, None if folder is None else Path(folder)) if science else ''}
<h2>Bricks</h2><table><tr><th>brick</th><th>status</th><th>time (s)</th><th>share</th><th>warnings</th></tr>
{''.join(rows)}</table>
<h2>Calibration files</h2><table><tr><th>code</th><th>file</th><th>sha256</th></tr>{cal}</table>
<h2>Products</h2><table><tr><th>file</th><th>brick</th><th>bytes</th><th>sha256</th></tr>{prods}</table>
</body></html>
"""


def write_report(folder: str | os.PathLike[str], report: Mapping[str, Any]) -> list[Path]:
    """Write the three forms of the report into ``folder`` (atomically each)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sci = science_summary(folder, report)
    out = [write_json(folder / REPORT_FILES[0], report)]
    out.append(atomic_write_bytes(folder / REPORT_FILES[1], report_markdown(report, sci).encode("utf-8")))
    out.append(atomic_write_bytes(folder / REPORT_FILES[2], report_html(report, sci, folder).encode("utf-8")))
    return out
