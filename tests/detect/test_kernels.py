"""The compiled pixel kernels of the likelihood against their numpy formulas.

:func:`~mxt_pipeline.detect._newton.gather_terms` and
:func:`~mxt_pipeline.detect._newton.gradient_sums` replace gathers of (S, K, n) arrays
inside every evaluation of the profile likelihood; the numpy expressions below are the
definitions they must reproduce.  The solver's convergence threshold at the rounding
noise of C is checked on a bright image, where an absolute threshold made the line
search halve its step dozens of times.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline.detect._newton import HAVE_NUMBA, gather_terms, gradient_sums
from mxt_pipeline.detect.likelihood import solve_linear_poisson

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")


def _random_terms(rng, n_src, n_terms, ny, nz, n):
    w = rng.uniform(0, 1, (n_src, n_terms))
    fy, fz = rng.uniform(0, 1, (n_src, n_terms, ny)), rng.uniform(0, 1, (n_src, n_terms, nz))
    dfy, dfz = rng.normal(size=(n_src, n_terms, ny)), rng.normal(size=(n_src, n_terms, nz))
    iy = rng.integers(0, ny, n).astype(np.intp)
    iz = rng.integers(0, nz, n).astype(np.intp)
    return w, fy, fz, dfy, dfz, iy, iz


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n_src=st.integers(1, 6), n_terms=st.integers(1, 5), n=st.integers(0, 300))
def test_gather_terms_matches_the_numpy_gather(seed, n_src, n_terms, n):
    rng = np.random.default_rng(seed)
    w, fy, fz, _, _, iy, iz = _random_terms(rng, n_src, n_terms, 17, 23, n)
    g = rng.uniform(0, 1, n)
    expected = np.einsum("sk,skn->sn", w, fy[:, :, iy] * fz[:, :, iz]) * g[None, :]
    got = gather_terms(w, fy, fz, iy, iz, g)
    assert got.shape == (n_src, n)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n_src=st.integers(1, 6), n_terms=st.integers(1, 5), n=st.integers(0, 300))
def test_gradient_sums_match_the_numpy_products(seed, n_src, n_terms, n):
    rng = np.random.default_rng(seed)
    _, fy, fz, dfy, dfz, iy, iz = _random_terms(rng, n_src, n_terms, 19, 11, n)
    rg = rng.uniform(0, 3, n)
    dy, dz = gradient_sums(fy, fz, dfy, dfz, iy, iz, rg)
    np.testing.assert_allclose(dy, np.einsum("skn,skn,n->sk", dfy[:, :, iy], fz[:, :, iz], rg), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dz, np.einsum("skn,skn,n->sk", fy[:, :, iy], dfz[:, :, iz], rg), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_solver_stops_at_the_rounding_noise_of_a_bright_image(engine):
    # 1e6 counts over 4e4 bins: C is of order 1e7, its rounding noise about 1e-8 and
    # an absolute decrement threshold of 1e-10 cannot be verified.  The solver must
    # still converge, to the optimum: one more exact Newton step from the solution
    # (all amplitudes are inside their bounds) lowers C by less than 1e-6 and moves the
    # amplitudes by less than 1e-4 of their statistical errors.
    rng = np.random.default_rng(3)
    n = 40_000
    x_true = np.array([6e5, 3e5, 25.0])
    a = np.vstack([rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n)), np.ones(n)])
    c = rng.poisson(x_true @ a).astype(float)
    keep = c > 0
    args = (a[:, keep], a.sum(axis=1), c[keep], x_true * 0.9, np.ones(3, bool))
    x, cval, hess, ok = solve_linear_poisson(*args, engine=engine)
    assert ok
    aa, tot, cc = args[0], args[1], args[2]
    m = x @ aa
    grad = 2.0 * (tot - aa @ (cc / m))
    step = np.linalg.solve(hess, -grad)
    assert -0.5 * grad @ step < 1e-6
    sigma = np.sqrt(np.diag(2.0 * np.linalg.inv(hess)))
    assert np.all(np.abs(step) < 1e-4 * sigma)
    assert cval == pytest.approx(2.0 * (x @ tot - cc @ np.log(m)), rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), ny=st.integers(1, 40), nz=st.integers(1, 40), ky=st.integers(1, 50),
       kz=st.integers(1, 50))
def test_fftconvolve_same_is_scipy_signal(seed, ny, nz, ky, kz):
    from scipy import signal

    from mxt_pipeline.detect.search import fftconvolve_same

    rng = np.random.default_rng(seed)
    a, k = rng.normal(size=(ny, nz)), rng.normal(size=(ky, kz))
    np.testing.assert_allclose(fftconvolve_same(a, k), signal.fftconvolve(a, k, mode="same"), rtol=0, atol=1e-12)
