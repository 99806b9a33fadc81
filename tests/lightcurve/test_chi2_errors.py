"""ERR_CHI2, the symmetric error for chi-square fits, against the exact Poisson limits
(issue 21, item 8).

Monte-Carlo against an injected model at 8-20 counts per bin (where the issue measured
a reduced chi-square of 0.74-0.88 and 74-77 % coverage with ``ERROR``).  The seed is
fixed; the tolerances are quoted with the binomial spread of the coverage.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mxt_pipeline.datamodel import GTI
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.lightcurve.rates import chi2_sigma, light_curve

N_BINS = 6000
WIDTH = 100.0


@pytest.fixture(scope="module")
def injected():
    """6000 bins of 100 s, each with its own source mean uniform in 8-20 counts (the
    model), plus a background of 10 counts per bin in a region 10x the source area
    (1 count in the source region); the light curve with the default exact limits."""
    rng = np.random.default_rng(2121)
    mu = rng.uniform(8.0, 20.0, N_BINS)
    a, bkg_per_bin = 0.1, 10.0
    lo = np.arange(N_BINS) * WIDTH
    hi = lo + WIDTH
    n_src = rng.poisson(mu + a * bkg_per_bin)
    n_bkg = rng.poisson(bkg_per_bin, N_BINS)
    src = np.sort(np.repeat(lo, n_src) + rng.uniform(0.0, WIDTH, n_src.sum()))
    bkg = np.sort(np.repeat(lo, n_bkg) + rng.uniform(0.0, WIDTH, n_bkg.sum()))
    gti = GTI([0.0], [N_BINS * WIDTH])
    lc = light_curve(src, lo, hi, gti, bkg_times=bkg, area_ratio=a)
    assert len(lc) == N_BINS
    return lc, mu / WIDTH


def _coverage_and_chi2(lc, model, sigma):
    z = (lc.rate - model) / sigma
    return float(np.mean(np.abs(z) <= 1.0)), float(np.mean(z**2))


def test_err_chi2_covers_68_percent_and_gives_reduced_chi2_near_1(injected):
    """ERR_CHI2 bars hold the injected rate in 68.3 % of the bins within 3 binomial
    sigma (0.6 % for 6000 bins) plus 1.5 % for the discreteness of the counts (the
    exact expectation for these means is 69-70 %), and the chi-square per bin of the
    rates about the model is 1.00-1.12 (expected about 1.07 at 8-20 counts)."""
    lc, model = injected
    cov, chi2 = _coverage_and_chi2(lc, model, lc.err_chi2)
    binom = np.sqrt(0.683 * 0.317 / N_BINS)
    assert abs(cov - 0.683) < 3 * binom + 0.015, cov
    assert 1.0 < chi2 < 1.12, chi2



def test_mighell_fit_recovers_the_amplitude_with_reduced_chi2_1(injected):
    """A least-squares fit of the model's amplitude with ERR_CHI2 as sigma: on RATE it is
    pulled low (data-dependent weights, about 7 %), on RATE_CHI2 (Mighell's shift) it
    is unbiased within 1 % (its statistical error is 0.4 %) and the reduced chi-square
    is 1.00 +- 0.05 (its spread is 0.018 for 6000 bins)."""
    lc, model = injected
    w = 1.0 / lc.err_chi2**2

    def fit(y):
        norm = np.sum(w * y * model) / np.sum(w * model**2)
        return norm, np.sum(w * (y - norm * model) ** 2) / (N_BINS - 1)

    biased, _ = fit(lc.rate)
    assert 0.88 < biased < 0.96
    norm, chi2_red = fit(lc.rate_chi2)
    assert abs(norm - 1.0) < 0.01, norm
    assert abs(chi2_red - 1.0) < 0.05, chi2_red


def test_exact_limits_are_conservative_as_sigma(injected):
    """The mean of the exact 68.27 % limits (ERROR, unchanged) over-covers at these
    counts (the issue's 74-77 %) and gives a reduced chi-square well below 1: correct as
    confidence limits, not a sigma for a chi-square fit."""
    lc, model = injected
    cov, chi2 = _coverage_and_chi2(lc, model, lc.error)
    assert cov > 0.72 and chi2 < 0.93, (cov, chi2)
    # Exact limits: the asymmetric bars hold the truth at least 68.27 % of the time.
    covered = (lc.rate - lc.err_lo <= model) & (model <= lc.rate + lc.err_hi)
    assert covered.mean() > 0.683 - 3 * np.sqrt(0.683 * 0.317 / N_BINS)


def test_err_chi2_expectations_match_the_poisson_sums():
    """The figures quoted in the docs: E[(N - mu)^2 / (N + 1)] and P(|N - mu| <= sqrt(N + 1))
    averaged over mu uniform in 8-20, summed exactly over the Poisson distribution."""
    n = np.arange(0, 200)
    mus = np.linspace(8.0, 20.0, 601)
    p = stats.poisson.pmf(n[None, :], mus[:, None])
    s = chi2_sigma(n)
    chi2 = np.mean(np.sum(p * (n - mus[:, None]) ** 2 / s**2, axis=1))
    cov = np.mean(np.sum(p * (np.abs(n - mus[:, None]) <= s), axis=1))
    assert 1.05 < chi2 < 1.10 and 0.685 < cov < 0.705


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=30),
    st.integers(0, 10**6),
    st.floats(0.0, 10.0, allow_nan=False),
)
def test_chi2_sigma_properties(counts, nb, a):
    n = np.array(counts)
    s = chi2_sigma(n, np.full(n.size, nb), a)
    expected = np.sqrt(n + 1.0 + (a**2 * (nb + 1.0) if a > 0 else 0.0))
    assert np.allclose(s, expected, rtol=1e-12)
    assert np.all(s >= 1.0)  # an empty bin still has an error
    # Never below sqrt(N) (the large-count limit), and within 1 count of it without background.
    assert np.all(s >= np.sqrt(n))
    if a == 0:
        assert np.all(s - np.sqrt(n) <= 1.0)


def test_chi2_sigma_refuses_non_counts():
    with pytest.raises(MXTInputError):
        chi2_sigma([1.5])
    with pytest.raises(MXTInputError):
        chi2_sigma([3], [-1], 0.1)


def test_err_chi2_is_written_and_read_back(tmp_path, injected):
    from mxt_pipeline.io.lightcurve_product import read_light_curve, write_light_curve
    from mxt_pipeline.io.products import read_product

    lc, _ = injected
    lc.meta.update({"SRC_ID": 1, "RA_OBJ": 10.0, "DEC_OBJ": -20.0, "E_MIN": 0.2, "E_MAX": 10.0, "BINNING": "FIXED",
                    "OBS_ID": "CHI2"})  # fmt: skip
    path = write_light_curve(tmp_path / "lc.fits", lc)
    col = np.asarray(read_product(path, "MXT_LC").table("RATE")["ERR_CHI2"], float)
    assert np.allclose(col, lc.err_chi2, rtol=1e-6)
    assert np.allclose(read_light_curve(path).err_chi2, lc.err_chi2, rtol=1e-6)
