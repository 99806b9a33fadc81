"""The report: self-contained HTML (plots embedded), short markdown, JSON."""

from __future__ import annotations

import json
import re

import matplotlib.pyplot as plt

from harness.regression_report import write_reports
from harness.results import CheckResult, RunSummary, Status


def _summary(missing_fails: bool = False) -> RunSummary:
    s = RunSummary(commit="abc123", date="2026-01-01 00:00:00 UTC", missing_golden_fails=missing_fails)
    s.add(CheckResult("golden", "grb_bright", Status.PASS, "12 files match", {"files": 12}))
    s.add(CheckResult("golden", "grb_faint", Status.MISSING, "not made yet"))
    s.add(CheckResult("replay", "grb_bright/calibrate", Status.FAIL,
                      "brick calibrate: mxt_l2_evt.fits: [EVENTS] column ENERGY: 10 of 20 values differ",
                      {"files_differing": 1}, details="FITS diff <EVENTS> & more"))  # fmt: skip
    s.add(CheckResult("fitsverify", "x", Status.SKIP, "fitsverify is not installed"))
    s.add(CheckResult("coverage", "mxt_pipeline", Status.PASS, "line 91.2%", {"line_pct": 91.2}))
    return s


def test_reports_written_and_self_contained(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    png = tmp_path / "plot.png"
    fig.savefig(png)
    plt.close(fig)
    paths = write_reports(_summary(), tmp_path / "reports", {"coverage": png})
    html = paths["html"].read_text()
    assert "data:image/png;base64," in html
    # Nothing is fetched from elsewhere: no external src/href.
    assert not re.search(r"(src|href)=['\"](?!data:)", html)
    assert "FITS diff &lt;EVENTS&gt; &amp; more" in html  # escaped
    assert ">FAIL<" in html and "grb_bright/calibrate" in html
    md = paths["md"].read_text()
    assert md.startswith("# MXT regression summary") and "**FAIL**" in md
    assert "- FAIL replay/grb_bright/calibrate: brick calibrate" in md
    assert "- MISSING golden/grb_faint" in md
    assert "| replay | 0 | 1 | 0 | 0 | 0 |" in md
    doc = json.loads(paths["json"].read_text())
    assert doc["ok"] is False and doc["counts"]["FAIL"] == 1 and len(doc["checks"]) == 5


def test_missing_golden_fails_only_when_required():
    s = _summary()
    s.checks = [c for c in s.checks if c.status != Status.FAIL]
    assert s.ok
    s.missing_golden_fails = True
    assert not s.ok and [c.name for c in s.failures()] == ["grb_faint"]
