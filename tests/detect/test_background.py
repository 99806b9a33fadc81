"""The two-component background (vignetted sky + flat particle) of the detection.

Checks: the templates (CALDB vignetting shape, flat fallback), the amplitude solve
against scipy on the same Poisson likelihood, degenerate cases, the fixed-shape null of
DET_ML, and the absence of a radial pull on an off-axis source in a strongly vignetted
background (the bias a flat-only background model shows).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from mxt_pipeline.detect.images import FLAT_TOLERANCE, SKY_PHOTON_INDEX, background_templates
from mxt_pipeline.detect.likelihood import BandData, solve_linear_poisson
from mxt_pipeline.detect.mlfit import fit_sources
from mxt_pipeline.detect.problem import DetectionProblem
from mxt_pipeline.errors import MXTInputError

from .conftest import grid


def _theta_of(half: float, theta_edge: float):
    """Off-axis angle (arcmin) growing to ``theta_edge`` at ``half`` pixels from the axis."""
    return lambda y, z: np.hypot(y, z) * theta_edge / half


def _vignetting(strength: float, n_bands: int = 1, theta_0: float = 30.0):
    """``V(theta) = 1 - strength (theta / theta_0)^2``, the same in every band."""
    def f(theta):
        theta = np.atleast_1d(np.asarray(theta, float))
        v = 1.0 - strength * (theta / theta_0) ** 2
        return np.repeat(np.clip(v, 0.0, None)[:, None], n_bands, axis=1)

    return f


def _scipy_minimum(a, tot, c, x0):
    """min over x >= 0 of 2 (x.tot - c.ln(x.a)) by L-BFGS-B (the reference)."""
    def f(x):
        m = np.maximum(x @ a, 1e-300)
        return 2.0 * (x @ tot - c @ np.log(m)), 2.0 * (tot - a @ (c / m))

    res = optimize.minimize(f, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * x0.size,
                            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10000})
    return res.x, float(res.fun)


# ---- templates -----------------------------------------------------------------------------


def test_templates_follow_the_vignetting_and_fall_back_to_flat():
    n = 32
    edges = grid(n)
    g = np.ones((n, n))
    g[3, 4] = 0.0
    g[10, :] = 0.5
    theta_of = _theta_of(n / 2, 30.0)
    tmpl = background_templates(g, edges, edges, theta_of, _vignetting(0.4, 2), 2)
    assert len(tmpl) == 2 and all(t.shape == (2, n, n) for t in tmpl)
    yc = 0.5 * (edges[1:] + edges[:-1])
    theta = theta_of(yc[:, None], yc[None, :])
    expected = g * (1.0 - 0.4 * (theta / 30.0) ** 2)
    # Linear interpolation of a quadratic on 256 samples: far below the statistics.
    np.testing.assert_allclose(tmpl[0][0], expected, rtol=2e-4, atol=1e-12)
    np.testing.assert_array_equal(tmpl[1][1], g)
    assert tmpl[0][0][3, 4] == 0.0
    # No vignetting, or a flat one: a single flat component.
    for vig in (None, _vignetting(0.0, 2), _vignetting(0.5 * FLAT_TOLERANCE / 4.0, 2)):
        flat = background_templates(g, edges, edges, theta_of, vig, 2)
        assert all(t.shape == (1, n, n) for t in flat)
        np.testing.assert_array_equal(flat[0][0], g)


def test_templates_from_the_caldb_decrease_off_axis(monkeypatch):
    from mxt_pipeline.caldb import products
    from mxt_pipeline.detect.bandpsf import DetectionCalibration
    from mxt_pipeline.detect.bands import DEFAULT_BANDS
    from mxt_pipeline.detect.images import chip_coverage, detector_grid

    # The bundled CALDB (no environment override).
    monkeypatch.delenv("CALDB", raising=False)
    monkeypatch.delenv("MXT_CALDB_URL", raising=False)
    cal = DetectionCalibration.from_calset(products.CalibrationSet.from_caldb())
    ye, ze = detector_grid(cal.teldef)
    g = chip_coverage(ye, ze, cal.teldef, cal.bad_mask, subsample=2)

    def theta_of(y, z):
        ay, az = cal.teldef.det_to_angles(y, z)
        return np.hypot(ay, az)

    vig = cal.band_vignetting(DEFAULT_BANDS, SKY_PHOTON_INDEX)
    tmpl = background_templates(g, ye, ze, theta_of, vig, len(DEFAULT_BANDS))
    yc = 0.5 * (ye[1:] + ye[:-1])
    iz = int(np.argmin(np.abs(0.5 * (ze[1:] + ze[:-1]))))
    for b, t in enumerate(tmpl):
        assert t.shape[0] == 2
        row = t[0][:, iz] / np.maximum(g[:, iz], 1e-12)
        live = g[:, iz] > 0.99
        theta = theta_of(yc[live], np.full(live.sum(), 0.5 * (ze[iz] + ze[iz + 1])))
        order = np.argsort(theta)
        shape = row[live][order]
        # Shape = V_b(theta) / V_b(0): 1 on axis, decreasing with the off-axis angle.
        assert shape[0] == pytest.approx(1.0, abs=0.01)
        assert np.all(np.diff(shape) <= 1e-9)
        v = vig(np.r_[theta[order][-1], 0.0])
        assert shape[-1] == pytest.approx(v[0, b] / v[1, b], rel=1e-3)
        assert shape[-1] < 0.9


def test_templates_reject_a_bad_vignetting():
    edges = grid(8)
    with pytest.raises(MXTInputError):
        background_templates(np.ones((8, 8)), edges, edges, _theta_of(4, 30), lambda t: np.zeros((np.size(t), 1)), 1)


# ---- amplitudes ---------------------------------------------------------------------------


def _two_component_band(rng, n=48, sky=0.6, particle=0.2, strength=0.6):
    edges = grid(n)
    g = np.ones((n, n))
    g[:, :3] = 0.0  # a dead strip: templates and counts are masked there
    tmpl = background_templates(g, edges, edges, _theta_of(n / 2, 30.0), _vignetting(strength), 1)[0]
    mean = sky * tmpl[0] + particle * tmpl[1]
    return BandData(rng.poisson(mean), g, tmpl), tmpl


def test_two_component_fit_recovers_the_injected_amplitudes_and_matches_scipy():
    rng = np.random.default_rng(11)
    sky, particle = 0.6, 0.2
    fits = []
    for _ in range(20):
        data, tmpl = _two_component_band(rng, sky=sky, particle=particle)
        x, c_newton, hess, ok = solve_linear_poisson(data.t_nz, data.t_sum, data.c, np.r_[0.3, 0.3], np.ones(2, bool))
        assert ok
        x_ref, c_ref = _scipy_minimum(data.t_nz, data.t_sum, data.c, np.r_[0.3, 0.3])
        # Same likelihood, same minimum: Newton is at least as low and agrees in x.
        assert c_newton <= c_ref + 1e-6
        np.testing.assert_allclose(x, x_ref, rtol=2e-4, atol=2e-5)
        fits.append((x, np.sqrt(np.diag(2.0 * np.linalg.inv(hess)))))
    est = np.array([f[0] for f in fits])
    err = np.array([f[1] for f in fits])
    # Unbiased within the spread of 20 fields (pulls' mean within 3 / sqrt(20)).
    pull = (est - np.r_[sky, particle]) / err
    assert np.all(np.abs(pull.mean(axis=0)) < 3.0 / np.sqrt(len(fits)) + 0.1)
    assert np.all((pull.std(axis=0) > 0.5) & (pull.std(axis=0) < 1.6))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), sky=st.floats(0.0, 3.0), particle=st.floats(0.0, 3.0),
       strength=st.floats(0.05, 0.9))
def test_two_component_solve_satisfies_the_kkt_conditions(seed, sky, particle, strength):
    rng = np.random.default_rng(seed)
    data, _ = _two_component_band(rng, n=16, sky=sky, particle=particle, strength=strength)
    if data.n_counts == 0:
        return
    x, cval, _, ok = solve_linear_poisson(data.t_nz, data.t_sum, data.c, np.r_[1.0, 1.0], np.ones(2, bool))
    assert ok and np.all(x >= 0)
    m = x @ data.t_nz
    grad = 2.0 * (data.t_sum - data.t_nz @ (data.c / m))
    scale = 2.0 * data.t_sum
    # Free amplitudes: zero gradient; amplitudes at the bound: gradient >= 0.
    for j in range(2):
        if x[j] > 1e-8:
            assert abs(grad[j]) <= 1e-4 * scale[j]
        else:
            assert grad[j] >= -1e-4 * scale[j]
    _, c_ref = _scipy_minimum(data.t_nz, data.t_sum, data.c, np.r_[1.0, 1.0])
    assert cval <= c_ref + 1e-6 * max(1.0, abs(c_ref))


def test_degenerate_bands(analytic_psf):
    n = 16
    edges = grid(n)
    g = np.ones((n, n))
    tmpl = np.stack([g * 0.5, g])
    # No counts: every amplitude is 0, the Hessian has the full size.
    empty = DetectionProblem(edges, edges, [BandData(np.zeros((n, n), int), g, tmpl)], [analytic_psf])
    c, _, _, sols = empty.model.profile(np.r_[0.0], np.r_[0.0], np.r_[0.0], gradient=False)
    assert c == 0.0 and np.all(sols[0].background == 0.0) and sols[0].hessian.shape == (3, 3)
    # Proportional templates: the split is not identified but the total is, and stable.
    rng = np.random.default_rng(5)
    counts = rng.poisson(2.0 * g)
    prob = DetectionProblem(edges, edges, [BandData(counts, g, tmpl)], [analytic_psf])
    _, _, _, sols = prob.model.profile(np.zeros(0), np.zeros(0), np.zeros(0), gradient=False)
    total = sols[0].background @ np.r_[0.5, 1.0]
    assert sols[0].converged and total == pytest.approx(counts.sum() / g.sum(), rel=1e-6)
    # A component that sees no live pixel is held at 0.
    dead = np.stack([np.zeros((n, n)), g])
    prob = DetectionProblem(edges, edges, [BandData(counts, g, dead)], [analytic_psf])
    _, _, _, sols = prob.model.profile(np.zeros(0), np.zeros(0), np.zeros(0), gradient=False)
    assert sols[0].background[0] == 0.0
    assert sols[0].background[1] == pytest.approx(counts.sum() / g.sum(), rel=1e-6)
    # A 1 x 1 field.
    tiny = DetectionProblem(grid(1), grid(1), [BandData(np.array([[3]]), np.ones((1, 1)),
                                                        np.stack([np.ones((1, 1)), np.ones((1, 1))]))],
                            [analytic_psf])
    _, _, _, sols = tiny.model.profile(np.zeros(0), np.zeros(0), np.zeros(0), gradient=False)
    assert sols[0].background.sum() == pytest.approx(3.0, rel=1e-6)
    # Bands must agree on the number of components.
    with pytest.raises(MXTInputError):
        DetectionProblem(edges, edges, [BandData(counts, g, tmpl), BandData(counts, g)], [analytic_psf] * 2)
    with pytest.raises(MXTInputError):
        BandData(counts, g, np.ones((2, n + 1, n)))


def test_background_shape_problem_reproduces_the_model(analytic_psf):
    rng = np.random.default_rng(9)
    data, tmpl = _two_component_band(rng, n=32)
    edges = grid(32)
    prob = DetectionProblem(edges, edges, [data], [analytic_psf])
    amp = np.array([[0.4, 0.1]])
    shaped = prob.with_background_shape(amp)
    assert shaped.model.n_components == 1
    np.testing.assert_allclose(shaped.bands[0].background, 0.4 * tmpl[0] + 0.1 * tmpl[1])
    y, z = np.r_[3.0], np.r_[-2.0]
    a = prob.model.model_images(y, z, 0.0, np.r_[50.0], amp)
    b = shaped.model.model_images(y, z, 0.0, np.r_[50.0], np.ones((1, 1)))
    np.testing.assert_allclose(a[0], b[0])
    flat = DetectionProblem(edges, edges, [BandData(data.counts, data.exposure)], [analytic_psf])
    assert flat.with_background_shape(np.ones((1, 1))) is flat


# ---- no radial pull off axis --------------------------------------------------------------


def _asimov_offaxis(psf, templates: bool):
    """Fit of the *expected* image (no noise: the asymptotic bias) of an off-axis source
    over a strongly vignetted sky plus particles, with the two-component background or
    with the flat one alone."""
    n = 96
    edges = grid(n)
    g = np.ones((n, n))
    theta_of = _theta_of(n / 2, 30.0)
    tmpl = background_templates(g, edges, edges, theta_of, _vignetting(0.7), 1)[0]
    y0, z0 = 25.0, 14.0
    truth = DetectionProblem(edges, edges, [BandData(np.zeros((n, n)), g, tmpl)], [psf], theta_of=theta_of)
    mean = truth.model.model_images(np.r_[y0], np.r_[z0], np.r_[0.0], np.r_[300.0], np.array([[1.5, 0.2]]))[0]
    data = BandData(mean, g, tmpl) if templates else BandData(mean, g)
    prob = DetectionProblem(edges, edges, [data], [psf], theta_of=theta_of)
    st_ = fit_sources(prob, np.r_[y0 + 1.0], np.r_[z0 - 1.0], np.r_[0.0], counts=np.r_[[[250.0]]])
    return np.hypot(st_.y[0], st_.z[0]) - np.hypot(y0, z0), st_


def test_offaxis_source_in_a_vignetted_background_has_no_radial_pull(analytic_psf):
    radial, state = _asimov_offaxis(analytic_psf, templates=True)
    assert abs(radial) < 0.02  # pixels; the spot sigma is 3 pixels
    np.testing.assert_allclose(state.background[0], [1.5, 0.2], rtol=1e-3)
    assert state.counts[0, 0] == pytest.approx(300.0, rel=1e-3)
    # The flat background alone pulls the source toward the optical axis.
    radial_flat, _ = _asimov_offaxis(analytic_psf, templates=False)
    assert radial_flat < -0.2


# ---- the fitted components in the source list ----------------------------------------------


def test_fitted_components_are_written_in_the_bands_hdu(tmp_path):
    from astropy.io import fits

    from mxt_pipeline.detect.bands import DEFAULT_BANDS
    from mxt_pipeline.detect.pipeline import background_components
    from mxt_pipeline.detect.srclist import bands_table, empty_source_table
    from mxt_pipeline.io.srclist_product import write_srclist

    two = background_components(np.array([[0.006, 0.001], [0.0015, 0.0066]]), 2)
    assert two == {"BKG_SKY": [0.006, 0.0015], "BKG_PART": [0.001, 0.0066]}
    # One flat component: all of it is flat.
    assert background_components(np.array([[0.004], [0.005]]), 2) == {"BKG_SKY": [0.0, 0.0],
                                                                       "BKG_PART": [0.004, 0.005]}
    table = empty_source_table(2)
    table.meta.update(two)
    path = write_srclist(tmp_path / "src.fits", table, DEFAULT_BANDS, obs_id="T", syserr_arcsec=25.0,
                         ml_threshold=10.0, tstart=1.0e8, tstop=1.0e8 + 5000.0)
    with fits.open(path) as hdul:
        bands = hdul["BANDS"].data
        np.testing.assert_allclose(bands["BKG_SKY"], [0.006, 0.0015], rtol=1e-6)
        np.testing.assert_allclose(bands["BKG_PART"], [0.001, 0.0066], rtol=1e-6)
        assert hdul["BANDS"].columns["BKG_SKY"].unit == "count/pixel"
    assert "BKG_SKY" not in bands_table(DEFAULT_BANDS).colnames
    with pytest.raises(MXTInputError):
        bands_table(DEFAULT_BANDS, {"BKG_SKY": [0.1]})


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_nearly_collinear_components_reach_the_minimum(engine):
    # Found by the KKT property: weak vignetting (templates 0.5% apart), no particle
    # background, start (1, 1).  The Newton step of the particle amplitude (at ~1e-14)
    # was clipped at 0 and the projected step was no descent direction for the sky one:
    # the solver stopped at C = 663 instead of 338.  Held, it converges.
    from mxt_pipeline.detect._newton import HAVE_NUMBA

    if engine == "numba" and not HAVE_NUMBA:
        pytest.skip("numba not installed")
    data, _ = _two_component_band(np.random.default_rng(91), n=16, sky=0.5, particle=0.0, strength=0.05078125)
    x, cval, _, ok = solve_linear_poisson(data.t_nz, data.t_sum, data.c, np.r_[1.0, 1.0], np.ones(2, bool),
                                          engine=engine)
    x_ref, c_ref = _scipy_minimum(data.t_nz, data.t_sum, data.c, np.r_[1.0, 1.0])
    assert ok and cval <= c_ref + 1e-6
    np.testing.assert_allclose(x, x_ref, atol=1e-5)


def test_detect_sources_background_model_option(monkeypatch):
    from dataclasses import replace

    from mxt_pipeline.caldb import products
    from mxt_pipeline.detect.bandpsf import DetectionCalibration
    from mxt_pipeline.detect.pipeline import DetectionParameters, detect_sources

    from .test_pipeline import _observation

    monkeypatch.delenv("CALDB", raising=False)
    monkeypatch.delenv("MXT_CALDB_URL", raising=False)
    calset = products.CalibrationSet.from_caldb()
    ev, _, _, _ = _observation(np.random.default_rng(3), [(30.0, -40.0, 300)], bkg_per_pixel=0.01, calset=calset,
                               t0=3.0e8)
    cal = DetectionCalibration.from_calset(calset)
    two = detect_sources(ev, cal)
    flat = detect_sources(ev, cal, params=replace(DetectionParameters(), background_model="flat"))
    assert len(two) >= 1 and len(flat) >= 1
    # The flat model reports its whole background as flat; the two-component one splits it.
    assert flat.meta["BKG_SKY"] == [0.0, 0.0] and all(v > 0 for v in flat.meta["BKG_PART"])
    assert sum(two.meta["BKG_SKY"]) + sum(two.meta["BKG_PART"]) > 0
    with pytest.raises(MXTInputError):
        detect_sources(ev, cal, params=replace(DetectionParameters(), background_model="spline"))


def test_the_detect_brick_declares_the_background_model():
    """``mxt run -p detect.background_model=flat`` reaches the detector; a typo is refused before any brick runs."""
    from mxt_pipeline.detect.bandpsf import DetectionCalibration
    from mxt_pipeline.errors import MXTError
    from mxt_pipeline.pipelines.bricks.detect import DETECT, detection_parameters
    from mxt_pipeline.pipelines.parameters import ParameterSet

    dcal = DetectionCalibration(psf=None, teldef=None)
    assert detection_parameters(ParameterSet("detect", DETECT.params, {}), dcal).background_model == "sky+particle"
    flat = ParameterSet("detect", DETECT.params, {"background_model": "flat"})
    assert detection_parameters(flat, dcal).background_model == "flat"
    with pytest.raises(MXTError, match="background_model"):
        ParameterSet("detect", DETECT.params, {"background_model": "spline"})
