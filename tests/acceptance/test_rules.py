"""Stopping rule and verdicts of the acceptance Monte-Carlo (``acceptance.detection``).

No Monte-Carlo here: the runs are synthetic dictionaries or come from a fake executor
whose detections are a fixed function of the run's seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.acceptance.detection import (
    CASES,
    _tasks,
    coverage_verdict,
    next_batch,
    run_all,
    runs_needed,
    summarise,
)
from mxt_pipeline.binomial import clopper_pearson
from mxt_pipeline.detect.bandpsf import DetectionCalibration
from tests.detect.psf_double import EnergyLobsterPSF
from tests.detect.teldef_double import FlatTeldef

# ---------------------------------------------------------------------------- stopping


@pytest.mark.parametrize(
    ("found", "n_min", "k_min", "expected"),
    [
        ([True] * 5, 3, 0, 3),  # no detection requirement: n runs
        ([False] * 2, 3, 0, None),  # too few runs yet
        ([True, False, True, False, False, True], 2, 2, 3),  # 2nd detection at run 3
        ([True, True, True, False], 3, 1, 3),  # n_min dominates
        ([False, True, False, True, True], 1, 3, 5),
        ([False, True, False, True], 1, 3, None),  # not reached
        ([], 1, 1, None),
    ],
)
def test_runs_needed(found, n_min, k_min, expected):
    assert runs_needed(found, n_min, k_min) == expected


def test_next_batch():
    assert next_batch(0, 0, 200, 200, 5000) == 200  # first batch: n runs
    assert next_batch(0, 0, 200, 0, 100) == 100  # capped
    assert next_batch(200, 200, 200, 200, 5000) == 0  # complete
    assert next_batch(5000, 10, 200, 200, 5000) == 0  # cap reached
    # 42 of 200 detected: efficiency (43/202), 158 missing, 10% margin.
    assert next_batch(200, 42, 200, 200, 5000) == int(np.ceil(1.1 * 158 / (43 / 202)))
    assert next_batch(200, 199, 200, 200, 5000) == 16  # at least min_batch
    assert next_batch(990, 100, 200, 200, 1000) == 10  # never beyond the cap


def _fake_executor(calls, reverse=False):
    """Detection iff seed % 5 == 0 (about 20%); returns the results shuffled."""

    def execute(tasks):
        calls.append(len(tasks))
        out = [(case, i, {"found": seed % 5 == 0, "seed": seed}) for case, i, seed, _ in tasks]
        return out[::-1] if reverse else out

    return execute


def test_run_all_stops_at_the_kth_detection_reproducibly():
    seed = 20240622
    calls: list[int] = []
    results, stopping = run_all(20, seed, _fake_executor(calls), min_detected=15, max_runs=5000, n_reference=0)
    assert len(calls) >= 2  # the faint cases needed more rounds
    for s, case in enumerate(CASES):
        runs = results[case]
        # The seeds continue the fixed sequence: SeedSequence(seed).spawn(.)[s].spawn(.)[i].
        child = np.random.SeedSequence(seed).spawn(len(CASES))[s].spawn(len(runs))
        assert [r["seed"] for r in runs] == [int(c.generate_state(1)[0]) for c in child]
        if not case.startswith("onaxis_"):
            assert len(runs) == 20
            continue
        flags = [r["found"] for r in runs]
        assert sum(flags) >= 15 and len(runs) >= 20
        # Minimal: one run fewer would not satisfy the rule (unless n itself binds).
        assert len(runs) == 20 or (flags[-1] and sum(flags) == 15)
        assert stopping[case]["runs_kept"] == len(runs) <= stopping[case]["runs_drawn"]
        assert stopping[case]["reason"] == ("n" if len(runs) == 20 else "min_detected")
    # The fixed-size tasks give the same seeds for the first n runs.
    fixed = {(c, i): sd for c, i, sd, _ in _tasks(20, seed, 0, 0, 5.0)}
    assert all(results[c][i]["seed"] == fixed[(c, i)] for c in CASES for i in range(20))
    # Independent of the order in which the executor returns its results.
    again, _ = run_all(20, seed, _fake_executor([], reverse=True), min_detected=15, n_reference=0)
    assert {c: [r["seed"] for r in v] for c, v in again.items()} == {c: [r["seed"] for r in v] for c, v in results.items()}


def test_run_all_respects_the_cap():
    results, stopping = run_all(10, 1, _fake_executor([]), min_detected=1000, max_runs=40, n_reference=0)
    for case in CASES[:4]:
        assert len(results[case]) == 40
        assert stopping[case] == {"runs_kept": 40, "runs_drawn": 40, "reason": "max_runs"}


def test_reference_flags_only_on_the_first_onaxis_runs():
    seen = []

    def execute(tasks):
        seen.extend(tasks)
        return [(c, i, {"found": True}) for c, i, _, _ in tasks]

    run_all(5, 3, execute, n_reference=2)
    ref = {(c, i) for c, i, _, extra in seen if extra.get("reference")}
    assert ref == {(c, i) for c in CASES[:4] for i in range(2)}


# ---------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("inside", "n", "passes"),
    [(174, 200, True), (173, 200, False), (186, 200, True), (187, 200, False), (180, 200, True),
     (200, 200, False), (37, 42, True), (36, 42, False), (0, 0, False)],
)
def test_coverage_verdict_band(inside, n, passes):
    v = coverage_verdict(inside, n, min_n=1)
    assert v["pass"] is passes
    if n:
        assert v["value"] == inside / n
        # The interval always contains the point estimate, so (b) follows from (a).
        assert v["ci95"][0] <= inside / n <= v["ci95"][1]
        assert v["ci95_overlaps"] or not v["point_within"]


def test_coverage_verdict_needs_enough_runs_and_reports_the_interval():
    v = coverage_verdict(9, 10, min_n=200)
    assert v["point_within"] and v["ci95_overlaps"] and not v["enough_runs"] and not v["pass"]
    lo, hi = clopper_pearson(180, 200)
    v = coverage_verdict(180, 200, min_n=200)
    assert v["pass"] and v["ci95"] == (lo, hi) and v["ci95_contains_target"]
    # Exact Clopper-Pearson: P(X >= 180 | lo) = 2.5%.
    from scipy import stats

    assert stats.binom.sf(179, 200, lo) == pytest.approx(0.025, rel=1e-6)
    assert stats.binom.cdf(180, 200, hi) == pytest.approx(0.025, rel=1e-6)
    # 0.87 exactly passes, and its interval reaches 0.90; 0.93 passes too.
    assert coverage_verdict(174, 200)["pass"] and coverage_verdict(186, 200)["pass"]
    assert not coverage_verdict(160, 200)["ci95_contains_target"]


@pytest.fixture(scope="module")
def small_setup():
    from mxt_pipeline.acceptance.detection import ValidationSetup

    cal = DetectionCalibration(psf=EnergyLobsterPSF(), teldef=FlatTeldef(),
                               effective_area=lambda e: 60.0 * np.exp(-np.asarray(e) / 3.0))
    return ValidationSetup.from_calibration(cal, crop=48, name="analytic-double")


def _runs(n_inside, n_outside, n_missed, offset):
    hit = {"found": True, "offset": offset, "inside90": True, "inside68": True, "r90": 2.0, "n_sources": 1,
           "seconds": 0.1}
    out = {**hit, "inside90": False, "inside68": False}
    miss = {"found": False, "offset": None, "n_sources": 0, "seconds": 0.1}
    return [hit] * n_inside + [out] * n_outside + [miss] * n_missed


def test_summarise_judges_on_detected_runs_and_keeps_all_runs(small_setup):
    first = summarise(small_setup, {"onaxis_100": _runs(1, 0, 0, 1.0)})
    crb = first["cases"]["onaxis_100"]["crb_median_offset_pix"]
    # 18 of 20 detected runs inside (90%), 20 runs undetected: 45% of all runs.
    rep = summarise(small_setup, {"onaxis_100": _runs(18, 2, 20, 1.1 * crb)}, min_detected=20)
    case = rep["cases"]["onaxis_100"]
    assert (case["runs"], case["detected"], case["inside90"]) == (40, 20, 18)
    assert case["detection_efficiency"] == 0.5
    assert case["coverage90_detected"] == 0.9 and case["coverage90_all_runs"] == 0.45
    assert case["coverage90_detected_ci95"] == clopper_pearson(18, 20)
    assert case["coverage90_all_runs_ci95"] == clopper_pearson(18, 40)
    assert case["median_offset_over_crb"] == pytest.approx(1.1)
    assert case["detection_efficiency_unbiased"] == pytest.approx(19 / 39)
    assert rep["criteria"]["onaxis_100: R90 coverage (detected runs)"]["pass"]
    assert rep["criteria"]["onaxis_100: median offset / CRB (detected runs)"]["pass"]
    info = rep["criteria_all_runs"]["onaxis_100: R90 coverage (all runs)"]
    assert info["value"] == 0.45 and not info["pass"]
    # Too few detected runs for the requested sample: no pass, whatever the figures.
    short = summarise(small_setup, {"onaxis_100": _runs(18, 2, 20, 1.1 * crb)}, min_detected=200)
    assert not short["criteria"]["onaxis_100: R90 coverage (detected runs)"]["pass"]
    assert not short["criteria"]["onaxis_100: median offset / CRB (detected runs)"]["pass"]
    # Offsets 1.3 x the bound fail the offset criterion.
    far = summarise(small_setup, {"onaxis_100": _runs(18, 2, 0, 1.3 * crb)})
    assert not far["criteria"]["onaxis_100: median offset / CRB (detected runs)"]["pass"]


# ---------------------------------------------------------------------------- dC levels


def test_level_cases_have_their_own_streams_and_stopping_rule():
    from mxt_pipeline.acceptance.detection import LEVEL_CASES, LEVEL_STREAM, _stream

    streams = [_stream(c) for c in CASES + LEVEL_CASES + ("calibration",)]
    assert len(set(streams)) == len(streams)
    assert _stream(LEVEL_CASES[0]) == LEVEL_STREAM
    with pytest.raises(ValueError):
        _stream("onaxis_7")
    results, stopping = run_all(10, 5, _fake_executor([]), min_detected=6, n_reference=0, cases=LEVEL_CASES)
    assert set(results) == set(LEVEL_CASES)
    for case in LEVEL_CASES:
        assert sum(r["found"] for r in results[case]) >= 6
        assert stopping[case]["reason"] in ("n", "min_detected")


def test_calibrate_levels_from_runs(small_setup):
    from mxt_pipeline.acceptance.detection import calibrate_levels, level_report

    rng = np.random.default_rng(4)

    def runs(n, inflate):
        ml = 10.5 + rng.exponential(3.0, n)
        dc = rng.chisquare(2, n) * (1 + inflate * np.exp(-(ml - 10.5) / 2.0))
        return [{"found": True, "det_ml": float(a), "dc_true": float(b)} for a, b in zip(ml, dc)] + [{"found": False}]

    results = {"levels_50": runs(3000, 0.8), "levels_100": runs(3000, 0.8)}
    levels, fits = calibrate_levels(results, 10.5)
    assert fits["90"].worst_deviation < 0.02 and fits["68"].worst_deviation < 0.02
    assert fits["90"].coverage_wilks["levels_50"] < 0.87
    assert levels.at(10.5)[1] > 4.61 * 1.4
    report, calibration = level_report(small_setup, results, {}, seed=9)
    assert calibration.levels() == levels
    assert calibration.cases == "50,100" and calibration.seed == 9 and calibration.ml_0 == 10.5
    assert calibration.keywords()["AMP90"] == fits["90"].amplitude
    assert report["detection_efficiency"]["levels_50"] == pytest.approx(3000 / 3001)
    assert report["fits"]["90"]["runs"] == {"levels_50": 3000, "levels_100": 3000}


# ---------------------------------------------------------------------------- sky study


def test_sky_positions_are_at_their_angle_and_on_the_chip():
    from mxt_pipeline.acceptance.detection import (
        EDGE_MARGIN,
        SKY_CASES,
        ValidationSetup,
        sky_position,
    )

    cal = DetectionCalibration(psf=EnergyLobsterPSF(), teldef=FlatTeldef(),
                               effective_area=lambda e: 60.0 * np.exp(-np.asarray(e) / 3.0))
    setup = ValidationSetup.from_calibration(cal, name="analytic-double")
    rng = np.random.default_rng(4)
    for case in SKY_CASES:
        for _ in range(20):
            y, z = sky_position(setup, case, rng)
            assert setup.y_edges[0] + EDGE_MARGIN - 1e-9 <= y <= setup.y_edges[-1] - EDGE_MARGIN + 1e-9
            assert setup.z_edges[0] + EDGE_MARGIN - 1e-9 <= z <= setup.z_edges[-1] - EDGE_MARGIN + 1e-9
            theta = float(setup.theta_of(np.r_[y], np.r_[z])[0])
            if case == "offaxis_edge":
                edge = min(y - setup.y_edges[0], setup.y_edges[-1] - y, z - setup.z_edges[0], setup.z_edges[-1] - z)
                assert edge == pytest.approx(EDGE_MARGIN)
            else:
                assert theta == pytest.approx(float(case.split("_")[1]), abs=1e-3)
    with pytest.raises(ValueError):
        sky_position(setup, "offaxis_80", rng)


def test_summarise_sky_judges_the_radial_offset_and_the_coverage():
    from mxt_pipeline.acceptance.detection import summarise_sky
    from mxt_pipeline.constants import PIXEL_SCALE_ARCSEC

    def runs(radial, inside):
        return [{"found": True, "radial": r, "offset": abs(r), "inside90": i, "inside68": i, "theta": 20.0,
                 "seconds": 1.0} for r, i in zip(radial, inside)] + [
            {"found": False, "theta": 20.0, "seconds": 1.0}]

    rng = np.random.default_rng(2)
    centred = rng.normal(0.0, 1.0, 100)
    centred -= centred.mean()
    inside = [True] * 90 + [False] * 10
    rep = summarise_sky({"offaxis_20": runs(centred, inside), "offaxis_10": runs(centred - 1.0, inside[::-1])})
    ok = rep["cases"]["offaxis_20"]
    assert (ok["runs"], ok["detected"], ok["inside90"]) == (101, 100, 90)
    assert ok["mean_radial_offset_arcsec"] == pytest.approx(0.0, abs=1e-9)
    assert ok["sem_radial_offset_arcsec"] == pytest.approx(centred.std(ddof=1) / 10.0 * PIXEL_SCALE_ARCSEC)
    assert rep["criteria"]["offaxis_20: mean radial offset within 2 SEM of 0"]["pass"]
    assert rep["criteria"]["offaxis_20: R90 coverage (detected runs)"]["pass"]
    # A 1-pixel pull toward the axis is 10 SEM: fails.
    assert not rep["criteria"]["offaxis_10: mean radial offset within 2 SEM of 0"]["pass"]
    assert rep["cases"]["offaxis_10"]["mean_radial_offset_arcsec"] == pytest.approx(-PIXEL_SCALE_ARCSEC)


def test_summarise_sky_gives_the_dc_coverage_at_the_levels():
    from mxt_pipeline.acceptance.detection import sky_markdown, summarise_sky
    from mxt_pipeline.detect.levels import ErrorLevels

    levels = ErrorLevels((10.0, 20.0), (3.0, 2.3), (6.0, 4.6))
    # DET_ML 10 -> L90 = 6: dC 3 and 5.9 inside, 6.1 outside; DET_ML 20 -> 4.6: 4.7 outside.
    runs = [{"found": True, "radial": 0.0, "offset": 1.0, "inside90": True, "inside68": True, "theta": 0.0,
             "seconds": 1.0, "det_ml": ml, "dc_true": dc, "counts_fit": 60.0, "b_eff": 200.0}
            for ml, dc in ((10.0, 3.0), (10.0, 5.9), (10.0, 6.1), (20.0, 4.7))]
    rep = summarise_sky({"faint50_bkg5": runs}, levels)
    case = rep["cases"]["faint50_bkg5"]
    assert case["dc_runs"] == 4 and case["coverage90_dc_level"] == 0.5
    assert case["level90_factor_needed"] == pytest.approx(np.quantile([0.5, 5.9 / 6, 6.1 / 6, 4.7 / 4.6], 0.9))
    rep["settings"] = {"command": "python -m mxt_pipeline.acceptance.detection --sky 4"}
    assert "| faint50_bkg5 | 4 | 0.500" in sky_markdown(rep)
