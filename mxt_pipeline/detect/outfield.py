"""Sources outside the field of view, seen through their cross arms.

A lobster-eye optic focuses the photons reflected twice into the spot and those
reflected once into the two cross arms, which run through the spot along the detector
axes and reach far beyond it.  A bright source up to about twice the field's half-width
from the optical axis therefore lights a stripe across the chip while its spot falls
off it.  The detection models such a source like any other: the CALDB PSF of its
off-axis angle, its position free over the grid and a margin around it
(``DetectionParameters.margin``, 128 pixels, i.e. out to twice the half-width of the
field, 1.5x is required) -- stage 1 finds it from the narrow peak its arm makes in the
projection across the arm, and the ML stage fits it.

What this module adds is the coupling between such a source and the in-field sources
its arm crosses.  With the spot off the chip, the data constrain the source's position
along the arm only through the slow fall of the arm's brightness with distance: moving
the source outward and raising its counts leaves the arm nearly unchanged.  An in-field
source on the arm is therefore *not* independent of it, however far apart the two
positions are: a fit that moves only the in-field source's spatial neighbours lets the
out-of-field one absorb it (moved outward, with 2-3x its counts), and the add step
never finds the in-field source; its DET_ML, computed with the arm source held, is too
high.  :func:`arm_coupled` marks those pairs, and the ML stage
(:func:`mxt_pipeline.detect.mlfit.neighbours`) treats them as neighbours: re-optimised
together in the add step's trial fits, in the null fits of DET_ML and in the error
profiles.

:func:`outside_field` is the classification of the source list: a source whose fitted
position lies off the chip is listed with the ``OUT_OF_FOV`` flag
(:data:`mxt_pipeline.detect.srclist.FLAG_OUT_OF_FOV`) and quality factor 0, never as
an in-field source.
"""

from __future__ import annotations

import numpy as np

from mxt_pipeline.detect.problem import DetectionProblem

__all__ = ["ARM_HALF_WIDTH_FWHM", "DEPTH_STARTS", "outside_field", "arm_coupled", "relocate_edge_sources"]

#: Half-width, in spot FWHM, of the stripe along a cross arm in which another source is
#: coupled to an out-of-field source.  The arm's profile across itself is about as wide
#: as the spot; a source whose spot overlaps the arm by a FWHM shares its counts.
ARM_HALF_WIDTH_FWHM = 1.0
#: Starts of the out-of-field alternative of a source near an edge: depth beyond the
#: edge (spot FWHM) and the factor on its counts (the spot's light is off the chip).
DEPTH_STARTS = ((0.5, 3.0), (1.0, 5.0), (2.0, 10.0))


def outside_field(problem: DetectionProblem, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """True for positions outside the detection grid (the spot off the field of view).

    Parameters
    ----------
    problem : DetectionProblem
    y, z : ndarray
        Positions (DET pixels).

    Returns
    -------
    ndarray of bool
    """
    y = np.asarray(y, float)
    z = np.asarray(z, float)
    return (
        (y < problem.y_edges[0]) | (y > problem.y_edges[-1]) | (z < problem.z_edges[0]) | (z > problem.z_edges[-1])
    )


def arm_coupled(problem: DetectionProblem, y: np.ndarray, z: np.ndarray, index: int,
                half_width_fwhm: float = ARM_HALF_WIDTH_FWHM) -> np.ndarray:  # fmt: skip
    """Sources coupled to source ``index`` through the cross arm of an out-of-field one.

    Source j is coupled to source i when one of the two lies outside the field
    (:func:`outside_field`) and the other lies within ``half_width_fwhm`` spot FWHM of
    one of its cross arms (``|y_i - y_j|`` or ``|z_i - z_j|`` below that width: the arms
    run along the DET axes).

    Returns
    -------
    ndarray of bool (S,)
        False at ``index`` itself.
    """
    y = np.asarray(y, float)
    z = np.asarray(z, float)
    if y.size == 0:
        return np.zeros(0, bool)
    out = outside_field(problem, y, z)
    width = half_width_fwhm * problem.fwhm()
    aligned = (np.abs(y - y[index]) < width) | (np.abs(z - z[index]) < width)
    mask = aligned & (out | out[index])
    mask[index] = False
    return mask


def relocate_edge_sources(problem: DetectionProblem, state, params, edge_fwhm: float = 1.0):
    """Refit in-field sources near a chip edge as out-of-field sources when that fits better.

    The arm of a source just outside the field is brightest where it enters the chip,
    and an in-field source a FWHM or two inside the edge (its spot and its own arm) can
    take that light: the out-of-field source is then listed as an in-field one of a
    tenth of its counts.  For every in-field source within ``edge_fwhm`` spot FWHM of an
    edge, the alternative with the source beyond that edge, on the same line (its arm
    across the chip through the fitted position) and with more counts, is refitted from
    the starts :data:`DEPTH_STARTS` (the source and its neighbours moving).  Both hypotheses have
    the same parameters, so the one with the lower C wins; the alternative is kept only
    when the source stays outside the field.

    Parameters
    ----------
    state : MLState
        The fitted list (``det_ml`` is recomputed when a source moves out).
    params : MLParameters

    Returns
    -------
    MLState
    """
    from mxt_pipeline.detect.mlfit import detection_likelihoods, fit_sources, neighbours

    fwhm = problem.fwhm()
    changed = False
    for i in range(state.n_sources):
        if outside_field(problem, state.y[i : i + 1], state.z[i : i + 1])[0]:
            continue
        best = None
        for axis, edges in ((0, problem.y_edges), (1, problem.z_edges)):
            pos = state.y[i] if axis == 0 else state.z[i]
            for edge, side in ((edges[0], -1.0), (edges[-1], 1.0)):
                if abs(pos - edge) > edge_fwhm * fwhm:
                    continue
                for depth, gain in DEPTH_STARTS:
                    y, z = state.y.copy(), state.z.copy()
                    if axis == 0:
                        y[i] = edge + side * depth * fwhm
                    else:
                        z[i] = edge + side * depth * fwhm
                    counts = state.counts.copy()
                    counts[i] *= gain
                    move = neighbours(problem, state, i, params.neighbour_radius)
                    move[i] = True
                    trial = fit_sources(problem, y, z, problem.theta(y, z), move=move, counts=counts,
                                        background=state.background, max_iter=params.max_iter)  # fmt: skip
                    out = outside_field(problem, trial.y[i : i + 1], trial.z[i : i + 1])[0]
                    if out and trial.cstat < state.cstat and (best is None or trial.cstat < best.cstat):
                        best = trial
        if best is not None:
            state = fit_sources(problem, best.y, best.z, best.theta, counts=best.counts, background=best.background,
                                max_iter=params.max_iter)  # fmt: skip
            changed = True
    return detection_likelihoods(problem, state, params) if changed else state
