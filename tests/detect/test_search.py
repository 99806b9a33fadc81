"""Proposals of new sources: exact gains, projection and line scans, score-test map."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from mxt_pipeline.detect.likelihood import cash_statistic
from mxt_pipeline.detect.search import (
    add_one_gain,
    gain_at,
    grid_profiles,
    line_gain,
    projection_gain,
    propose,
    ts_map,
)

from .conftest import grid, simulate_problem
from .psf_double import AnalyticLobsterPSF


def _flat_base(prob):
    return [d.n_counts / d.t_sum * d.background for d in prob.bands]


def test_add_one_gain_matches_a_bounded_1d_minimisation():
    rng = np.random.default_rng(1)
    n = 400
    m0 = rng.uniform(0.05, 1.0, n)
    a = rng.uniform(0, 0.02, (5, n)) ** 2 * 50
    c = rng.poisson(m0 + 30 * a[0]).astype(float)
    keep = c > 0
    tot = a.sum(axis=1)
    gain, counts = add_one_gain(a[:, keep], tot, c[keep], m0[keep])
    for j in range(5):
        def f(nn, j=j):
            return 2.0 * (nn * tot[j] - np.sum(c[keep] * np.log1p(nn * a[j, keep] / m0[keep])))

        ref = optimize.minimize_scalar(f, bounds=(0, 1e4), method="bounded", options={"xatol": 1e-9})
        best = min(ref.fun, 0.0)
        assert gain[j] == pytest.approx(-best, abs=1e-6)
        assert counts[j] == pytest.approx(ref.x if ref.fun < 0 else 0.0, abs=1e-3)


def test_grid_profiles_are_the_terms_at_the_trial_positions(analytic_psf):
    rng = np.random.default_rng(2)
    prob = simulate_problem(analytic_psf, [], [], np.zeros((0, 1)), [0.01], rng=rng, n=64, margin=16.0)
    for axis in (0, 1):
        pos, w, f = grid_profiles(prob, 0, axis)
        assert pos[0] == pytest.approx(-32 - 16 + 0.5) and pos[-1] == pytest.approx(32 + 16 - 0.5)
        edges = grid(64)
        for j in (0, 17, len(pos) - 1):
            t = analytic_psf.terms(edges, edges, [pos[j]], [pos[j]])
            direct = t.fy[0] if axis == 0 else t.fz[0]
            assert np.allclose(f[j], direct, atol=1e-14)
            assert np.allclose(w, t.w[0])


def test_gain_at_is_the_dense_likelihood_difference(analytic_psf):
    rng = np.random.default_rng(3)
    prob = simulate_problem(analytic_psf, [5.0], [-7.0], [[80.0]], [0.05], rng=rng, n=64, margin=8.0)
    base = _flat_base(prob)
    y, z = np.array([5.0, 0.0, -20.0]), np.array([-7.0, 0.0, 20.0])
    gain, counts = gain_at(prob, base, y, z)
    data = prob.bands[0]
    c = np.where(data.exposure > 0, data.counts, 0)
    for j in range(3):
        img = analytic_psf.pixel_fractions(grid(64), grid(64), y[j], z[j])
        ref = cash_statistic(c, base[0]) - cash_statistic(c, base[0] + counts[j, 0] * img)
        assert gain[j] == pytest.approx(ref, rel=1e-8, abs=1e-8)
    assert gain[0] > 50 and counts[0, 0] == pytest.approx(80, rel=0.4)


def test_projection_gain_peaks_at_the_source_coordinates(analytic_psf):
    rng = np.random.default_rng(4)
    prob = simulate_problem(analytic_psf, [30.0], [-50.0], [[150.0, 60.0]], [0.02, 0.02], rng=rng)
    base = _flat_base(prob)
    for axis, truth in ((0, 30.0), (1, -50.0)):
        pos, gain = projection_gain(prob, base, axis)
        assert abs(pos[np.argmax(gain)] - truth) <= 1.5


def test_line_gain_pairs_the_other_coordinate(analytic_psf):
    rng = np.random.default_rng(5)
    prob = simulate_problem(analytic_psf, [30.0], [-50.0], [[150.0, 60.0]], [0.02, 0.02], rng=rng)
    base = _flat_base(prob)
    best, gain, counts, _, _ = line_gain(prob, base, 0, 30.0)
    assert abs(best + 50.0) <= 1.5
    exact, _ = gain_at(prob, base, [30.0], [best])
    assert gain == pytest.approx(exact[0])


def test_line_gain_reaches_a_source_outside_the_field():
    # Long cross arms: a source 60 px beyond the chip edge along y puts its y-arm (a
    # line at its z) across the detector; the z projection peaks there and the line
    # scan along y finds the spot position off the chip.
    psf = AnalyticLobsterPSF(arm_gamma=60.0, fractions=(0.4, 0.25, 0.25, 0.1))
    rng = np.random.default_rng(6)
    prob = simulate_problem(psf, [188.0], [40.0], [[3000.0]], [0.01], rng=rng)
    base = _flat_base(prob)
    pos, gain = projection_gain(prob, base, 1)
    z_peak = pos[np.argmax(gain)]
    assert abs(z_peak - 40.0) <= 1.5
    best, g, _, _, _ = line_gain(prob, base, 1, z_peak)
    # Only the arm's tail is seen, so the distance along the arm is poorly constrained
    # (it trades off against the counts): the best point is off the chip, and the true
    # position fits nearly as well.
    assert best > prob.y_edges[-1] + 20
    assert g > 100
    at_truth, _ = gain_at(prob, base, [188.0], [z_peak])
    assert g - at_truth[0] < 10.0


def test_ts_map_finds_a_second_source_beside_a_modelled_one(analytic_psf):
    rng = np.random.default_rng(7)
    y = [0.0, 9.0]
    z = [0.0, 5.0]
    prob = simulate_problem(analytic_psf, y, z, [[300.0], [150.0]], [0.02], rng=rng, n=128)
    # Base: the first source alone (and the background).
    base = prob.model.model_images([0.0], [0.0], 0.0, [[300.0]], [0.02])
    ts, counts = ts_map(prob, base)
    iy, iz = np.unravel_index(np.argmax(ts), ts.shape)
    assert abs(prob.y_centres[iy] - 9.0) <= 2 and abs(prob.z_centres[iz] - 5.0) <= 2
    assert ts[iy, iz] > 25
    assert counts[0, iy, iz] == pytest.approx(150, rel=0.5)


def test_propose_ranks_the_brightest_first(analytic_psf):
    rng = np.random.default_rng(8)
    prob = simulate_problem(analytic_psf, [-60.0, 50.0], [20.0, -30.0], [[100.0], [400.0]], [0.02], rng=rng)
    cands = propose(prob, _flat_base(prob))
    assert cands
    assert abs(cands[0].y - 50.0) < 2 and abs(cands[0].z + 30.0) < 2
    assert all(a.gain >= b.gain for a, b in zip(cands[:-1], cands[1:]))
