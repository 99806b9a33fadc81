"""The Cramer-Rao bound: analytic limit and Monte-Carlo of the maximum-likelihood fit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=25, deadline=None)
@given(y=st.floats(-6, 6), z=st.floats(-6, 6), n1=st.floats(20, 2000), n2=st.floats(0, 500),
       b1=st.floats(1e-3, 1.0), b2=st.floats(1e-3, 1.0))
def test_fisher_information_equals_the_dense_finite_difference_sum(y, z, n1, n2, b1, b2):
    # I_ij = sum_bp d_i m d_j m / m, written out on dense model images: position
    # derivatives by central differences of the PSF's own pixel integrals (not the
    # separable terms the kernel uses), counts and background derivatives exact.
    psf = AnalyticLobsterPSF()
    edges = grid(48)
    g = np.ones((48, 48))
    g[5, :] = 0.0
    counts, bkg = np.array([n1, n2]), np.array([b1, b2])
    info = fisher_information([psf] * 2, edges, edges, y, z, counts, bkg, exposure=g)
    h = 1e-4
    p0 = psf.pixel_fractions(edges, edges, y, z)
    dpy = (psf.pixel_fractions(edges, edges, y + h, z) - psf.pixel_fractions(edges, edges, y - h, z)) / (2 * h)
    dpz = (psf.pixel_fractions(edges, edges, y, z + h) - psf.pixel_fractions(edges, edges, y, z - h)) / (2 * h)
    ref = np.zeros((6, 6))
    for b in range(2):
        m = g * (counts[b] * p0 + bkg[b])
        d = np.zeros((6,) + m.shape)
        d[0], d[1] = g * counts[b] * dpy, g * counts[b] * dpz
        d[2 + b], d[4 + b] = g * p0, g
        ok = m > 0
        ref += np.einsum("ip,jp->ij", d[:, ok], d[:, ok] / m[ok])
    assert np.allclose(info, ref, rtol=1e-5, atol=1e-9 * np.abs(ref).max())


@settings(max_examples=20, deadline=None)
@given(k=st.floats(1.5, 50.0), y=st.floats(-3, 3))
def test_bound_scales_as_one_over_the_counts_without_background(k, y):
    # Without background the Fisher information of the position is proportional to N.
    psf = AnalyticLobsterPSF()
    edges = grid(64)
    a = position_bound([psf], edges, edges, y, 0.5, [100.0], [0.0])
    b = position_bound([psf], edges, edges, y, 0.5, [100.0 * k], [0.0])
    assert np.allclose(b.covariance * k, a.covariance, rtol=1e-8)


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
