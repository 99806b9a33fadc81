"""DET_ML, quality factor, circular radii and the contour search."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from mxt_pipeline.detect.radii import (
    DC_68,
    DC_90,
    P_68,
    P_90,
    add_systematic,
    circular_probability,
    circular_radius,
    contour_rays,
    det_ml,
    ellipse_from_contour,
    quality_factor,
    systematic_68,
)


def test_levels_are_the_chi2_quantiles_of_two_parameters():
    assert DC_68 == pytest.approx(2.296, abs=1e-3)
    assert DC_90 == pytest.approx(4.605, abs=1e-3)


@settings(max_examples=60, deadline=None)
@given(dc=st.floats(0.0, 60.0), n_bands=st.integers(1, 5))
def test_det_ml_is_the_emldetect_formula(dc, n_bands):
    # Independent form: -ln(1 - P(nu/2, L')) with P the regularised lower incomplete
    # gamma; 1 - P is the upper one (gammaincc), accurate when P is close to 1.
    nu = 2 + n_bands
    ref = -np.log(special.gammaincc(nu / 2.0, dc / 2.0))
    assert det_ml(dc, n_bands) == pytest.approx(ref, rel=1e-9, abs=1e-12)
    if dc < 20:
        assert det_ml(dc, n_bands) == pytest.approx(-np.log1p(-special.gammainc(nu / 2.0, dc / 2.0)), rel=1e-6)


def test_det_ml_is_finite_and_increasing_for_bright_sources():
    dc = np.array([0.0, 1.0, 10.0, 100.0, 1e4, 1e5])
    v = det_ml(dc, 2)
    assert np.all(np.isfinite(v)) and np.all(np.diff(v) > 0) and v[0] == 0.0
    # Asymptotically L' dominates: DET_ML ~ dC/2.
    assert v[-1] == pytest.approx(1e5 / 2, rel=1e-3)


def test_quality_factor_classes():
    r = [0.0, 29.99, 30.0, 59.9, 60.0, 119.9, 120.0, 299.9, 300.0, 1e4, np.nan]
    assert list(quality_factor(r)) == [4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 0]


def test_systematic_68_is_the_rayleigh_ratio():
    # For a circular Gaussian, r_p = sigma sqrt(-2 ln(1 - p)).
    assert systematic_68(25.0) == pytest.approx(25.0 * np.sqrt(np.log(1 / (1 - P_68)) / np.log(10)), rel=1e-12)
    assert add_systematic(30.0, 40.0) == pytest.approx(50.0)


@settings(max_examples=40, deadline=None)
@given(s1=st.floats(0.2, 5.0), s2=st.floats(0.2, 5.0), rho=st.floats(-0.9, 0.9), p=st.floats(0.05, 0.99))
def test_circular_radius_inverts_circular_probability(s1, s2, rho, p):
    cov = np.array([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]])
    inv = np.linalg.inv(cov)
    r = circular_radius(p, inv)
    assert circular_probability(r, inv) == pytest.approx(p, abs=1e-7)


def test_circular_radius_against_monte_carlo():
    # 200 000 Gaussian draws: the fraction inside the radius has sd 0.0007; 5 sigma.
    rng = np.random.default_rng(1)
    cov = np.array([[4.0, 1.5], [1.5, 1.0]])
    x = rng.multivariate_normal([0, 0], cov, 200_000)
    for p in (0.5, P_68, P_90):
        r = circular_radius(p, np.linalg.inv(cov))
        assert np.mean(np.hypot(x[:, 0], x[:, 1]) < r) == pytest.approx(p, abs=0.0035)


def test_circular_case_is_the_contour_radius():
    inv = np.eye(2) / 2.0**2
    assert circular_radius(P_90, inv) == pytest.approx(2.0 * np.sqrt(DC_90), rel=1e-12)
    assert circular_radius(P_68, inv) == pytest.approx(2.0 * np.sqrt(-2 * np.log(1 - P_68)), rel=1e-12)


def test_ellipse_from_contour_recovers_an_ellipse():
    q = np.array([[0.7, 0.2], [0.2, 0.3]])
    phi = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    u = np.stack([np.cos(phi), np.sin(phi)])
    r = 1.0 / np.sqrt(np.einsum("in,ij,jn->n", u, q, u))
    assert np.allclose(ellipse_from_contour(phi, r), q)


@pytest.mark.parametrize("power", [1.0, 1.4, 0.8])
def test_contour_rays_find_the_exact_contour(power):
    # dC = (x^T S^-1 x)^power has its level-q contour at x^T S^-1 x = q^(1/power).
    s_inv = np.linalg.inv(np.array([[3.0, -1.0], [-1.0, 2.0]]))

    def dc(dy, dz):
        v = np.array([dy, dz])
        return float(v @ s_inv @ v) ** power

    res = contour_rays(dc, 1.0, n_rays=12)
    assert res.closed
    u = np.stack([np.cos(res.phi), np.sin(res.phi)])
    quad = np.einsum("in,ij,jn->n", u, s_inv, u)
    assert np.allclose(res.r68, np.sqrt(DC_68 ** (1 / power) / quad), rtol=2e-3)
    assert np.allclose(res.r90, np.sqrt(DC_90 ** (1 / power) / quad), rtol=2e-3)
    if power == 1.0:
        assert res.radius90 == pytest.approx(circular_radius(P_90, s_inv), rel=2e-3)
        assert res.n_evaluations <= 4 * 12


def test_contour_beyond_the_search_limit_is_flagged():
    res = contour_rays(lambda dy, dz: 1e-3 * (dy * dy + dz * dz), 1.0, r_max=5.0)
    assert not res.closed
    assert np.all(res.r90 == 5.0)


def test_log_chi2_sf_is_continuous_where_the_series_takes_over():
    from mxt_pipeline.detect.radii import log_chi2_sf

    # The direct form underflows near x = 1400 (t = 700); the asymptotic series takes
    # over. Both sides must join smoothly: compare with the direct form where it still
    # works and check the second differences across the switch.
    x = np.linspace(1000.0, 1800.0, 801)
    for nu in (3, 4, 5):
        v = log_chi2_sf(x, nu)
        assert np.all(np.isfinite(v))
        direct = stats.chi2.logsf(x, nu)
        ok = np.isfinite(direct) & (direct > -600)
        assert np.allclose(v[ok], direct[ok], rtol=1e-12)
        # Third differences of the smooth curve are ~1e-9; a mismatch at the switch
        # would show as a spike.
        assert np.max(np.abs(np.diff(v, 3))) < 1e-7
