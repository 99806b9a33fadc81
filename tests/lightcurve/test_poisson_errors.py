"""Poisson intervals: exact limits equal astropy's, Gehrels within its stated accuracy,
exact coverage of the Neyman construction, KBN equal to astropy and to its definition."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.stats import poisson_conf_interval
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, special, stats

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.lightcurve.poisson_errors import (
    ONE_SIGMA,
    frequentist_interval,
    gehrels_errors,
    gehrels_lower,
    gehrels_upper,
    kraft_burrows_nousek,
    poisson_interval,
)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_frequentist_equals_astropy(sigma):
    n = np.arange(0, 500)
    lo, hi = frequentist_interval(n, sigma)
    ref = poisson_conf_interval(n, interval="frequentist-confidence", sigma=sigma)
    np.testing.assert_allclose(lo, ref[0], rtol=1e-13, atol=0)
    np.testing.assert_allclose(hi, ref[1], rtol=1e-13, atol=0)


def test_gehrels_accuracy_against_exact_limits():
    """Gehrels (1986): eq. 9 upper within 1.5 % and eq. 14 lower within 1 % of the exact
    one-sigma limits (his Table 1 comparison), for every N up to 1000."""
    n = np.arange(0, 1001)
    lo, hi = frequentist_interval(n, 1.0)
    assert np.max(np.abs(gehrels_upper(n) - hi) / hi) < 0.015
    assert np.max(np.abs(gehrels_lower(n[1:]) - lo[1:]) / lo[1:]) < 0.01
    assert gehrels_lower(0) == 0.0
    e_lo, e_hi = gehrels_errors(n)
    np.testing.assert_allclose(e_hi, 1.0 + np.sqrt(n + 0.75))
    assert np.all(e_lo >= 0) and np.all(e_lo < e_hi)


def test_frequentist_coverage_is_at_least_nominal():
    """The Neyman construction covers every mean with probability >= 68.27 % (exactly,
    summing the Poisson probabilities of the counts whose interval holds the mean)."""
    n = np.arange(0, 400)
    lo, hi = frequentist_interval(n, 1.0)
    for mu in np.linspace(0.05, 150.0, 400):
        covered = (lo <= mu) & (mu <= hi)
        assert stats.poisson.pmf(n[covered], mu).sum() >= ONE_SIGMA - 1e-9


def test_poisson_interval_dispatch_and_errors():
    assert np.allclose(poisson_interval(7, "gehrels"), (gehrels_lower(7), gehrels_upper(7)))
    assert np.allclose(poisson_interval(7), frequentist_interval(7))
    with pytest.raises(MXTInputError):
        poisson_interval(3, "gehrels", sigma=2.0)
    with pytest.raises(MXTInputError):
        poisson_interval(3, "nonsense")
    with pytest.raises(MXTInputError):
        frequentist_interval([-1])
    with pytest.raises(MXTInputError):
        frequentist_interval([1.5])
    with pytest.raises(MXTInputError):
        kraft_burrows_nousek(3, -1.0)
    with pytest.raises(MXTInputError):
        kraft_burrows_nousek(3, 1.0, confidence_level=1.0)


@pytest.mark.parametrize(
    ("n", "b", "cl"),
    [(1, 0.5, 0.6827), (3, 1.0, 0.9), (5, 2.5, 0.6827), (8, 4.0, 0.99), (10, 0.1, 0.9),
     (20, 15.0, 0.6827), (50, 40.0, 0.9), (4, 7.5, 0.9), (100, 10.0, 0.6827), (2, 0.2, 0.99)],
)  # fmt: skip
def test_kbn_equals_astropy(n, b, cl):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quad accuracy warnings inside astropy
        ref = poisson_conf_interval(n, interval="kraft-burrows-nousek", background=b, confidence_level=cl)
    lo, hi = kraft_burrows_nousek(n, b, cl)
    np.testing.assert_allclose([lo, hi], np.ravel(ref), rtol=1e-7, atol=1e-8)


def _posterior(s, n, b):
    x = s + b
    return np.exp(n * np.log(x) - x - special.gammaln(n + 1)) / special.gammaincc(n + 1, b)


@given(n=st.integers(0, 60), b=st.floats(0.0, 40.0), cl=st.sampled_from([ONE_SIGMA, 0.9, 0.99]))
def test_kbn_is_the_shortest_interval_with_the_wanted_probability(n, b, cl):
    """KBN (1991) eqs. 7-9: posterior probability CL inside, equal density at both ends
    (or the interval starts at 0 where the density is highest)."""
    lo, hi = kraft_burrows_nousek(n, b, cl)
    lo, hi = float(lo), float(hi)
    assert 0.0 <= lo < hi
    if n == 0 and b == 0.0:
        assert hi == pytest.approx(-np.log(1 - cl), rel=1e-9)  # posterior exp(-s)
        return
    mass, _ = integrate.quad(_posterior, lo, hi, args=(n, b), epsabs=1e-12, epsrel=1e-10, limit=200)
    assert mass == pytest.approx(cl, abs=1e-7)
    if lo > 0.0:
        assert _posterior(lo, n, b) == pytest.approx(_posterior(hi, n, b), rel=1e-6)
    else:
        assert _posterior(0.0, n, b) >= _posterior(hi, n, b) * (1 - 1e-6)
