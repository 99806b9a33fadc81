"""Confused pairs: a likelihood-ratio test for a second component near a bright source.

The add step of the ML stage (:func:`mxt_pipeline.detect.mlfit.run_ml`) proposes a new
source where the residuals of the fitted list have a positive score and keeps it when its
robust DET_ML reaches the list's threshold.  That threshold is set for a search over the
whole field (about 0.5 false sources per 100 fields), and a faint companion one spot FWHM
from a source five times brighter rarely passes it: the bright source, fitted alone, has
already moved towards the companion and taken about half of its counts, so the residual
score at the companion is small, and the companion's DET_ML, with the bright source
re-optimised in its null fit, is about 5-9 for a 100-count companion of a 500-count
source.  Missed, it leaves the bright source pulled about 40" towards it, outside its R90.

The pair test asks a local question instead: after the ML stage, is each bright source
(``PairTestParameters.min_counts`` counts or more, in the field) better described by two
components?  The alternative is fitted from a few starts (the local maxima of the score
map of the residuals within ``search_radius`` spot FWHM of the source, the source moved
back along the line by the share the companion's counts would have pulled it), the source,
the companion and their neighbours moving and every amplitude refitted.  The statistic is
the robust likelihood gain of the companion, ``(C_one - C_two) f``, with ``f`` the
robust-gain factor of :mod:`~mxt_pipeline.detect.systematic` (so a bright source's PSF
mismatch does not split it, as in the add step).  Under the null hypothesis of a single
source the companion's position is not identified (Davies' problem), so the statistic has
no chi-square law: the threshold is calibrated by simulating single sources with the
detection itself (``python -m mxt_pipeline.acceptance.outfield_pairs --calibrate-pairs N``,
the false-split rate per tested source against the threshold;
:data:`DEFAULT_PAIR_THRESHOLD`).  The local search looks at a few spot areas instead of
the whole field, so a far lower gain than the list's threshold keeps false splits rare.

A source whose best companion is plausible but not accepted (robust gain between
:data:`DEFAULT_CONFUSION_LEVEL`, the 90% quantile of the calibration, and the threshold)
may be a pair whose faint member was missed, and then its fitted position is pulled
towards that member.  Its error radii get a confusion term: the distance the
two-component fit moved it is added to its R68 and R90.

A companion accepted this way is kept even when its DET_ML is below the list's threshold:
it is listed with the ``PAIR`` flag (:data:`mxt_pipeline.detect.srclist.FLAG_PAIR`) and its
DET_ML, so that the list says why it is there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mxt_pipeline.detect.mlfit import (
    MLParameters,
    MLState,
    detection_likelihoods,
    fit_sources,
    neighbours,
)
from mxt_pipeline.detect.outfield import outside_field
from mxt_pipeline.detect.problem import DetectionProblem
from mxt_pipeline.detect.radii import det_ml
from mxt_pipeline.detect.search import ts_map
from mxt_pipeline.detect.systematic import robust_factors

__all__ = ["DEFAULT_PAIR_THRESHOLD", "PairTestParameters", "PairTrial", "split_gain", "split_pairs"]

#: Robust likelihood gain ``C_one - C_two`` (times the robust factor) a companion needs.
#: Calibrated on simulated single sources of 300, 1000 and 3000 counts on the standard
#: background with the detection itself (reports/examples/pair_calibration_n200_seed7321.json,
#: command in docs/detection.md): the pooled 99% quantile of 600 sources, whose robust
#: split gain does not depend on the counts (7 of 600 at or above it).
DEFAULT_PAIR_THRESHOLD = 16.6
#: Robust gain above which a companion, though not accepted, is plausible enough that the
#: source's error radii take the shift it would cause (the confusion term): the pooled
#: 90% quantile of the same calibration (10% of single sources get it).
DEFAULT_CONFUSION_LEVEL = 11.0


@dataclass(frozen=True)
class PairTestParameters:
    """Settings of the pair test.

    Attributes
    ----------
    enabled : bool
        Run the test.
    threshold : float
        Least robust gain of an accepted companion (:data:`DEFAULT_PAIR_THRESHOLD`).
    min_counts : float
        Sources with at least these counts (all bands) are tested.
    search_radius : float
        Companion starts within this many spot FWHM of the source.
    n_starts : int
        Starts of the two-component fit per tested source.
    confusion_level : float
        Least robust gain of a rejected companion whose shift of the source is added to
        the source's error radii (:data:`DEFAULT_CONFUSION_LEVEL`).
    """

    enabled: bool = True
    threshold: float = DEFAULT_PAIR_THRESHOLD
    min_counts: float = 250.0
    search_radius: float = 1.5
    n_starts: int = 3
    confusion_level: float = DEFAULT_CONFUSION_LEVEL


@dataclass(frozen=True)
class PairTrial:
    """The best two-component fit of one tested source."""

    index: int
    gain: float
    robust_gain: float
    state: MLState | None


def _starts(problem: DetectionProblem, state: MLState, index: int, pp: PairTestParameters) -> list[tuple[float, float, np.ndarray]]:
    """Companion starts: local maxima of the residual score map near the source."""
    base = problem.model.model_images(state.y, state.z, state.theta, state.counts, state.background)
    ts, counts = ts_map(problem, base)
    fwhm = problem.fwhm()
    yc, zc = problem.y_centres, problem.z_centres
    r = np.hypot(yc[:, None] - state.y[index], zc[None, :] - state.z[index])
    disk = (r <= pp.search_radius * fwhm) & (r >= 0.25 * fwhm)
    width = max(1, int(round(0.25 * fwhm / problem.pixel)))
    peak = ndimage.maximum_filter(np.where(disk, ts, 0.0), size=2 * width + 1, mode="nearest")
    iy, iz = np.nonzero(disk & (ts >= peak) & (ts > 0))
    order = np.argsort(ts[iy, iz])[::-1][: pp.n_starts]
    return [(float(yc[iy[k]]), float(zc[iz[k]]), counts[:, iy[k], iz[k]]) for k in order]


def split_gain(problem: DetectionProblem, state: MLState, index: int, params: MLParameters,
               pp: PairTestParameters) -> PairTrial:  # fmt: skip
    """The best two-component fit of source ``index`` and its (robust) gain over one.

    Parameters
    ----------
    state : MLState
        The fitted list (``cstat`` is the one-component C).

    Returns
    -------
    PairTrial
        ``state`` is the fit with the companion appended as the last source (None when
        no start was found); ``gain`` its ``C_one - C_two`` and ``robust_gain`` that gain
        times the companion's robust factor.
    """
    best = PairTrial(index, 0.0, 0.0, None)
    n = state.n_sources
    for yc, zc, c_guess in _starts(problem, state, index, pp):
        c_guess = np.maximum(np.asarray(c_guess, float), 1.0)
        share = float(c_guess.sum() / max(state.counts[index].sum(), 1.0))
        # The lone fit was pulled towards the companion by about its share of the counts.
        y = np.r_[state.y, yc]
        z = np.r_[state.z, zc]
        y[index] -= share * (yc - state.y[index])
        z[index] -= share * (zc - state.z[index])
        counts = np.vstack([state.counts, c_guess[None, :]])
        counts[index] = np.maximum(state.counts[index] - c_guess, 1.0)
        grown = MLState(y, z, problem.theta(y, z), counts, state.background, np.inf, [])
        move = neighbours(problem, grown, n, params.neighbour_radius)
        move[index] = True
        move[n] = True
        trial = fit_sources(problem, y, z, grown.theta, move=move, counts=counts, background=state.background,
                            max_iter=params.max_iter)  # fmt: skip
        gain = max(state.cstat - trial.cstat, 0.0)
        factor = robust_factors(problem, trial.y, trial.z, trial.theta, trial.counts, trial.background,
                                params.psf_systematic)[-1]  # fmt: skip
        if gain * factor > best.robust_gain:
            best = PairTrial(index, gain, gain * factor, trial)
    return best


def split_pairs(problem: DetectionProblem, state: MLState, params: MLParameters,
                pp: PairTestParameters | None = None) -> tuple[MLState, np.ndarray, np.ndarray]:  # fmt: skip
    """Test every bright in-field source for a companion; add those that pass.

    Sources are tested in decreasing counts; an accepted companion is appended, the whole
    list refitted and the DET_ML of every source recomputed before the next test.
    Companions are not tested themselves.

    Returns
    -------
    state : MLState
        The list with the companions appended (``det_ml`` etc. filled).
    companion : ndarray of bool (S,)
        True for the sources added by the test.
    shift : ndarray (S,)
        The confusion term of each source (pixels): where the best rejected companion
        reached ``confusion_level``, how far the two-component fit moved the source
        (its error radii are widened by it); 0 elsewhere.
    """
    pp = pp or PairTestParameters()
    companion = np.zeros(state.n_sources, bool)
    shift = np.zeros(state.n_sources)
    if not pp.enabled or state.n_sources == 0:
        return state, companion, shift
    tested: set[int] = set()
    while state.n_sources < params.max_sources:
        total = state.counts.sum(axis=1)
        eligible = (total >= pp.min_counts) & ~outside_field(problem, state.y, state.z) & ~companion
        candidates = [int(i) for i in np.argsort(-total) if eligible[i] and int(i) not in tested]
        if not candidates:
            break
        index = candidates[0]
        tested.add(index)
        trial = split_gain(problem, state, index, params, pp)
        if trial.state is None:
            continue
        if trial.robust_gain < pp.threshold:
            if trial.robust_gain >= pp.confusion_level:
                # Which member of the trial is this source: the one with more counts.
                k = index if trial.state.counts[index].sum() >= trial.state.counts[-1].sum() else -1
                shift[index] = float(np.hypot(trial.state.y[k] - state.y[index], trial.state.z[k] - state.z[index]))
            continue
        new = trial.state
        # The companion must be an in-field source of its own.
        if outside_field(problem, new.y[-1:], new.z[-1:])[0]:
            continue
        if new.counts[-1].sum() > new.counts[index].sum():
            # The fit may swap the roles: the companion is the fainter member.
            swap = np.arange(new.n_sources)
            swap[[index, -1]] = swap[[-1, index]]
            new = MLState(new.y[swap], new.z[swap], new.theta[swap], new.counts[swap], new.background, new.cstat, [])
        refit = fit_sources(problem, new.y, new.z, new.theta, counts=new.counts, background=new.background,
                            max_iter=params.max_iter)  # fmt: skip
        state = detection_likelihoods(problem, refit, params)
        companion = np.r_[companion, True]
        shift = np.r_[shift, 0.0]
        _parent_det_ml(problem, state, index, state.n_sources - 1, params)
    return state, companion, shift


def _parent_det_ml(problem: DetectionProblem, state: MLState, index: int, partner: int, params: MLParameters) -> None:
    """DET_ML of the bright member of a pair, its companion held in the null fit.

    With the companion free, the null fit moves it onto the bright source, which then
    looks insignificant although it is the better-measured of the two; held at its
    position, the null asks whether a source is needed where the bright one is.
    """
    near = neighbours(problem, state, index, params.neighbour_radius)
    near[partner] = False
    reduced = state.without(index)
    move = np.delete(near, index)
    fit = fit_sources(problem, reduced.y, reduced.z, reduced.theta, move=move, counts=reduced.counts,
                      background=state.background, max_iter=params.max_iter)  # fmt: skip
    state.null_cstat[index] = max(fit.cstat, state.cstat)
    gain = state.null_cstat[index] - state.cstat
    state.det_ml[index] = det_ml(np.array([gain]), problem.n_bands)[0]
    state.robust_det_ml[index] = det_ml(np.array([gain * state.robust_factor[index]]), problem.n_bands)[0]
