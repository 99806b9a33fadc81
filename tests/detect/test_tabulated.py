"""Separable terms recovered from a PSF density (cross approximation + 1-D tables)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline.detect.bandpsf import BandPSF, DetectionCalibration, spectral_weights
from mxt_pipeline.detect.bands import DEFAULT_BANDS, EnergyBand
from mxt_pipeline.detect.tabulated import TabulatedSeparable, cross_approximation

from .conftest import grid
from .psf_double import AnalyticLobsterPSF, EnergyLobsterPSF


def _density(psf):
    def d(dy, dz):
        out = 0.0
        for w, (a, b) in zip(psf.w, psf.dists):
            out = out + w * a.pdf(dy) * b.pdf(dz)
        return out

    return d


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), rank=st.integers(1, 6))
def test_cross_approximation_is_exact_for_low_rank(seed, rank):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(60, rank)) @ rng.normal(size=(rank, 50))
    rows, cols = cross_approximation(m, 1e-12, 20)
    assert len(rows) == rank
    skeleton = m[:, cols] @ np.linalg.solve(m[np.ix_(rows, cols)], m[rows, :])
    assert np.allclose(skeleton, m, atol=1e-8 * np.abs(m).max())


@pytest.mark.parametrize("sigma", [0.7, 3.0])
def test_tables_reproduce_the_exact_pixel_fractions(sigma):
    psf = AnalyticLobsterPSF(sigma=sigma, arm_gamma=10.0)
    tab = TabulatedSeparable(_density(psf), psf.fwhm())
    assert tab.rank == 3  # spot + arms = (g + c) x g + g x c, plus the halo
    e = grid(256)
    for y0, z0 in ((0.3, -0.2), (60.7, -100.1), (250.0, 12.0)):
        exact = psf.pixel_fractions(e, e, y0, z0)
        assert np.abs(tab.pixel_fractions(e, e, y0, z0) - exact).max() < 1e-6 * exact.max() + 1e-12


def test_table_derivatives_are_consistent():
    psf = AnalyticLobsterPSF()
    tab = TabulatedSeparable(_density(psf), psf.fwhm())
    e = grid(64)
    t = tab.terms(e, e, [0.37, 5.1], [-2.2, 9.9], 0.0, True)
    h = 1e-5
    tp = tab.terms(e, e, [0.37 + h, 5.1 + h], [-2.2 + h, 9.9 + h])
    tm = tab.terms(e, e, [0.37 - h, 5.1 - h], [-2.2 - h, 9.9 - h])
    assert np.allclose((tp.fy - tm.fy) / (2 * h), t.dfy, atol=1e-8)
    assert np.allclose((tp.fz - tm.fz) / (2 * h), t.dfz, atol=1e-8)
    # Against the exact densities of the analytic PSF at the pixel edges.
    exact = psf.terms(e, e, [0.37], [-2.2], derivatives=True)
    assert np.allclose(t.image(0), exact.image(0), atol=1e-8)


def test_band_psf_mixes_energies_and_angles():
    model = EnergyLobsterPSF()
    band = EnergyBand(0.2, 2.0)
    energy, w = spectral_weights(band, lambda e: 100.0 * e / (1 + e**2), 2.0)
    assert np.isclose(w.sum(), 1.0) and np.all(w > 0) and np.all((energy > 0.2) & (energy < 2.0))
    bpsf = BandPSF(model, energy, w)
    e = grid(128)
    exact = bpsf.pixel_fractions(e, e, 1.3, -4.2, 0.0)
    assert np.abs(bpsf.terms(e, e, [1.3], [-4.2], 0.0).image(0) - exact).max() < 1e-6 * exact.max()
    # Sources at different angles use their own tables; grouped evaluation = one by one.
    t = bpsf.terms(e, e, [0.0, 10.0, -5.0], [0.0, 3.0, 2.0], [0.0, 20.0, 0.4], True)
    for s, (y0, z0, th) in enumerate(((0.0, 0.0, 0.0), (10.0, 3.0, 20.0), (-5.0, 2.0, 0.4))):
        single = bpsf.terms(e, e, [y0], [z0], th, True)
        assert np.allclose(t.image(s), single.image(0), atol=1e-14)
        assert np.allclose(np.einsum("k,ki,kj->ij", t.w[s], t.dfy[s], t.fz[s]),
                           np.einsum("k,ki,kj->ij", single.w[0], single.dfy[0], single.fz[0]), atol=1e-14)
    assert bpsf.fwhm(20.0) > bpsf.fwhm(0.0)
    assert len(bpsf._tables) == 2  # theta 0 and 20 (0.4 shares the key of 0)


def test_detection_calibration_band_quantities():
    cal = DetectionCalibration(psf=EnergyLobsterPSF(), teldef=None, effective_area=lambda e: np.where(e < 2.0, 50.0, 10.0),
                               vignetting=lambda e, th: np.exp(-np.asarray(th) / 60.0) * np.ones_like(np.asarray(e)))
    frac = cal.band_count_fractions(DEFAULT_BANDS, 2.0)
    assert frac.sum() == pytest.approx(1.0) and frac[0] > frac[1]
    # Power law Gamma = 2 with the two area plateaus: analytic shares.
    soft = 50.0 * (1 / 0.2 - 1 / 2.0)
    hard = 10.0 * (1 / 2.0 - 1 / 10.0)
    assert frac[0] == pytest.approx(soft / (soft + hard), rel=1e-3)
    vig = cal.band_vignetting(DEFAULT_BANDS)(np.array([0.0, 30.0]))
    assert vig.shape == (2, 2) and np.allclose(vig[0], 1.0) and np.allclose(vig[1], np.exp(-0.5))
    psfs = cal.band_psfs(DEFAULT_BANDS)
    assert all(isinstance(p, BandPSF) for p in psfs)
    assert psfs[1].fwhm() > psfs[0].fwhm()  # the spot widens with energy in this double


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n_src=st.integers(1, 4), derivatives=st.booleans())
def test_compiled_and_numpy_table_evaluations_agree(seed, n_src, derivatives, monkeypatch_session):
    # The fast path on uniform pixel edges (compiled when numba is present, numpy
    # otherwise) and the general gather path give the same CDFs and densities.
    from mxt_pipeline.detect import tabulated

    rng = np.random.default_rng(seed)
    tab = _TABLE
    edges = grid(64) + rng.uniform(-0.5, 0.5)
    y = rng.uniform(-20, 20, n_src)
    fast = tab._fy.evaluate_grid(float(edges[0]), 1.0, edges.size, y, derivatives)
    with monkeypatch_session.context() as mp:
        mp.setattr(tabulated, "HAVE_NUMBA", False)
        plain = tab._fy.evaluate_grid(float(edges[0]), 1.0, edges.size, y, derivatives)
    val, der = tab._fy.evaluate(edges[None, :] - y[:, None], derivatives)
    assert np.allclose(fast[0], val.transpose(1, 0, 2), rtol=0, atol=1e-13)
    assert np.allclose(plain[0], val.transpose(1, 0, 2), rtol=0, atol=1e-13)
    if derivatives:
        assert np.allclose(fast[1], der.transpose(1, 0, 2), rtol=0, atol=1e-12)
        assert np.allclose(plain[1], der.transpose(1, 0, 2), rtol=0, atol=1e-12)
    else:
        assert fast[1] is None and plain[1] is None


@pytest.fixture(scope="module")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


_TABLE = TabulatedSeparable(_density(AnalyticLobsterPSF()), AnalyticLobsterPSF().fwhm(), extent=128.0)
