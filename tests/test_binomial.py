"""The one Clopper-Pearson interval: against the beta quantiles, closed forms and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mxt_pipeline.binomial import clopper_pearson
from mxt_pipeline.errors import MXTInputError


@st.composite
def _trials(draw):
    n = draw(st.integers(1, 5000))
    return draw(st.integers(0, n)), n, draw(st.floats(0.5, 0.999))


@given(_trials())
def test_agrees_with_the_beta_quantiles(case):
    """Clopper & Pearson (1934): lo = B^-1(a/2; k, n-k+1), hi = B^-1(1-a/2; k+1, n-k)."""
    k, n, level = case
    a = 1.0 - level
    lo_ref = 0.0 if k == 0 else stats.beta.ppf(a / 2, k, n - k + 1)
    hi_ref = 1.0 if k == n else stats.beta.ppf(1 - a / 2, k + 1, n - k)
    lo, hi = clopper_pearson(k, n, level)
    assert lo == pytest.approx(lo_ref, rel=1e-9, abs=1e-12)
    assert hi == pytest.approx(hi_ref, rel=1e-9, abs=1e-12)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


@given(n=st.integers(1, 10000), level=st.floats(0.5, 0.999))
def test_k_zero_and_k_equal_n_have_closed_forms(n, level):
    a = 1.0 - level
    lo, hi = clopper_pearson(0, n, level)
    assert lo == 0.0 and hi == pytest.approx(1.0 - (a / 2) ** (1.0 / n), rel=1e-9)
    lo, hi = clopper_pearson(n, n, level)
    assert hi == 1.0 and lo == pytest.approx((a / 2) ** (1.0 / n), rel=1e-9)


def test_no_trial_is_the_whole_interval():
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    assert clopper_pearson(0, 0, 0.683) == (0.0, 1.0)


def test_coverage_is_at_least_the_level():
    """Exact intervals are conservative: P(p in [lo, hi]) >= level for every p (here n = 30)."""
    n, level = 30, 0.9
    ks = np.arange(n + 1)
    bounds = np.array([clopper_pearson(k, n, level) for k in ks])
    for p in np.linspace(0.01, 0.99, 99):
        inside = (bounds[:, 0] <= p) & (p <= bounds[:, 1])
        assert stats.binom.pmf(ks[inside], n, p).sum() >= level - 1e-12


@pytest.mark.parametrize(("k", "n", "level"), [(-1, 5, 0.9), (6, 5, 0.9), (0, -1, 0.9), (1, 5, 1.0), (1, 5, 0.0)])
def test_out_of_range_is_refused(k, n, level):
    with pytest.raises(MXTInputError):
        clopper_pearson(k, n, level)
