"""Stage 1 of the detection: histogram fit of the RAWY and RAWZ projections.

The seed's first stage fits the projections of the detector image on its two axes with
the projected PSF ("Leicester PSF") plus background, giving initial positions,
background levels and source counts; several sources are found iteratively.

For a lobster-eye optic the projections are a natural first look: the cross arm
perpendicular to an axis projects onto a narrow peak at the source coordinate, on top
of the spot, so the 1-D histograms concentrate the signal; and a source outside the
field whose arm crosses the detector still makes a narrow peak in the projection
across the arm.

Model of the projections of band b, for sources at (y_s, z_s)::

    my_b(i) = sum_s N_sb sum_j g_ij P_b(i, j | y_s, z_s) + sum_k B_bk sum_j t_kij
    mz_b(j) = the same summed over i

(``t_k`` the background component templates of the band, :mod:`.likelihood`.)

computed exactly from the separable PSF terms (``sum_j g_ij P(i, j) =
sum_k w_k fy_k(i) (g fz_k)(i)``), so bad pixels and the chip edges are accounted for.
The two projections of a band are fitted together with common amplitudes, by
minimising ``C_y + C_z`` (Cash statistic of each histogram).  Each photon appears in
both histograms, so this is a pseudo-likelihood: it gives consistent starting values,
not errors; errors come from the 2-D likelihood of stage 2.

The iteration: start from a flat background; propose new sources from the projection
gains (:func:`mxt_pipeline.detect.search.propose`; each 1-D peak is paired with its
other coordinate by an exact 2-D line scan, which may end off the chip); add those
whose gain exceeds ``min_gain`` and that lie at least two spot FWHM from the better
candidates of the round; refit all positions on the histograms (the amplitudes of the
base model for the next round are then solved on the 2-D images at those positions);
stop when no candidate passes or ``max_sources`` is reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from mxt_pipeline.detect.blas import one_blas_thread
from mxt_pipeline.detect.likelihood import solve_linear_poisson
from mxt_pipeline.detect.problem import DetectionProblem
from mxt_pipeline.detect.search import propose
from mxt_pipeline.detect.systematic import DEFAULT_PSF_SYSTEMATIC, robust_factor, source_images

__all__ = ["Stage1Result", "projection_cstat", "fit_projections", "run_stage1"]


@dataclass
class Stage1Result:
    """Initial sources of stage 1."""

    y: np.ndarray  # (S,) DET pixels
    z: np.ndarray
    counts: np.ndarray  # (S, B) from the 2-D amplitudes at the stage-1 positions
    background: np.ndarray  # (B, K) background component amplitudes
    gain: np.ndarray  # (S,) likelihood gain when each source was added
    cstat_projection: float

    @property
    def n_sources(self) -> int:
        return int(self.y.size)


def _projections(problem: DetectionProblem, b: int, y, z, theta, derivatives: bool):
    """Source projections (S, ny + nz) of band b and their derivatives in y and z."""
    data = problem.bands[b]
    t = problem.psfs[b].terms(problem.y_edges, problem.z_edges, y, z, theta, derivatives)
    g = data.exposure
    s, k, ny = t.fy.shape
    nz = t.fz.shape[2]
    gfz = (t.fz.reshape(s * k, nz) @ g.T).reshape(s, k, ny)
    gfy = (t.fy.reshape(s * k, ny) @ g).reshape(s, k, nz)
    py = np.einsum("sk,ski,ski->si", t.w, t.fy, gfz)
    pz = np.einsum("sk,skj,skj->sj", t.w, t.fz, gfy)
    proj = np.concatenate([py, pz], axis=1)
    if not derivatives:
        return proj, None, None
    gdfz = (t.dfz.reshape(s * k, nz) @ g.T).reshape(s, k, ny)
    gdfy = (t.dfy.reshape(s * k, ny) @ g).reshape(s, k, nz)
    d_y = np.concatenate(
        [np.einsum("sk,ski,ski->si", t.w, t.dfy, gfz), np.einsum("sk,skj,skj->sj", t.w, t.fz, gdfy)], axis=1
    )
    d_z = np.concatenate(
        [np.einsum("sk,ski,ski->si", t.w, t.fy, gdfz), np.einsum("sk,skj,skj->sj", t.w, t.dfz, gfy)], axis=1
    )
    return proj, d_y, d_z


def _histograms(problem: DetectionProblem, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts (ny + nz) and background templates (K, ny + nz) of band b projected on y
    then z (concatenated)."""
    data = problem.bands[b]
    usable = data.exposure > 0
    c = np.where(usable, data.counts, 0).astype(float)
    t = np.where(usable[None], data.templates, 0.0)
    return np.r_[c.sum(axis=1), c.sum(axis=0)], np.concatenate([t.sum(axis=2), t.sum(axis=1)], axis=1)


def projection_cstat(
    problem: DetectionProblem,
    y: np.ndarray,
    z: np.ndarray,
    theta: np.ndarray,
    start: list[np.ndarray] | None = None,
    gradient: bool = True,
) -> tuple[float, np.ndarray, np.ndarray, list[np.ndarray]]:
    """``C_y + C_z`` of every band, minimised over the amplitudes, and its gradient.

    Returns
    -------
    cstat, grad_y (S,), grad_z (S,), amplitudes per band ((S + K,): counts then B)
    """
    y = np.atleast_1d(np.asarray(y, float))
    z = np.atleast_1d(np.asarray(z, float))
    total = 0.0
    gy = np.zeros(y.size)
    gz = np.zeros(y.size)
    amps = []
    for b in range(problem.n_bands):
        c, t = _histograms(problem, b)
        proj, d_y, d_z = _projections(problem, b, y, z, theta, gradient)
        a = np.vstack([proj, t])
        n_k = t.shape[0]
        keep = c > 0
        if not np.any(keep):
            amps.append(np.zeros(y.size + n_k))
            continue
        t_sum = t.sum(axis=1)
        x0 = start[b] if start is not None else np.r_[np.full(y.size, 0.5 * c.sum() / (2 * max(y.size, 1))),
                                                      0.5 * c.sum() / (n_k * np.maximum(t_sum, 1e-12))]
        free = np.r_[np.ones(y.size, bool), t_sum > 0]
        x, cval, _, _ = solve_linear_poisson(a[:, keep], a.sum(axis=1), c[keep], x0, free)
        amps.append(x)
        total += cval
        if gradient:
            m = np.maximum(x @ a, 1e-25)
            w = 1.0 - c / m
            gy += 2.0 * x[: y.size] * (d_y @ w)
            gz += 2.0 * x[: y.size] * (d_z @ w)
    return total, gy, gz, amps


def fit_projections(
    problem: DetectionProblem, y: np.ndarray, z: np.ndarray, max_iter: int = 100
) -> tuple[np.ndarray, np.ndarray, float]:
    """Refit all positions on the projections (amplitudes profiled out).

    Returns the positions and the minimum of ``C_y + C_z``.
    """
    y = np.asarray(y, float).copy()
    z = np.asarray(z, float).copy()
    # Stage 1 is a first look: the on-axis PSF serves every source.
    theta = np.zeros(y.size)
    n = y.size
    (ylo, yhi), (zlo, zhi) = problem.bounds
    x0 = np.r_[np.clip(y, ylo, yhi), np.clip(z, zlo, zhi)]
    # Positions in units of about their statistical error (as in the ML stage,
    # :func:`mxt_pipeline.detect.mlfit.fit_sources`): the counts of the start fix the
    # scale; a bright source's start Hessian is otherwise off by orders of magnitude.
    _, _, _, warm = projection_cstat(problem, x0[:n], x0[n:], theta, None, gradient=False)
    src_counts = np.sum([a[:n] for a in warm], axis=0) if warm else np.zeros(n)
    scale_s = np.maximum(np.sqrt(np.maximum(src_counts, 0.0)) / (problem.fwhm() / 2.3548), 1.0)
    scale = np.r_[scale_s, scale_s]

    def fun(xs):
        nonlocal warm
        x = xs / scale
        cval, gy, gz, amps = projection_cstat(problem, x[:n], x[n:], theta, warm)
        warm = amps
        return cval, np.r_[gy, gz] / scale

    lo = np.r_[np.full(n, ylo), np.full(n, zlo)] * scale
    hi = np.r_[np.full(n, yhi), np.full(n, zhi)] * scale
    res = optimize.minimize(
        fun,
        x0 * scale,
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lo, hi)),
        options={"maxiter": max_iter, "ftol": 1e-12, "gtol": 1e-5},
    )
    x = res.x / scale
    return x[:n], x[n:], float(res.fun)


@one_blas_thread
def run_stage1(
    problem: DetectionProblem,
    *,
    max_sources: int = 8,
    min_gain: float = 12.0,
    psf_systematic: float = DEFAULT_PSF_SYSTEMATIC,
) -> Stage1Result:
    """Find sources one at a time from the projections (see the module docstring).

    Parameters
    ----------
    max_sources : int
        Most sources stage 1 returns.
    min_gain : float
        Least likelihood gain (delta C on the 2-D images) of a new source.  It is lower
        than the final DET_ML threshold: stage 2 decides.
    psf_systematic : float
        Fractional systematic error of the PSF model: a candidate's gain is first
        scaled by its robust factor against the sources already modelled and the
        better candidates of the round (:mod:`~mxt_pipeline.detect.systematic`), so
        that the mismatch of a bright source's spot, arms and halo is not taken for
        further sources.
    """
    model = problem.model
    y = np.zeros(0)
    z = np.zeros(0)
    gains: list[float] = []
    cproj = np.nan
    counts = np.zeros((0, problem.n_bands))
    # Start: the background alone, fitted (for one component: counts / template sum).
    _, _, _, sols0 = model.profile(np.zeros(0), np.zeros(0), np.zeros(0), gradient=False)
    background = np.array([s.background for s in sols0])
    base = [d.background_image(background[b]) for b, d in enumerate(problem.bands)]
    separation = 2.0 * problem.fwhm()
    while y.size < max_sources:
        cands = propose(problem, base, level=min_gain / 3.0, use_ts_map=False)
        # Every candidate above the gain limit that is well apart (2 spot FWHM) from the
        # better ones of this round is added: distinct bright sources are found in one
        # round, a close companion in the next one, once its neighbour is modelled.
        chosen: list = []
        modelled = [b_img - d.background_image(background[b]) for b, (b_img, d) in enumerate(zip(base, problem.bands))]
        fresh = [np.zeros(d.shape) for d in problem.bands]
        for cand in cands:
            if cand.gain < min_gain or y.size + len(chosen) >= max_sources:
                break
            if not all(np.hypot(cand.y - o.y, cand.z - o.z) >= separation for o in chosen):
                continue
            theta_c = problem.theta(np.r_[cand.y], np.r_[cand.z])
            tmpl = [t[0] for t in source_images(problem, [cand.y], [cand.z], theta_c)]
            n_c = np.maximum(np.asarray(cand.counts, float), 0.0)
            total = [d.background_image(background[b]) + modelled[b] + fresh[b] + n_c[b] * tmpl[b]
                     for b, d in enumerate(problem.bands)]  # fmt: skip
            # Its gain was measured against the base model: robust against the sources
            # in it; a candidate overlapping a better one of this round (an arm of the
            # same source, seen across the chip) waits for the next round, where its
            # gain is measured with that source modelled.
            if chosen and robust_factor(tmpl, fresh, total, n_c, psf_systematic) < 0.9:
                continue
            if cand.gain * robust_factor(tmpl, modelled, total, n_c, psf_systematic) < min_gain:
                continue
            chosen.append(cand)
            fresh = [fresh[b] + n_c[b] * tmpl[b] for b in range(problem.n_bands)]
        if not chosen:
            break
        y = np.r_[y, [c.y for c in chosen]]
        z = np.r_[z, [c.z for c in chosen]]
        gains += [c.gain for c in chosen]
        y, z, cproj = fit_projections(problem, y, z)
        theta = problem.theta(y, z)
        _, _, _, sols = model.profile(y, z, theta, gradient=False)
        counts = np.stack([s.counts for s in sols], axis=1)
        background = np.array([s.background for s in sols])
        base = model.model_images(y, z, theta, counts, background)
    return Stage1Result(y, z, counts, background, np.asarray(gains), float(cproj))
