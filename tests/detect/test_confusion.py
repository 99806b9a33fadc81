"""The pair test: a clear unequal pair is split, a single bright source is not."""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.detect.bands import DEFAULT_BANDS
from mxt_pipeline.detect.confusion import PairTestParameters, split_gain, split_pairs
from mxt_pipeline.detect.mlfit import MLParameters, run_ml
from mxt_pipeline.detect.pipeline import DetectionParameters, detect_in_problem, source_table
from mxt_pipeline.detect.srclist import FLAG_PAIR
from mxt_pipeline.detect.stage1 import run_stage1

from .conftest import simulate_problem
from .psf_double import AnalyticLobsterPSF

BKG = [0.01, 0.01]


@pytest.fixture(scope="module")
def psf():
    # Spot FWHM 23.5 px: a pair one FWHM apart overlaps as on the CALDB PSF.
    return AnalyticLobsterPSF(sigma=10.0, arm_gamma=15.0)


def _ml(prob):
    s1 = run_stage1(prob)
    return run_ml(prob, s1.y, s1.z, s1.counts, s1.background, MLParameters())


@pytest.mark.parametrize("seed", [5, 7, 8])
def test_unequal_pair_one_fwhm_apart_is_split(psf, seed):
    """500 + 100 counts one spot FWHM apart: the ML stage lists one source, pulled
    towards the faint one; the pair test adds the companion near the faint source, moves
    the bright one back onto its true position, and the list flags the companion PAIR."""
    rng = np.random.default_rng(seed)
    w = 2.3548 * psf.sigma
    y, z = np.array([0.0, w * np.cos(0.6)]), np.array([0.0, w * np.sin(0.6)])
    prob = simulate_problem(psf, y, z, [[350.0, 150.0], [70.0, 30.0]], BKG, rng=rng, n=128)
    state = _ml(prob)
    assert state.n_sources == 1  # the case the pair test is for
    split, companion, _ = split_pairs(prob, state, MLParameters(), PairTestParameters())
    assert split.n_sources == 2 and list(companion) == [False, True]
    assert np.hypot(split.y[1] - y[1], split.z[1] - z[1]) < 0.5 * w
    assert np.hypot(split.y[0] - y[0], split.z[0] - z[0]) < 0.15 * w
    # The bright member keeps a DET_ML far above the threshold (its companion held in its null).
    assert split.det_ml[0] > 50
    result = detect_in_problem(prob, DetectionParameters())
    table = source_table(result, DEFAULT_BANDS, livetime=1.0, to_radec=lambda a, b: (a * 0, b * 0), ra_nom=0.0,
                         dec_nom=0.0)  # fmt: skip
    flags = np.asarray(table["FLAGS"])
    assert len(table) == 2 and list(flags & FLAG_PAIR != 0).count(True) == 1
    # A companion is in the field: its QF is that of its radius, not 0 for the flag.
    assert np.all(np.asarray(table["QF"]) > 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_single_bright_source_is_not_split(psf, seed):
    """1500 counts alone: the best two-component fit gains less than the threshold."""
    rng = np.random.default_rng(seed)
    prob = simulate_problem(psf, [0.3], [-0.2], [[1000.0, 500.0]], BKG, rng=rng, n=128)
    state = _ml(prob)
    assert state.n_sources == 1
    trial = split_gain(prob, state, 0, MLParameters(), PairTestParameters())
    assert trial.robust_gain < PairTestParameters().threshold
    split, companion, _ = split_pairs(prob, state, MLParameters(), PairTestParameters())
    assert split.n_sources == 1 and not companion.any()


def test_pair_test_disabled_or_faint_sources_are_not_tested(psf):
    rng = np.random.default_rng(5)
    prob = simulate_problem(psf, [0.0, 20.0], [0.0, 12.0], [[350.0, 150.0], [70.0, 30.0]], BKG, rng=rng, n=128)
    state = _ml(prob)
    out, companion, _ = split_pairs(prob, state, MLParameters(), PairTestParameters(enabled=False))
    assert out is state and not companion.any()
    out, companion, _ = split_pairs(prob, state, MLParameters(), PairTestParameters(min_counts=1e6))
    assert out is state and not companion.any()
