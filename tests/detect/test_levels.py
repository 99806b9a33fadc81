"""Calibrated dC levels of the position errors (mxt_pipeline.detect.levels)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mxt_pipeline.detect.levels import (
    WILKS,
    ErrorLevels,
    coverage,
    fit_levels,
    level_form,
    levels_from_fits,
)
from mxt_pipeline.detect.radii import DC_68, DC_90, P_68, P_90, circular_radius, contour_rays
from mxt_pipeline.errors import MXTCalibrationError


def test_wilks_levels_are_the_chi2_quantiles_everywhere():
    assert WILKS.is_wilks
    for ml in (-5.0, 0.0, 10.5, 1e6, np.nan):
        l68, l90 = WILKS.at(ml)
        assert l68 == pytest.approx(stats.chi2.ppf(P_68, 2), rel=1e-12)
        assert l90 == pytest.approx(stats.chi2.ppf(P_90, 2), rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "column"),
    [
        ({"det_ml": (1.0, 1.0), "dc68": (2.3, 2.3), "dc90": (4.6, 4.6)}, "DET_ML"),
        ({"det_ml": (1.0, 2.0), "dc68": (2.3, -1.0), "dc90": (4.6, 4.6)}, "DC68"),
        ({"det_ml": (1.0, 2.0), "dc68": (2.3, np.inf), "dc90": (4.6, 4.6)}, "DC68"),
        ({"det_ml": (1.0, 2.0), "dc68": (2.3, 2.3), "dc90": (4.6, 2.0)}, "DC90"),
    ],
)
def test_bad_tables_are_refused_naming_the_column(kwargs, column):
    with pytest.raises(MXTCalibrationError) as exc:
        ErrorLevels(**kwargs)
    assert exc.value.hdu == "DCLEVELS"
    assert exc.value.column == column


def test_tables_of_different_lengths_are_refused():
    with pytest.raises(MXTCalibrationError, match="same length"):
        ErrorLevels((1.0, 2.0), (2.3,), (4.6, 4.6))


@settings(max_examples=60, deadline=None)
@given(
    amp=st.floats(0.0, 2.0),
    scale=st.floats(0.3, 30.0),
    ml=st.floats(-5.0, 500.0),
)
def test_tabulated_form_matches_the_form(amp, scale, ml):
    levels = ErrorLevels.from_form(10.5, 0.5 * amp, scale, amp, scale)
    l68, l90 = levels.at(ml)
    # Linear interpolation of an exponential on nodes 12 S (i / 96)^2 apart: under
    # 0.5% of the inflation W A, and exact at and below the first node.
    assert l90 == pytest.approx(float(level_form(ml, DC_90, amp, scale, 10.5)), abs=5e-3 * DC_90 * max(amp, 1e-9))
    assert l68 == pytest.approx(float(level_form(ml, DC_68, 0.5 * amp, scale, 10.5)), abs=5e-3 * DC_68 * max(amp, 1e-9))
    # The limits: W (1 + A) at the threshold, Wilks far above it.
    assert levels.at(10.5)[1] == pytest.approx(DC_90 * (1 + amp), rel=1e-12)
    assert levels.at(10.5 + 13 * scale)[1] == pytest.approx(DC_90, abs=DC_90 * amp * np.exp(-12.0) + 1e-12)


def test_level_form_is_monotone_and_bounded():
    ml = np.linspace(0.0, 100.0, 1001)
    lev = level_form(ml, DC_90, 0.7, 3.0, 10.5)
    assert np.all(np.diff(lev) <= 0)
    assert lev[0] == pytest.approx(DC_90 * 1.7)
    assert lev[-1] >= DC_90


def _samples(rng, amp, scale, ml_0, n, ml_scales):
    """Cases whose dC at the truth is chi2(2) scaled by the form: its level covers p exactly."""
    out = {}
    for k, s in enumerate(ml_scales):
        ml = ml_0 + rng.exponential(s, n)
        dc = rng.chisquare(2, n) * (1.0 + amp * np.exp(-(ml - ml_0) / scale))
        out[f"case{k}"] = (ml, dc)
    return out


def test_fit_recovers_a_known_inflation():
    rng = np.random.default_rng(11)
    samples = _samples(rng, 0.6, 3.0, 10.5, 20000, (2.0, 6.0, 30.0))
    fit = fit_levels(samples, P_90, 10.5)
    # Three coverages constrain (A, S) along a valley: the level curve is what is
    # recovered, within 5% wherever the cases have runs.
    assert fit.amplitude == pytest.approx(0.6, abs=0.15)
    ml = np.array([10.5, 12.0, 14.0, 17.0, 22.0, 30.0, 60.0])
    fitted = level_form(ml, DC_90, fit.amplitude, fit.scale, 10.5)
    assert np.allclose(fitted, level_form(ml, DC_90, 0.6, 3.0, 10.5), rtol=0.05)
    assert fit.worst_deviation < 0.01
    # Wilks' level under-covers the near-threshold case; the fit restores all of them.
    assert fit.coverage_wilks["case0"] < 0.85
    assert all(abs(c - P_90) < 0.01 for c in fit.coverage.values())


def test_fit_keeps_wilks_when_wilks_holds():
    rng = np.random.default_rng(12)
    samples = {f"c{k}": (10.5 + rng.exponential(5.0, 20000), rng.chisquare(2, 20000)) for k in range(3)}
    fit = fit_levels(samples, P_90, 10.5)
    assert fit.amplitude < 0.05
    fit68 = fit_levels(samples, P_68, 10.5)
    assert fit68.amplitude < 0.05
    levels = levels_from_fits(fit68, fit)
    assert levels.at(10.5)[1] < DC_90 * 1.05


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(5, 60), p=st.sampled_from([P_68, P_90]))
def test_fit_is_the_exact_optimum_of_its_grid(seed, n, p):
    # Brute force on a small grid: the vectorised search finds the same optimum, and its
    # reported coverages and worst deviation are those of the fitted level.
    rng = np.random.default_rng(seed)
    samples = {f"c{k}": (10.0 + rng.exponential(4.0, n), rng.chisquare(2, n) * rng.uniform(0.8, 1.6)) for k in range(3)}
    amps = np.linspace(0.0, 1.0, 11)
    scales = np.array([1.0, 2.0, 8.0])
    fit = fit_levels(samples, p, 10.0, amplitudes=amps, scales=scales)
    w = stats.chi2.ppf(p, 2)

    def chi2(a, s):
        return sum(dc.size * (coverage(dc, level_form(ml, w, a, s, 10.0)) - p) ** 2 / (p * (1 - p))
                   for ml, dc in samples.values())

    table = np.array([[chi2(a, s) for s in scales] for a in amps])
    assert fit.chi2 == pytest.approx(table.min(), rel=1e-9, abs=1e-12)
    # Ties go to the least inflation.
    tied = np.isclose(table, table.min(), rtol=1e-9, atol=1e-12)
    assert fit.amplitude == pytest.approx(amps[np.flatnonzero(tied.any(axis=1))[0]])
    for name, (ml, dc) in samples.items():
        assert fit.coverage[name] == coverage(dc, level_form(ml, w, fit.amplitude, fit.scale, 10.0))
    assert fit.worst_deviation == pytest.approx(max(abs(c - p) for c in fit.coverage.values()), abs=1e-12)


def test_fit_refuses_empty_or_ragged_samples():
    with pytest.raises(ValueError):
        fit_levels({}, P_90, 10.5)
    with pytest.raises(ValueError):
        fit_levels({"a": (np.ones(3), np.ones(2))}, P_90, 10.5)


def test_levels_from_fits_needs_both_probabilities():
    rng = np.random.default_rng(1)
    s = {"a": (10.5 + rng.exponential(3.0, 200), rng.chisquare(2, 200))}
    f90 = fit_levels(s, P_90, 10.5)
    with pytest.raises(ValueError):
        levels_from_fits(f90, f90)


@pytest.mark.parametrize("factor", [1.0, 1.5, 2.5])
def test_contour_traced_at_a_raised_level_gives_a_proportionally_larger_radius(factor):
    # Quadratic profile: the contour at L is the Wilks contour scaled by sqrt(L / W), and
    # the circular radius (read at the nominal level) scales the same way.
    s_inv = np.linalg.inv(np.array([[4.0, 1.0], [1.0, 2.0]]))

    def dc(dy, dz):
        v = np.array([dy, dz])
        return float(v @ s_inv @ v)

    res = contour_rays(dc, 1.0, n_rays=12, levels=(factor * DC_68, factor * DC_90))
    assert res.radius90 == pytest.approx(np.sqrt(factor) * circular_radius(P_90, s_inv), rel=3e-3)
    assert res.radius68 == pytest.approx(np.sqrt(factor) * circular_radius(P_68, s_inv), rel=3e-3)
