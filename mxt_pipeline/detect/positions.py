"""Profile-likelihood position errors and count errors of fitted sources.

For each source the profile ``dC(dy, dz)`` holds the source at its best position plus
(dy, dz) and re-fits everything else: the counts and background of every band always
(exactly, by the convex amplitude solver), and the positions of the sources within the
neighbour radius, whose light overlaps (Newton steps from the linear prediction of how
they follow the held source).  Sources farther away keep their
positions (their pixel quantities are computed once): a source several FWHM away
hardly correlates with this one's position, and holding it saves a full fit per
evaluation.  The contours are traced by :func:`mxt_pipeline.detect.radii.contour_rays`.

Count errors are the 1-sigma errors from the Hessian of C in the amplitudes of each
band at the best positions: ``cov = 2 H^-1`` since C = -2 ln L + const.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mxt_pipeline.detect.blas import one_blas_thread
from mxt_pipeline.detect.likelihood import FrozenSources
from mxt_pipeline.detect.mlfit import MLParameters, MLState, neighbours
from mxt_pipeline.detect.problem import DetectionProblem
from mxt_pipeline.detect.radii import DC_68, DC_90, ContourResult, contour_rays

__all__ = ["SourceErrors", "position_errors", "count_errors", "profile_function"]


@dataclass
class SourceErrors:
    """Errors of one source (pixels / counts)."""

    contour: ContourResult
    counts_err: np.ndarray  # (B,)

    @property
    def r68(self) -> float:
        return self.contour.radius68

    @property
    def r90(self) -> float:
        return self.contour.radius90


def profile_function(problem: DetectionProblem, state: MLState, index: int, params: MLParameters):
    """``dC(dy, dz)`` of source ``index`` (see the module docstring) and its local sigma.

    Returns
    -------
    delta_c : callable
    sigma : callable
        ``sigma(phi)``: offset along direction phi where the quadratic approximation of
        the profile (from the Hessian of C in the source position, others held) reaches
        dC = 1; a starting guess for the contour search.
    """
    model = problem.model
    near = neighbours(problem, state, index, params.neighbour_radius)
    others = np.arange(state.n_sources) != index
    far = others & ~near
    y0, z0, th = state.y[index], state.z[index], state.theta[index:index + 1]
    frozen_far = model.freeze(state.y[far], state.z[far], state.theta[far])
    order = np.r_[np.flatnonzero(far)]

    idx_near = np.zeros(0, int)
    if np.any(near):
        # Neighbours are re-optimised by Newton steps with the Hessian of C in their
        # positions at the best fit, from the linear prediction of how they follow this
        # source (x_n = x_n0 - H_nn^-1 H_ns d): two or three evaluations per point
        # instead of a full fit, converging quadratically to the same profile.
        idx_near = np.flatnonzero(near)
        sub = np.r_[index, idx_near]
        hess = _position_hessian(problem, state, sub, frozen_far, order)
        # Neighbours whose positions hardly couple to this one are held too: the
        # curvature of the profile in this source's position, H_ss - H_sn H_nn^-1 H_ns,
        # loses a fraction rel_j of H_ss to neighbour j alone; the weakest neighbours
        # whose fractions sum to less than ``coupling_tolerance`` are held (the contour
        # radii then change by about half that fraction at most).
        keep = _coupled(hess, params.coupling_tolerance)
        if not np.all(keep):
            held = idx_near[~keep]
            idx_near = idx_near[keep]
            sel = np.r_[0, 1, 2 + np.flatnonzero(keep), 2 + keep.size + np.flatnonzero(keep)]
            hess = hess[np.ix_(sel, sel)]
            far = far.copy()
            far[held] = True
            frozen_far = model.freeze(state.y[far], state.z[far], state.theta[far])
            order = np.r_[np.flatnonzero(far)]
    if not np.any(near) or idx_near.size == 0:
        warm = [(np.r_[state.counts[index, b], state.counts[order, b]], state.background[b]) for b in range(problem.n_bands)]

        def cstat_at(dy: float, dz: float) -> float:
            c, _, _, _ = model.profile([y0 + dy], [z0 + dz], th, warm, frozen=frozen_far, gradient=False)
            return c

    else:
        h_nn = hess[2:, 2:]
        h_ns = hess[2:, :2]
        try:
            follow = -np.linalg.solve(h_nn, h_ns)
            h_nn_inv = np.linalg.inv(h_nn)
        except np.linalg.LinAlgError:
            follow = np.zeros((h_nn.shape[0], 2))
            h_nn_inv = np.linalg.pinv(h_nn)
        m = idx_near.size
        xn0 = np.r_[state.y[idx_near], state.z[idx_near]]
        th_n = state.theta[idx_near]
        cnt = np.vstack([state.counts[idx_near], state.counts[index][None, :], state.counts[order]])

        def cstat_at(dy: float, dz: float) -> float:
            frozen = [
                FrozenSources.concat([a, b])
                for a, b in zip(model.freeze([y0 + dy], [z0 + dz], th), frozen_far)
            ]
            warm = [(cnt[:, b], state.background[b]) for b in range(problem.n_bands)]
            xn = xn0 + follow @ np.array([dy, dz])
            best = np.inf
            for _ in range(6):
                c, gy, gz, sols = model.profile(xn[:m], xn[m:], th_n, warm, frozen=frozen)
                if c > best:
                    break
                best = c
                warm = [(sl.counts, sl.background) for sl in sols]
                grad = np.r_[gy, gz]
                step = -h_nn_inv @ grad
                # The Newton step would lower C by about -g.step / 2: below 1e-4 (the
                # contour levels are found to 1e-3 relative) the point is converged.
                if -0.5 * float(grad @ step) < 1e-4 or np.max(np.abs(step)) < 1e-4:
                    break
                xn = xn + step
            return best

    c_best = min(cstat_at(0.0, 0.0), state.cstat)

    def delta_c(dy: float, dz: float) -> float:
        return cstat_at(dy, dz) - c_best

    # Curvature of C in this source's position, others held (finite differences of the
    # analytic gradient): the quadratic guess for the contour search.
    h = 1e-3 * problem.fwhm()
    warm_all = [(np.r_[state.counts[index, b], state.counts[others, b]], state.background[b]) for b in range(problem.n_bands)]
    frozen_all = model.freeze(state.y[others], state.z[others], state.theta[others])
    hess = np.zeros((2, 2))
    for k, (ey, ez) in enumerate(((1.0, 0.0), (0.0, 1.0))):
        gp = model.profile([y0 + h * ey], [z0 + h * ez], th, warm_all, frozen=frozen_all)
        gm = model.profile([y0 - h * ey], [z0 - h * ez], th, warm_all, frozen=frozen_all)
        hess[:, k] = (np.r_[gp[1][0], gp[2][0]] - np.r_[gm[1][0], gm[2][0]]) / (2 * h)
    hess = 0.5 * (hess + hess.T)
    ev = np.linalg.eigvalsh(hess)
    if ev[0] <= 0 or not np.all(np.isfinite(ev)):
        hess = np.eye(2) * max(float(ev[-1]), 2.0 / problem.fwhm() ** 2)

    def sigma(phi: float) -> float:
        u = np.array([np.cos(phi), np.sin(phi)])
        return float(np.sqrt(2.0 / max(u @ hess @ u, 1e-12)))

    return delta_c, sigma


def coupling_fractions(hess: np.ndarray) -> np.ndarray:
    """Fraction of the position curvature of source 0 that each neighbour takes away.

    ``hess`` is the Hessian of C in (y_0, z_0, y_1..y_m, z_1..z_m).  For neighbour j,
    ``rel_j = tr(H_00^-1 H_0j H_jj^-1 H_j0) / 2``: 0 when the positions do not couple,
    1 when the neighbour's position fully compensates a shift of source 0.
    """
    m = (hess.shape[0] - 2) // 2
    h_ss = hess[:2, :2]
    try:
        h_ss_inv = np.linalg.inv(h_ss)
    except np.linalg.LinAlgError:
        return np.ones(m)
    rel = np.ones(m)
    for j in range(m):
        idx = [2 + j, 2 + m + j]
        h_sj = hess[np.ix_([0, 1], idx)]
        try:
            red = h_sj @ np.linalg.solve(hess[np.ix_(idx, idx)], h_sj.T)
        except np.linalg.LinAlgError:
            continue
        rel[j] = 0.5 * float(np.trace(h_ss_inv @ red))
    return rel


def _coupled(hess: np.ndarray, tolerance: float) -> np.ndarray:
    """Neighbours to re-optimise: all but the weakest couplings summing below ``tolerance``."""
    rel = coupling_fractions(hess)
    keep = np.ones(rel.size, bool)
    if tolerance <= 0 or rel.size == 0:
        return keep
    order = np.argsort(rel)
    held = np.cumsum(np.abs(rel[order])) < tolerance
    keep[order[held]] = False
    return keep


def _position_hessian(
    problem: DetectionProblem, state: MLState, sub: np.ndarray, frozen_far, order: np.ndarray
) -> np.ndarray:
    """Hessian of C in the positions (y..., z...) of sources ``sub``, the rest held.

    Central differences of the analytic profile gradient; coordinates ordered
    (y_0, z_0, y_1, z_1, ...) for the sources of ``sub``.
    """
    model = problem.model
    y = state.y[sub].copy()
    z = state.z[sub].copy()
    th = state.theta[sub]
    n = sub.size
    warm = [(np.r_[state.counts[sub, b], state.counts[order, b]], state.background[b]) for b in range(problem.n_bands)]
    h = 1e-3 * problem.fwhm()
    hess = np.zeros((2 * n, 2 * n))
    for i in range(n):
        for axis in (0, 1):
            grads = []
            for sign in (1.0, -1.0):
                yy, zz = y.copy(), z.copy()
                (yy if axis == 0 else zz)[i] += sign * h
                _, gy, gz, _ = model.profile(yy, zz, th, warm, frozen=frozen_far)
                grads.append(np.stack([gy, gz], axis=1).ravel())
            hess[:, 2 * i + axis] = (grads[0] - grads[1]) / (2 * h)
    hess = 0.5 * (hess + hess.T)
    # Reorder (y0, z0, y1, z1, ...) -> (y0, z0, y1..ym, z1..zm) for the caller.
    perm = np.r_[0, 1, 2 + 2 * np.arange(n - 1), 3 + 2 * np.arange(n - 1)]
    return hess[np.ix_(perm, perm)]


def count_errors(state: MLState) -> np.ndarray:
    """1-sigma errors (S, B) of the counts, positions held, from ``cov = 2 H^-1`` per band."""
    n = state.n_sources
    err = np.zeros_like(state.counts)
    order = np.arange(n) if state.order is None else np.asarray(state.order)
    for b, sol in enumerate(state.solutions):
        h = np.asarray(sol.hessian)
        if h.shape[0] != n + np.size(state.background[b]):
            raise ValueError("the state's amplitude solutions do not match its sources")
        # Amplitudes held at 0 (bound active) have a singular row: pinv gives 0 there.
        cov = 2.0 * np.linalg.pinv(h)
        err[order, b] = np.sqrt(np.maximum(np.diag(cov)[:n], 0.0))
    return err


@one_blas_thread
def position_errors(
    problem: DetectionProblem,
    state: MLState,
    index: int,
    params: MLParameters | None = None,
    *,
    n_rays: int = 8,
    r_max: float | None = None,
    levels: tuple[float, float] = (DC_68, DC_90),
) -> ContourResult:
    """68% and 90% profile-likelihood contours and circular radii (pixels) of one source.

    ``levels`` are the dC levels traced (Wilks' by default; the calibrated levels of the
    source's DET_ML from :class:`mxt_pipeline.detect.levels.ErrorLevels` in the
    detection).
    """
    params = params or MLParameters()
    delta_c, sigma = profile_function(problem, state, index, params)
    r_max = float(r_max if r_max is not None else max(problem.shape) * problem.pixel)
    return contour_rays(delta_c, sigma, n_rays=n_rays, r_max=r_max, levels=levels)
