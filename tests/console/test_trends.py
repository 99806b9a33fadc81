"""The harness page's trends: history files to SVG charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from mxt_pipeline.console.trends import Series, coverage_series, line_chart_svg, timing_series

SVG = "{http://www.w3.org/2000/svg}"


def test_coverage_series_per_run_and_package(tmp_path):
    p = tmp_path / "cov.csv"
    p.write_text("commit,date,package,line_pct\n"
                 "a,2026-01-01T00:00:00Z,mxt_pipeline,90.5\na,2026-01-01T00:00:00Z,harness,80\n"
                 "a,2026-01-01T00:00:00Z,mxt_pipeline.io,99\nb,2026-01-02T00:00:00Z,mxt_pipeline,91.25\n")  # fmt: skip
    labels, series = coverage_series(p)
    assert labels == ["2026-01-01", "2026-01-02"]
    assert series == [Series("mxt_pipeline lines %", (90.5, 91.25)), Series("harness lines %", (80.0, None))]


def test_timing_series_by_brick(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("commit,date,brick,normalised\nx,2026-01-01,g/detect,100\nx,2026-01-01,g/burst,4\ny,2026-01-02,g/detect,nan\n")
    labels, series = timing_series(p)
    assert labels == ["2026-01-01", "2026-01-02"]
    assert series == [Series("g/burst", (4.0, None)), Series("g/detect", (100.0, None))]


def test_chart_is_valid_svg_with_one_point_per_value():
    svg = line_chart_svg(["d1", "d2", "d3"], [Series("a", (1.0, 2.0, None)), Series("b<&>", (3.0, 1.0, 2.0))],
                         title="T & t", ylabel="y", log_y=True)  # fmt: skip
    tree = ET.fromstring(svg)  # well-formed: names and titles are escaped
    assert len(tree.findall(f".//{SVG}circle")) == 5
    assert len(tree.findall(f".//{SVG}polyline")) == 2
    assert "b&lt;&amp;&gt;" in svg


def test_chart_without_history_says_so(tmp_path):
    labels, series = coverage_series(tmp_path / "missing.csv")
    assert (labels, series) == ([], [])
    assert "no history yet" in line_chart_svg(labels, series, title="t", ylabel="y")
