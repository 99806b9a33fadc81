"""Stage 2 of the detection: simultaneous maximum-likelihood fit of all sources.

All sources are fitted together on all band images (the multi-band, multi-source fit
of XMM ``emldetect``; Cruddace, Hasinger & Schmitt 1988): the free parameters are the
position of every source, its counts in every band, and the background level of every
band, and the fit minimises the Cash statistic C of :mod:`~mxt_pipeline.detect.likelihood`.

Optimisation.  C is linear in the counts and background inside the logarithm, hence
convex in them: for given positions they are found exactly by projected Newton
(:meth:`CashModel.profile`).  The positions are then optimised on this profile with
L-BFGS-B and the analytic gradient (envelope theorem).  Working on the profile keeps
the outer problem small (two parameters per source, all in pixels, so well scaled)
and the counts >= 0 constraints are handled exactly by the inner solver.  Positions
are bounded by the grid plus a margin: a source outside the field of view that leaks
in through its cross arms is fitted with its spot off the chip.

The PSF of each source is evaluated at its off-axis angle, held fixed during one
optimisation (so the gradient is exact) and refreshed afterwards; the fit is repeated
when a source moved by more than ``theta_tolerance`` arcmin (lobster-eye PSFs vary
slowly across the field, CALDB PSF contract).

Source list decisions (likelihood criteria):

* **DET_ML** of a source (emldetect): ``L' = (C_null - C_best) / 2`` where ``C_null``
  is the best fit without the source (its neighbours within ``neighbour_radius``
  re-optimised, the rest re-fitted in counts only) and
  ``DET_ML = -ln(1 - P(nu/2, L'))`` with ``P`` the regularised lower incomplete gamma
  function and ``nu = 2 + n_bands`` (2 position parameters plus one count per band);
  that is ``-ln`` of the chi-square survival function of ``2 L'`` with ``nu`` degrees
  of freedom (:func:`mxt_pipeline.detect.radii.det_ml`).
* **drop**: while the weakest source has DET_ML below the threshold, remove it and
  refit.
* **add**: propose the best further source on the residuals (projection peaks and the
  score-test map, :func:`mxt_pipeline.detect.search.propose`), refit all sources with
  it, keep it when its DET_ML reaches the threshold; repeat.  This finds the second
  member of a pair closer than the spot, which stage 1 merges.
* **robust gain**: both decisions use the gain ``C_null - C_best`` multiplied by the
  source's robust factor against the other sources (:mod:`~mxt_pipeline.detect.systematic`):
  the mismatch of a bright source's PSF model does not grow companions on its wings.
  The reported DET_ML is the statistical one.
* **budget**: at most ``max_fits`` multi-source fits per stage (an iteration cap, not a
  time limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import optimize

from mxt_pipeline.detect.blas import one_blas_thread
from mxt_pipeline.detect.likelihood import AmplitudeSolution, FrozenSources
from mxt_pipeline.detect.outfield import arm_coupled
from mxt_pipeline.detect.problem import DetectionProblem
from mxt_pipeline.detect.radii import det_ml, det_ml_gain
from mxt_pipeline.detect.search import propose
from mxt_pipeline.detect.systematic import DEFAULT_PSF_SYSTEMATIC, robust_factors

__all__ = [
    "DEFAULT_DET_ML_THRESHOLD",
    "MLParameters",
    "MLState",
    "fit_sources",
    "null_cstat",
    "detection_likelihoods",
    "run_ml",
]

#: Default DET_ML threshold (emldetect convention, nu = 2 + 2 bands), calibrated on
#: 1000 empty fields of the standard background so that about 0.4 false sources
#: appear per 100 fields (at most 1 is required): ``python -m
#: mxt_pipeline.acceptance.detection --n 0 --calibrate 1000`` gives 10.2 for 0.5 per 100
#: fields; 10.5 keeps a margin.  Figures and the PSF used in docs/detection.md.  (That
#: calibration used a background of 0.01 counts per pixel and band; the standard
#: background measured on the bench since, 0.008, is checked by the ``empty`` case.)
DEFAULT_DET_ML_THRESHOLD = 10.5


@dataclass(frozen=True)
class MLParameters:
    """Settings of the maximum-likelihood stage.

    Attributes
    ----------
    det_ml_threshold : float
        Least DET_ML of a source kept in the list (the default is calibrated on
        empty-field simulations; see ``docs/detection.md``).
    max_sources : int
        Most sources in one fit.
    max_additions : int
        Most add-source rounds.
    neighbour_radius : float
        Sources closer than this many spot FWHM to a source are re-optimised in its
        null fit and in its error profile.
    theta_tolerance : float
        Arcmin: refit when a source's off-axis angle moved more than this.
    propose_level : float
        Least gain of a proposal examined in the add step.
    max_trials : int
        Proposals fitted per add round (best gain first).
    max_iter : int
        Iteration limit of one L-BFGS-B position fit.
    coupling_tolerance : float
        Position errors: neighbours whose positions together take less than this
        fraction of the curvature of the profile are held instead of re-optimised
        (``positions.coupling_fractions``; 0 re-optimises every neighbour).
    psf_systematic : float
        Fractional systematic error of the PSF model: a source is added and kept only
        when its likelihood gain scaled by its robust factor against the other sources
        (:mod:`~mxt_pipeline.detect.systematic`) reaches the threshold's gain.  0
        restores the purely statistical criteria.
    max_fits : int
        Most multi-source fits of one ML stage (null fits of DET_ML, trial fits of the
        add step, refits): an iteration cap independent of the wall clock.  Once it is
        spent, no source is added and the sources below the threshold (but the one
        with the most counts) are dropped together.
    """

    det_ml_threshold: float = DEFAULT_DET_ML_THRESHOLD
    max_sources: int = 10
    max_additions: int = 4
    neighbour_radius: float = 3.0
    theta_tolerance: float = 1.0
    propose_level: float = 6.0
    max_trials: int = 2
    max_iter: int = 200
    coupling_tolerance: float = 0.01
    psf_systematic: float = DEFAULT_PSF_SYSTEMATIC
    max_fits: int = 80


@dataclass
class MLState:
    """A fitted source list."""

    y: np.ndarray  # (S,)
    z: np.ndarray
    theta: np.ndarray  # (S,) arcmin, PSF angle used
    counts: np.ndarray  # (S, B)
    background: np.ndarray  # (B, K) background component amplitudes per band
    cstat: float
    solutions: list[AmplitudeSolution] = field(repr=False)
    converged: bool = True
    det_ml: np.ndarray | None = None
    null_cstat: np.ndarray | None = None
    #: Robust-gain factor of each source (``systematic.robust_factors``) and the DET_ML
    #: of the robust gain, on which the add and drop decisions are taken.
    robust_factor: np.ndarray | None = None
    robust_det_ml: np.ndarray | None = None
    #: Source index of each amplitude in ``solutions`` (fits list moving sources first).
    order: np.ndarray | None = None

    @property
    def n_sources(self) -> int:
        return int(self.y.size)

    def warm(self, order: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Warm start of the amplitudes (optionally re-ordered / subset of sources)."""
        idx = np.arange(self.n_sources) if order is None else np.asarray(order)
        return [(self.counts[idx, b], np.asarray(self.background[b], float)) for b in range(self.counts.shape[1])]

    def without(self, index: int) -> MLState:
        """The state with source ``index`` removed (not refitted)."""
        keep = np.arange(self.n_sources) != index
        return replace(
            self,
            y=self.y[keep],
            z=self.z[keep],
            theta=self.theta[keep],
            counts=self.counts[keep],
            det_ml=None if self.det_ml is None else self.det_ml[keep],
            null_cstat=None if self.null_cstat is None else self.null_cstat[keep],
            robust_factor=None if self.robust_factor is None else self.robust_factor[keep],
            robust_det_ml=None if self.robust_det_ml is None else self.robust_det_ml[keep],
            solutions=[],
            order=None,
        )


def _stack_frozen(parts: list[list[FrozenSources]]) -> list[FrozenSources] | None:
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return [FrozenSources.concat([p[b] for p in parts]) for b in range(len(parts[0]))]


@one_blas_thread
def fit_sources(
    problem: DetectionProblem,
    y: np.ndarray,
    z: np.ndarray,
    theta: np.ndarray | None = None,
    *,
    move: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    background: np.ndarray | None = None,
    extra: list[FrozenSources] | None = None,
    max_iter: int = 200,
) -> MLState:
    """Fit positions (of the ``move`` sources) and all amplitudes.

    Parameters
    ----------
    y, z : ndarray (S,)
        Starting positions.
    theta : ndarray (S,), optional
        Off-axis angles of the PSFs (default from the starting positions).
    move : ndarray of bool (S,), optional
        Sources whose positions are fitted (default: all); the others are held.
    counts, background : ndarray, optional
        Warm start of the amplitudes, (S, B) and (B,).
    extra : list of FrozenSources per band, optional
        Further sources at fixed positions (their counts are fitted too) that are not
        part of the returned state: the source held at a trial position of an error
        profile.

    Returns
    -------
    MLState
        Fitted state of the S sources; ``cstat`` includes the extra sources.
    """
    model = problem.model
    y = np.asarray(y, float).copy()
    z = np.asarray(z, float).copy()
    n_src = y.size
    theta = problem.theta(y, z) if theta is None else np.broadcast_to(np.asarray(theta, float), y.shape).copy()
    move = np.ones(n_src, bool) if move is None else np.asarray(move, bool)
    im = np.flatnonzero(move)
    ih = np.flatnonzero(~move)
    n_extra = 0 if extra is None else int(extra[0].tot.size)
    frozen = _stack_frozen([model.freeze(y[ih], z[ih], theta[ih]) if ih.size else None, extra])
    order = np.r_[im, ih]
    warm = None
    if counts is not None and background is not None:
        counts = np.asarray(counts, float).reshape(n_src, problem.n_bands)
        warm = [
            (np.r_[counts[order, b], np.full(n_extra, max(1.0, counts[:, b].mean() if n_src else 1.0))], np.asarray(background[b], float))
            for b in range(problem.n_bands)
        ]
    best = {"c": np.inf, "sols": None}
    # L-BFGS-B works on positions in units of about the statistical error: the
    # curvature of C in a source's position grows as its counts over the spot's width
    # squared, so in pixels a bright source's start Hessian (the identity) was off by
    # 10^2-10^4 and its line searches took dozens of evaluations.  Sources below
    # about one count per spot sigma keep pixels.
    if counts is not None:
        sigma_spot = problem.fwhm() / 2.3548
        scale_s = np.maximum(np.sqrt(np.maximum(counts[im].sum(axis=1), 0.0)) / sigma_spot, 1.0)
    else:
        scale_s = np.ones(im.size)
    scale = np.r_[scale_s, scale_s]

    def fun(xs):
        nonlocal warm
        k = im.size
        x = xs / scale
        cval, gy, gz, sols = model.profile(x[:k], x[k:], theta[im], warm, frozen=frozen)
        warm = [(s.counts, s.background) for s in sols]
        if cval < best["c"]:
            best["c"], best["sols"], best["x"] = cval, sols, x.copy()
        return cval, np.r_[gy, gz] / scale

    converged = True
    if im.size:
        (ylo, yhi), (zlo, zhi) = problem.bounds
        x0 = np.r_[np.clip(y[im], ylo, yhi), np.clip(z[im], zlo, zhi)]
        lo = np.r_[np.full(im.size, ylo), np.full(im.size, zlo)] * scale
        hi = np.r_[np.full(im.size, yhi), np.full(im.size, zhi)] * scale
        res = optimize.minimize(
            fun,
            x0 * scale,
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(lo, hi)),
            options={"maxiter": max_iter, "ftol": 1e-13, "gtol": 1e-6, "maxcor": 20},
        )
        converged = bool(res.success) or "ABNORMAL" in str(res.message)
        x = best["x"]
        y[im], z[im] = x[: im.size], x[im.size :]
        sols = best["sols"]
        cval = best["c"]
    else:
        cval, _, _, sols = model.profile(np.zeros(0), np.zeros(0), np.zeros(0), warm, frozen=frozen, gradient=False)
    # Amplitudes back in the caller's order (moving sources came first).
    fitted = np.zeros((n_src, problem.n_bands))
    for b, s in enumerate(sols):
        fitted[order, b] = s.counts[:n_src]
    bkg = np.array([s.background for s in sols])
    return MLState(y, z, theta, fitted, bkg, float(cval), sols, converged, order=order)


def neighbours(problem: DetectionProblem, state: MLState, index: int, radius_fwhm: float) -> np.ndarray:
    """Boolean mask of the sources coupled to source ``index``.

    Those within ``radius_fwhm`` spot FWHM of it, and those coupled to it through the
    cross arm of an out-of-field source (:func:`mxt_pipeline.detect.outfield.arm_coupled`):
    an out-of-field source's position along its arm trades with its counts, so it can
    absorb an in-field source on its arm however far apart the two positions are.
    """
    r = np.hypot(state.y - state.y[index], state.z - state.z[index])
    mask = (r < radius_fwhm * problem.fwhm()) | arm_coupled(problem, state.y, state.z, index)
    mask[index] = False
    return mask


def null_cstat(problem: DetectionProblem, state: MLState, index: int, params: MLParameters,
               shaped: DetectionProblem | None = None) -> float:
    """C of the best fit without source ``index`` (its neighbours re-optimised).

    The background keeps the shape of the full fit (its component amplitudes in the
    ratio fitted with all sources: :meth:`DetectionProblem.with_background_shape`), its
    level is refitted.  A background map given to the detection, as in ``emldetect``
    and ``ermldet``: with the sky and particle components both free in the null, the
    vignetted sky component (peaked on the optical axis) would absorb part of the broad
    image of a source near the axis (its arms and halo) and DET_ML would lose several
    units there; the shape is set by the whole chip, not by one source.
    """
    shaped = problem.with_background_shape(state.background) if shaped is None else shaped
    if shaped is not problem:
        problem = shaped
        state = replace(state, background=np.ones((problem.n_bands, 1)))
    near = neighbours(problem, state, index, params.neighbour_radius)
    reduced = state.without(index)
    move = np.delete(near, index)
    if reduced.n_sources == 0:
        move = np.zeros(0, bool)
    fit = fit_sources(
        problem,
        reduced.y,
        reduced.z,
        reduced.theta,
        move=move,
        counts=reduced.counts,
        background=state.background,
        max_iter=params.max_iter,
    )
    return min(fit.cstat, np.inf)


def detection_likelihoods(problem: DetectionProblem, state: MLState, params: MLParameters) -> MLState:
    """Fill ``det_ml`` and ``null_cstat`` of every source of ``state``."""
    shaped = problem.with_background_shape(state.background)
    nulls = np.array([null_cstat(problem, state, i, params, shaped) for i in range(state.n_sources)])
    # A null fit cannot be better than the full fit (nested models); tiny negative
    # differences are optimiser tolerance.
    nulls = np.maximum(nulls, state.cstat)
    state.null_cstat = nulls
    state.det_ml = det_ml(nulls - state.cstat, problem.n_bands)
    _robust(problem, state, params)
    return state


def _robust(problem: DetectionProblem, state: MLState, params: MLParameters) -> MLState:
    """Fill ``robust_factor`` and ``robust_det_ml`` (``null_cstat`` must be set)."""
    state.robust_factor = robust_factors(problem, state.y, state.z, state.theta, state.counts, state.background,
                                         params.psf_systematic)  # fmt: skip
    state.robust_det_ml = det_ml((state.null_cstat - state.cstat) * state.robust_factor, problem.n_bands)
    return state


class _Budget:
    """Count of the multi-source fits of one ML stage (``MLParameters.max_fits``)."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.used = 0

    def spend(self, n: int = 1) -> None:
        self.used += int(n)

    @property
    def spent(self) -> bool:
        return self.used >= self.limit


def _refresh_theta(problem: DetectionProblem, state: MLState, params: MLParameters, budget: _Budget | None = None
                   ) -> MLState:  # fmt: skip
    """Refit with the PSF at the fitted off-axis angles when they moved enough."""
    for _ in range(3):
        theta = problem.theta(state.y, state.z)
        if state.n_sources == 0 or np.all(np.abs(theta - state.theta) <= params.theta_tolerance):
            break
        if budget is not None:
            budget.spend()
        state = fit_sources(
            problem, state.y, state.z, theta, counts=state.counts, background=state.background, max_iter=params.max_iter
        )
    return state


@one_blas_thread
def run_ml(
    problem: DetectionProblem,
    y0: np.ndarray,
    z0: np.ndarray,
    counts0: np.ndarray | None = None,
    background0: np.ndarray | None = None,
    params: MLParameters | None = None,
) -> MLState:
    """The ML stage: fit, drop weak sources, add sources on the residuals, final DET_ML.

    The add and drop decisions use the robust gain (statistical gain times the robust
    factor, :mod:`~mxt_pipeline.detect.systematic`), so the PSF-model mismatch around a
    bright source does not grow spurious companions; the number of multi-source fits
    is capped by ``params.max_fits``.

    Parameters
    ----------
    y0, z0 : ndarray
        Initial positions (stage 1).
    counts0, background0 : ndarray, optional
        Initial amplitudes (stage 1).

    Returns
    -------
    MLState
        Sources with robust DET_ML >= threshold (possibly none), with ``det_ml`` (the
        statistical DET_ML), ``robust_det_ml`` and ``robust_factor`` filled.
    """
    params = params or MLParameters()
    budget = _Budget(params.max_fits)
    y0 = np.asarray(y0, float)[: params.max_sources]
    z0 = np.asarray(z0, float)[: params.max_sources]
    if counts0 is not None:
        counts0 = np.asarray(counts0, float)[: params.max_sources]
    budget.spend()
    state = fit_sources(problem, y0, z0, counts=counts0, background=background0, max_iter=params.max_iter)
    state = _refresh_theta(problem, state, params, budget)
    state = _drop_weak(problem, state, params, budget)
    for _ in range(params.max_additions):
        if state.n_sources >= params.max_sources or budget.spent:
            break
        grown = _try_add(problem, state, params, budget)
        if grown is None:
            break
        state = _drop_weak(problem, grown, params, budget)
    return state


def _drop_weak(problem: DetectionProblem, state: MLState, params: MLParameters, budget: _Budget) -> MLState:
    """Drop the weakest source (robust DET_ML) below the threshold and refit, until none.

    Once the fit budget is spent, all the sources below the threshold but the one with
    the most counts go at once.
    """
    while True:
        if state.n_sources == 0:
            state.det_ml = np.zeros(0)
            state.null_cstat = np.zeros(0)
            state.robust_factor = np.zeros(0)
            state.robust_det_ml = np.zeros(0)
            return state
        budget.spend(state.n_sources)
        state = detection_likelihoods(problem, state, params)
        weak = state.robust_det_ml < params.det_ml_threshold
        if not np.any(weak):
            return state
        if budget.spent and np.count_nonzero(weak) > 1:
            # All the weak sources but the one with the most counts: when they are the
            # pieces of one source split by the model's mismatch, that one takes their
            # counts back in the refit.
            drop = np.flatnonzero(weak)
            drop = drop[drop != drop[np.argmax(state.counts[drop].sum(axis=1))]]
        else:
            drop = np.array([int(np.argmin(state.robust_det_ml))])
        keep = np.setdiff1d(np.arange(state.n_sources), drop)
        reduced = _subset(state, keep)
        budget.spend()
        state = fit_sources(
            problem,
            reduced.y,
            reduced.z,
            reduced.theta,
            counts=reduced.counts,
            background=state.background,
            max_iter=params.max_iter,
        )
        state = _refresh_theta(problem, state, params, budget)


def _subset(state: MLState, keep: np.ndarray) -> MLState:
    """The state restricted to the sources ``keep`` (not refitted)."""
    out = state
    for i in sorted(set(range(state.n_sources)) - {int(k) for k in keep}, reverse=True):
        out = out.without(i)
    return out


def _try_add(problem: DetectionProblem, state: MLState, params: MLParameters, budget: _Budget) -> MLState | None:
    """One add round: the best proposal that reaches the threshold, refitted; or None.

    Each candidate is first fitted with only itself and its neighbours moving (the
    other sources keep their positions, all amplitudes are refitted): this is the
    expensive part of a full refit when the candidate is a noise peak.  A candidate
    whose robust gain (statistical gain times its robust factor against the other
    sources of the trial fit) reaches the threshold this way is kept and the whole
    list refitted.
    """
    base = problem.model.model_images(state.y, state.z, state.theta, state.counts, state.background)
    tried = 0
    needed = det_ml_gain(params.det_ml_threshold, problem.n_bands)
    # Out-of-field sources come from the projections of stage 1; here the residual
    # score-test map proposes the companions of fitted sources.
    for cand in propose(problem, base, level=params.propose_level, use_projections=False):
        if tried >= params.max_trials or budget.spent:
            break
        y = np.r_[state.y, cand.y]
        z = np.r_[state.z, cand.z]
        counts = np.vstack([state.counts, np.asarray(cand.counts)[None, :]])
        grown = MLState(y, z, problem.theta(y, z), counts, state.background, np.inf, [])
        move = neighbours(problem, grown, grown.n_sources - 1, params.neighbour_radius)
        # Away from the sources, refitting gains little over the proposal's own gain: a
        # candidate far below the gain the threshold needs is not worth a fit.  Within
        # two spot FWHM of a source, that source's refit can raise the gain a lot (a
        # pair fitted as one source): always tried.
        close = neighbours(problem, grown, grown.n_sources - 1, 2.0)
        if not np.any(close) and cand.gain < 0.5 * needed:
            continue
        tried += 1
        move[-1] = True
        budget.spend()
        trial = fit_sources(
            problem, y, z, grown.theta, move=move, counts=counts, background=state.background, max_iter=params.max_iter
        )
        # The current state is the best fit without the new source: it is the null,
        # with the background shape of the trial (as for DET_ML, :func:`null_cstat`).
        null = state.cstat
        shaped = problem.with_background_shape(trial.background)
        if shaped is not problem:
            null = max(null, fit_sources(shaped, state.y, state.z, state.theta, move=np.zeros(state.n_sources, bool),
                                         counts=state.counts, background=np.ones((problem.n_bands, 1))).cstat)
        gain = max(null - trial.cstat, 0.0)
        factor = robust_factors(problem, trial.y, trial.z, trial.theta, trial.counts, trial.background,
                                params.psf_systematic)[-1]  # fmt: skip
        if det_ml(np.array([gain * factor]), problem.n_bands)[0] >= params.det_ml_threshold:
            budget.spend()
            trial = fit_sources(
                problem, trial.y, trial.z, trial.theta, counts=trial.counts, background=trial.background,
                max_iter=params.max_iter,
            )
            return _refresh_theta(problem, trial, params, budget)
    return None
