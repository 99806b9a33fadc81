"""The Cramer-Rao bound: analytic limit and Monte-Carlo of the maximum-likelihood fit."""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.detect.crlb import fisher_information, position_bound
from mxt_pipeline.detect.mlfit import fit_sources
from mxt_pipeline.errors import MXTInputError

from .conftest import grid, simulate_problem
from .psf_double import AnalyticLobsterPSF


@pytest.mark.parametrize("sigma", [2.0, 4.0])
def test_gaussian_psf_without_background_gives_sigma2_over_n(sigma):
    # Textbook limit: a binned Gaussian of width sigma in unit pixels has the position
    # variance (sigma^2 + 1/12) / N when sigma >> 1 (Sheppard's correction); the bound
    # with counts free is the same since N and the position are orthogonal here.
    psf = AnalyticLobsterPSF(sigma=sigma, fractions=(1, 0, 0, 0))
    edges = grid(128)
    b = position_bound([psf], edges, edges, 0.3, -0.2, [1000.0], [0.0])
    assert b.covariance[0, 0] == pytest.approx((sigma**2 + 1 / 12) / 1000, rel=2e-3)
    assert b.covariance[1, 1] == pytest.approx((sigma**2 + 1 / 12) / 1000, rel=2e-3)
    assert b.median_offset == pytest.approx(np.sqrt(b.covariance[0, 0] * 2 * np.log(2)), rel=1e-3)


def test_fisher_information_is_symmetric_positive_definite(analytic_psf):
    edges = grid(64)
    info = fisher_information([analytic_psf] * 2, edges, edges, 1.0, -3.0, [200.0, 80.0], [0.05, 0.02])
    assert np.allclose(info, info.T)
    assert np.all(np.linalg.eigvalsh(info) > 0)


def test_bound_grows_with_background_and_shrinks_with_counts(analytic_psf):
    edges = grid(64)
    base = position_bound([analytic_psf], edges, edges, 0.0, 0.0, [100.0], [0.01]).median_offset
    assert position_bound([analytic_psf], edges, edges, 0.0, 0.0, [100.0], [0.5]).median_offset > base
    assert position_bound([analytic_psf], edges, edges, 0.0, 0.0, [400.0], [0.01]).median_offset < base


def test_no_source_counts_is_an_error(analytic_psf):
    edges = grid(32)
    with pytest.raises(MXTInputError):
        position_bound([analytic_psf], edges, edges, 0.0, 0.0, [0.0], [0.1])


@pytest.mark.slow
def test_bound_matches_the_monte_carlo_of_the_fit(analytic_psf):
    # 300 Poisson images of 1000 + 500 counts on a 64 x 64 grid, fitted by the ML stage
    # from the true position.  The ML estimator is efficient at these counts, so the
    # sample covariance of the positions should equal the bound: the mean of the two
    # variance ratios has a standard deviation of about 6% (600 squared offsets), and
    # the test allows 20% (over 3 sigma; false-failure rate below 0.3%).
    rng = np.random.default_rng(11)
    n = 64
    counts = np.array([1000.0, 500.0])
    bkg = np.array([0.05, 0.02])
    est = []
    for _ in range(300):
        y0, z0 = rng.uniform(-0.5, 0.5, 2)
        prob = simulate_problem(analytic_psf, [y0], [z0], [counts], bkg, rng=rng, n=n, margin=8.0)
        fit = fit_sources(prob, [y0], [z0])
        est.append((fit.y[0] - y0, fit.z[0] - z0))
    est = np.array(est)
    edges = grid(n)
    bound = position_bound([analytic_psf] * 2, edges, edges, 0.0, 0.0, counts, bkg)
    ratio = np.var(est, axis=0) / np.diag(bound.covariance)
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.2)
    assert np.median(np.hypot(est[:, 0], est[:, 1])) == pytest.approx(bound.median_offset, rel=0.2)
    # The mean offset is consistent with zero (the MLE is asymptotically unbiased).
    assert np.all(np.abs(est.mean(axis=0)) < 4 * np.sqrt(np.diag(bound.covariance) / len(est)))
