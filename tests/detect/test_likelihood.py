"""The Cash statistic of the separable model against dense references and derivatives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from mxt_pipeline.detect.likelihood import (
    BandData,
    CashModel,
    SeparableTerms,
    cash_statistic,
    solve_linear_poisson,
)
from mxt_pipeline.errors import MXTInputError

from .conftest import grid, simulate_problem
from .psf_double import AnalyticLobsterPSF

PSF = AnalyticLobsterPSF()
EDGES = grid(64)


def _model(seed=0, exposure=None):
    rng = np.random.default_rng(seed)
    g = np.ones((64, 64)) if exposure is None else exposure
    bands = [BandData(rng.poisson(0.3, (64, 64)) + rng.poisson(0.05, (64, 64)), g) for _ in range(2)]
    return CashModel(bands, PSF.terms_function(EDGES, EDGES))


def test_terms_image_is_the_dense_pixel_integral():
    # Separable terms integrate the PSF over pixels: compare with a fine numerical
    # integration of the density (midpoint rule on 10 x 10 sub-pixels).
    t = PSF.terms(EDGES, EDGES, [1.3], [-2.7])
    img = t.image(0)
    sub = 10
    fine = np.arange(64 * sub) / sub - 32 + 0.5 / sub
    dy = fine[:, None] - 1.3
    dz = fine[None, :] + 2.7
    dens = 0.0
    for w, (dist_y, dist_z) in zip(PSF.w, PSF.dists):
        dens = dens + w * dist_y.pdf(dy) * dist_z.pdf(dz)
    ref = dens.reshape(64, sub, 64, sub).sum(axis=(1, 3)) / sub**2
    assert np.allclose(img, ref, atol=2e-5)


@settings(max_examples=40, deadline=None)
@given(
    y=st.lists(st.floats(-45, 45), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_cstat_matches_dense_reference(y, seed):
    rng = np.random.default_rng(seed)
    n = len(y)
    z = rng.uniform(-45, 45, n)
    g = np.ones((64, 64))
    g[rng.integers(0, 64, 5), :] = 0.0
    g[:, 10] = 0.5
    model = _model(seed, exposure=g)
    counts = rng.uniform(0, 300, (n, 2))
    bkg = rng.uniform(0.01, 0.5, 2)
    c, _ = model.evaluate(np.array(y), z, 0.0, counts, bkg, gradient=False)
    dense = model.model_images(np.array(y), z, 0.0, counts, bkg)
    ref = sum(cash_statistic(np.where(d.exposure > 0, d.counts, 0), m) for d, m in zip(model.bands, dense))
    assert c == pytest.approx(ref, rel=1e-10, abs=1e-8)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), outside=st.booleans())
def test_gradient_matches_finite_differences(seed, outside):
    rng = np.random.default_rng(seed)
    model = _model(seed)
    y = rng.uniform(-30, 30, 2)
    z = rng.uniform(-30, 30, 2)
    if outside:
        y[0] = 45.0  # spot off the 64-pixel grid: only the arms reach it
    counts = rng.uniform(10, 200, (2, 2))
    bkg = rng.uniform(0.05, 0.3, 2)
    _, grad = model.evaluate(y, z, 0.0, counts, bkg)
    h = 1e-5
    for key, arr in (("y", y), ("z", z)):
        for s in range(2):
            p = arr.copy()
            p[s] += h
            args = (p, z) if key == "y" else (y, p)
            cp, _ = model.evaluate(*args, 0.0, counts, bkg, gradient=False)
            p[s] -= 2 * h
            args = (p, z) if key == "y" else (y, p)
            cm, _ = model.evaluate(*args, 0.0, counts, bkg, gradient=False)
            assert grad[key][s] == pytest.approx((cp - cm) / (2 * h), rel=1e-5, abs=1e-5)
    for s in range(2):
        for b in range(2):
            cc = counts.copy()
            cc[s, b] += 1e-4
            cp, _ = model.evaluate(y, z, 0.0, cc, bkg, gradient=False)
            cc[s, b] -= 2e-4
            cm, _ = model.evaluate(y, z, 0.0, cc, bkg, gradient=False)
            assert grad["counts"][s, b] == pytest.approx((cp - cm) / 2e-4, rel=1e-5, abs=1e-5)


def test_profile_gradient_is_the_total_derivative():
    # Envelope theorem: the profile's gradient equals the derivative of the profiled C.
    model = _model(3)
    y, z = np.array([2.0, -10.0]), np.array([5.0, 12.0])
    _, gy, gz, _ = model.profile(y, z, 0.0)
    h = 1e-4
    for s in range(2):
        yp, ym = y.copy(), y.copy()
        yp[s] += h
        ym[s] -= h
        num = (model.profile(yp, z, 0.0, gradient=False)[0] - model.profile(ym, z, 0.0, gradient=False)[0]) / (2 * h)
        assert gy[s] == pytest.approx(num, rel=1e-4, abs=1e-4)
        zp, zm = z.copy(), z.copy()
        zp[s] += h
        zm[s] -= h
        num = (model.profile(y, zp, 0.0, gradient=False)[0] - model.profile(y, zm, 0.0, gradient=False)[0]) / (2 * h)
        assert gz[s] == pytest.approx(num, rel=1e-4, abs=1e-4)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n_src=st.integers(1, 4))
def test_amplitude_solver_reaches_the_bounded_minimum(seed, n_src):
    # Independent reference: scipy's bounded quasi-Newton on the same convex function.
    rng = np.random.default_rng(seed)
    n_bins = 300
    a = rng.uniform(0, 1, (n_src + 1, n_bins)) ** 3
    a[-1] = 1.0  # flat background column
    truth = np.r_[rng.uniform(0, 5, n_src) * (rng.uniform(size=n_src) > 0.3), 0.2]
    counts = rng.poisson(truth @ a).astype(float)
    keep = counts > 0
    tot = a.sum(axis=1)
    x, cval, hess, ok = solve_linear_poisson(a[:, keep], tot, counts[keep], np.ones(n_src + 1), np.ones(n_src + 1, bool))
    assert ok

    def f(v):
        m = v @ a[:, keep]
        return 2.0 * (v @ tot - counts[keep] @ np.log(np.maximum(m, 1e-300)))

    ref = optimize.minimize(f, np.ones(n_src + 1), method="L-BFGS-B", bounds=[(0, None)] * n_src + [(1e-9, None)],
                            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000})
    assert cval <= ref.fun + 1e-6
    # KKT: zero gradient on free amplitudes, non-negative gradient on those at 0.
    m = x @ a[:, keep]
    grad = 2.0 * (tot - a[:, keep] @ (counts[keep] / m))
    assert np.all(np.abs(grad[x > 1e-9]) < 1e-5 * (1 + np.abs(tot[x > 1e-9])))
    assert np.all(grad[x <= 1e-9] > -1e-6)
    # The Hessian returned is the exact second derivative: symmetric, positive semidefinite.
    assert np.allclose(hess, hess.T)
    assert np.all(np.linalg.eigvalsh(hess) > -1e-9)


def test_fixed_counts_are_not_fitted():
    model = _model(4)
    y, z = np.array([0.0, 20.0]), np.array([0.0, 0.0])
    c_free, _, _, sols = model.profile(y, z, 0.0)
    start = [(np.array([s.counts[0], 0.0]), s.background) for s in sols]
    c_null, _, _, sols0 = model.profile(y, z, 0.0, start, free=np.array([True, False]), gradient=False)
    assert all(s.counts[1] == 0.0 for s in sols0)
    assert c_null >= c_free - 1e-9


def test_frozen_sources_give_the_same_statistic():
    model = _model(5)
    y, z = np.array([1.0, -12.0, 20.0]), np.array([3.0, 8.0, -15.0])
    c_all, _, _, _ = model.profile(y, z, 0.0, gradient=False)
    frozen = model.freeze(y[1:], z[1:], 0.0)
    c_part, _, _, _ = model.profile(y[:1], z[:1], 0.0, frozen=frozen, gradient=False)
    assert c_part == pytest.approx(c_all, rel=1e-12)


def test_counts_without_exposure_are_ignored():
    rng = np.random.default_rng(6)
    g = np.ones((64, 64))
    g[:, :10] = 0.0
    counts = rng.poisson(1.0, (64, 64))
    d1 = BandData(counts, g)
    counts2 = counts.copy()
    counts2[:, :10] += 50  # counts on dead pixels change nothing
    d2 = BandData(counts2, g)
    assert d1.n_counts == d2.n_counts
    m1 = CashModel([d1], PSF.terms_function(EDGES, EDGES))
    m2 = CashModel([d2], PSF.terms_function(EDGES, EDGES))
    assert m1.profile([0.0], [0.0], 0.0)[0] == pytest.approx(m2.profile([0.0], [0.0], 0.0)[0])


def test_empty_band_has_zero_amplitudes():
    model = CashModel([BandData(np.zeros((64, 64), int), np.ones((64, 64)))], PSF.terms_function(EDGES, EDGES))
    c, _, _, sols = model.profile([0.0], [0.0], 0.0)
    assert c == 0.0 and sols[0].counts[0] == 0.0 and sols[0].background == 0.0


@pytest.mark.parametrize(
    "counts, exposure",
    [
        (-np.ones((4, 4)), np.ones((4, 4))),
        (np.ones((4, 4)), -np.ones((4, 4))),
        (np.ones((4, 4)), np.ones((4, 5))),
        (np.full((4, 4), np.nan), np.ones((4, 4))),
    ],
)
def test_bad_band_data_is_refused(counts, exposure):
    with pytest.raises(MXTInputError):
        BandData(counts, exposure)


def test_mismatched_grids_are_refused():
    with pytest.raises(MXTInputError):
        CashModel([BandData(np.zeros((4, 4)), np.ones((4, 4))), BandData(np.zeros((5, 5)), np.ones((5, 5)))], None)


def test_separable_terms_image_sums_to_one_on_a_wide_grid():
    edges = np.linspace(-5000, 5000, 2001)
    t = AnalyticLobsterPSF(arm_gamma=1.0).terms(edges, edges, [0.0], [0.0])
    assert isinstance(t, SeparableTerms)
    assert t.image(0).sum() == pytest.approx(1.0, abs=1e-3)


def test_simulated_counts_follow_the_model(analytic_psf):
    # The fixture's Poisson images have the model's totals (a check of the simulator
    # the other tests rely on): 3 sigma.
    rng = np.random.default_rng(7)
    prob = simulate_problem(analytic_psf, [0.0], [0.0], [[500.0, 200.0]], [0.02, 0.01], rng=rng)
    expected = [d.exposure.sum() * b for d, b in zip(prob.bands, [0.02, 0.01])]
    for d, n, bkg in zip(prob.bands, [500.0, 200.0], expected):
        inside = analytic_psf.terms(grid(256), grid(256), [0.0], [0.0]).image(0).sum()
        mean = n * inside + bkg
        assert abs(d.n_counts - mean) < 3 * np.sqrt(mean)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n_src=st.integers(1, 5), hold=st.booleans())
def test_compiled_and_numpy_solvers_agree(seed, n_src, hold):
    from mxt_pipeline.detect._newton import HAVE_NUMBA

    if not HAVE_NUMBA:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 1, (n_src + 1, 500)) ** 4
    a[-1] = 1.0
    counts = rng.poisson(np.r_[rng.uniform(0, 3, n_src), 0.1] @ a).astype(float)
    keep = counts > 0
    free = np.ones(n_src + 1, bool)
    x0 = rng.uniform(0.1, 2, n_src + 1)
    if hold:
        free[0] = False
        x0[0] = 0.0
    args = (a[:, keep], a.sum(axis=1), counts[keep], x0, free)
    x1, c1, h1, ok1 = solve_linear_poisson(*args, engine="numpy")
    x2, c2, h2, ok2 = solve_linear_poisson(*args, engine="numba")
    assert ok1 and ok2
    assert c1 == pytest.approx(c2, abs=1e-8)
    assert np.allclose(x1, x2, rtol=1e-6, atol=1e-7)
    assert np.allclose(h1, h2, rtol=1e-6, atol=1e-9)
    if hold:
        assert x1[0] == 0.0 and x2[0] == 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.01, 50.0))
def test_cash_statistic_is_the_poisson_likelihood_ratio(seed, scale):
    # C = 2 sum (m - c ln m) differs from -2 ln L of the Poisson law only by the
    # data-only term 2 sum ln c!: written out with scipy's Poisson log-pmf.
    from scipy import special, stats

    rng = np.random.default_rng(seed)
    m = rng.uniform(0.0, 2.0, (16, 16)) * scale + 1e-3
    c = rng.poisson(m)
    expected = -2.0 * stats.poisson.logpmf(c, m).sum() - 2.0 * special.gammaln(c + 1.0).sum()
    assert cash_statistic(c, m) == pytest.approx(expected, rel=1e-10, abs=1e-8)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n_bands=st.integers(1, 3))
def test_background_only_fit_is_the_analytic_maximum(seed, n_bands):
    # Without sources the model is B g; dC/dB = 0 gives B = sum c / sum g (pixels with
    # exposure), and C_min = 2 (sum c - sum c ln(B g)).
    rng = np.random.default_rng(seed)
    g = rng.uniform(0.2, 1.0, (64, 64))
    g[rng.integers(0, 64, 4), :] = 0.0
    bands = [BandData(rng.poisson(rng.uniform(0.05, 3.0) * g), g) for _ in range(n_bands)]
    model = CashModel(bands, PSF.terms_function(EDGES, EDGES))
    c, _, _, sols = model.profile(np.zeros(0), np.zeros(0), np.zeros(0), None, gradient=False)
    expected_c = 0.0
    for d, s in zip(bands, sols):
        live = d.exposure > 0
        b_hat = d.counts[live].sum() / d.exposure[live].sum()
        assert s.background == pytest.approx(b_hat, rel=1e-7)
        cl, gl = d.counts[live], d.exposure[live]
        expected_c += 2.0 * (cl.sum() - np.sum(cl * np.log(b_hat * gl)))
    assert c == pytest.approx(expected_c, rel=1e-9)
