"""Ensemble statistics and the HTML report of a campaign."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from scipy import stats

from mxt_pipeline.binomial import clopper_pearson
from mxt_pipeline.campaign.ensemble_report import (
    INTERVAL_LEVEL,
    ensemble_summary,
    localization_by_bin,
    write_html_report,
)


def _tables():
    # 10 in-field sources at 100 counts: offsets 10..100", R90 55" (5 inside);
    # 4 in-field at 500 counts, 3 found; 2 out-of-field (ignored).
    off = np.r_[np.arange(10.0, 101.0, 10.0), [5.0, 6.0, 7.0, np.nan], [1.0, 1.0]]
    src = Table({
        "IN_FOV": np.r_[np.ones(14, bool), np.zeros(2, bool)],
        "FOUND": np.r_[np.ones(13, bool), [False], [True, True]],
        "TRUE_CTS": np.r_[np.full(10, 100.0), np.full(4, 500.0), [100.0, 100.0]],
        "OFFAXIS": np.r_[np.full(10, 5.0), np.full(4, 15.0), [45.0, 45.0]],
        "OFFSET": off,
        "ERR_R90": np.full(16, 55.0),
        "CTS_RATIO": np.r_[np.full(13, 0.9), [np.nan], [1.0, 1.0]],
    })  # fmt: skip
    runs = Table({"STATUS": np.array(["OK", "OK", "FAILED"]), "N_FALSE": np.array([1, 0, 5])})
    return src, runs


def test_localization_by_bin():
    src, _ = _tables()
    b100, b500 = localization_by_bin(src, "TRUE_CTS", [0, 300, 1000])
    assert (b100.n_true, b100.n_found) == (10, 10)
    assert b100.median_offset == pytest.approx(55.0) and b100.p90_offset == pytest.approx(91.0)
    assert b100.r90_coverage == pytest.approx(0.5) and b100.coverage_lo < 0.5 < b100.coverage_hi
    assert (b500.n_true, b500.n_found) == (4, 3) and b500.efficiency == pytest.approx(0.75)
    assert b500.median_value == 500.0
    (off,) = localization_by_bin(src, "OFFAXIS", [10, 20])
    assert off.n_true == 4 and off.median_value == 15.0


def test_coverage_interval_is_the_one_clopper_pearson_at_one_sigma():
    src, _ = _tables()
    b100 = localization_by_bin(src, "TRUE_CTS", [0, 200, 1000])[0]
    # 5 of the 10 found sources inside R90, exact interval at 68.3 %.
    assert (b100.coverage_lo, b100.coverage_hi) == clopper_pearson(5, 10, INTERVAL_LEVEL)
    assert b100.coverage_lo == pytest.approx(stats.beta.ppf((1 - 0.683) / 2, 5, 6))


def test_ensemble_summary():
    src, runs = _tables()
    s = ensemble_summary(src, runs, [1.0, 2.0, 9.0])
    assert s["n_runs"] == 3 and s["n_runs_ok"] == 2
    assert s["n_sources_in_fov"] == 14 and s["n_found"] == 13
    assert s["detection_efficiency"] == pytest.approx(13 / 14)
    assert s["r90_coverage"] == pytest.approx(8 / 13)
    assert s["within_requirement"] == 1.0
    assert s["false_per_field"] == pytest.approx(0.5)  # failed runs do not count
    assert s["median_counts_ratio"] == pytest.approx(0.9)
    assert s["median_time_per_run_s"] == 2.0


def test_html_report_is_self_contained_and_draws_the_bound(tmp_path):
    src, runs = _tables()
    calls = []

    def crlb(n):
        calls.append(np.asarray(n))
        return 60.0 / np.sqrt(np.asarray(n))

    path = write_html_report(tmp_path / "r.html", src, runs, {"CASE": "gp", "NRUNS": 3, "CSEED": 1}, [1.0], crlb)
    text = path.read_text()
    assert text.count("data:image/png;base64,") == 3 and "http" not in text.replace("http-equiv", "")
    assert "MXT Monte-Carlo campaign: gp" in text and "False detections per field: 0.5" in text
    assert calls and calls[0].min() >= 100.0
    # The bound is also given in figures: 60/sqrt(100) * sqrt(2 ln 2) = 7.1".
    assert '100 counts: 7.1"' in text
