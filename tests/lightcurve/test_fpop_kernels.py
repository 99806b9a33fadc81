"""The root bounds of the functional-pruning kernel: correct side, accurate, any w >= 0."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import lambertw

from mxt_pipeline.lightcurve._fpop import lower_root, upper_root


def _phi(mu: float, w: float) -> float:
    return mu - np.log(mu) - 1.0 - w


@given(w=st.floats(0.0, 1e6, allow_nan=False))
def test_roots_are_conservative_and_accurate(w):
    """mu - ln(mu) = 1 + w: the lower bound lies left of the root, the upper right of it."""
    mu1, ln1 = lower_root(w)
    mu2, ln2 = upper_root(w)
    assert 0.0 <= mu1 <= 1.0 <= mu2
    assert mu1 == 0.0 or ln1 == np.log(mu1) or abs(ln1 - np.log(mu1)) < 1e-12 * max(1.0, abs(ln1))
    assert abs(ln2 - np.log(mu2)) < 1e-12 * max(1.0, ln2)
    # phi >= 0 outside the roots (convex phi): both bounds are on the outer side, up to
    # rounding of phi itself.
    tol = 1e-12 * (1.0 + w)
    if mu1 > 0.0:
        assert _phi(mu1, w) >= -tol
    assert _phi(mu2, w) >= -tol
    if 1e-3 < w < 700.0:
        # Against scipy's Lambert W: mu = -W_k(-exp(-(1 + w))).
        z = -np.exp(-(1.0 + w))
        r1 = -lambertw(z, 0).real
        r2 = -lambertw(z, -1).real
        assert abs(mu1 - r1) <= 1e-9 * r1
        assert abs(mu2 - r2) <= 1e-9 * r2
        assert mu1 <= r1 * (1 + 1e-12) and mu2 >= r2 * (1 - 1e-12)


def test_roots_near_the_double_root():
    """Near w = 0 the roots are 1 -+ sqrt(2w) + 2w/3: the series agrees."""
    for w in (1e-14, 1e-10, 1e-6):
        s = np.sqrt(2 * w)
        assert abs(lower_root(w)[0] - (1 - s + s * s / 3)) < 1e-3 * s
        assert abs(upper_root(w)[0] - (1 + s + s * s / 3)) < 1e-3 * s
    assert lower_root(0.0)[0] == 1.0 and upper_root(0.0)[0] == 1.0


@given(da=st.floats(-50.0, 50.0), de=st.floats(-5.0, 5.0).filter(lambda v: v != 0.0),
       ds=st.one_of(st.just(0.0), st.floats(-5.0, 5.0)))  # fmt: skip
def test_difference_of_pieces_takes_its_limits_at_zero_and_infinity(da, de, ds):
    """``da - de x + ds ln x`` at x = 0 and x = inf is the limit of its values (ln x
    dominates at 0, the linear term at infinity), not a number from a wrong branch."""
    from mxt_pipeline.lightcurve._fpop import _diff_at

    at0 = _diff_at(da, de, ds, 0.0, -np.inf)
    if ds == 0.0:
        assert at0 == da
    else:
        assert at0 == (np.inf if ds < 0.0 else -np.inf)
    at_inf = _diff_at(da, de, ds, np.inf, np.inf)
    assert at_inf == (-np.inf if de > 0.0 else np.inf)
    x = 2.5
    assert _diff_at(da, de, ds, x, np.log(x)) == da - de * x + ds * np.log(x)
