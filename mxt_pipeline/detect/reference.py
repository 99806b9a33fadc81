"""An independent, straightforward fit of the same model: the check and the baseline.

The maximum-likelihood stage (:mod:`mxt_pipeline.detect.mlfit`) evaluates the model
through separable PSF terms, profiles the amplitudes out with a Newton solver and
optimises positions with analytic gradients.  This module fits the *same* model the
plain way: dense model images from the PSF's ``pixel_fractions`` (one 2-D array per
source and band, no separability used), the Cash statistic summed over every pixel,
and a general-purpose minimiser over all parameters at once (positions, counts per
band, background per band) with numerical derivatives:

* :func:`iminuit_fit` uses MINUIT's MIGRAD (``errordef = 1`` because C = -2 ln L +
  const, reference notes), the standard of X-ray source fitting;
* :func:`scipy_fit` uses L-BFGS-B with finite-difference gradients (the baseline of
  the speed benchmark).

Agreement of the two approaches on the best-fit position (within 1% of the error
radius) validates the fast path; the ratio of their run times is its speed-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from mxt_pipeline.detect.likelihood import MODEL_FLOOR
from mxt_pipeline.detect.problem import DetectionProblem

__all__ = ["DenseFit", "Fractions", "psf_fractions", "model_fractions", "dense_cstat", "iminuit_fit", "scipy_fit"]


@dataclass
class DenseFit:
    """Result of a dense reference fit."""

    y: np.ndarray
    z: np.ndarray
    counts: np.ndarray  # (S, B)
    background: np.ndarray  # (B * K,) background amplitudes, band-major
    cstat: float
    n_calls: int
    valid: bool


#: ``fractions(problem, band, y0, z0, theta) -> (ny, nz)`` dense pixel fractions.
Fractions = Callable[[DetectionProblem, int, float, float, float], np.ndarray]


def psf_fractions(problem: DetectionProblem, b: int, y0: float, z0: float, theta: float) -> np.ndarray:
    """The PSF's own ``pixel_fractions`` (for the CALDB PSF, its exact pixel integrals)."""
    return problem.psfs[b].pixel_fractions(problem.y_edges, problem.z_edges, y0, z0, theta)


def dense_cstat(
    problem: DetectionProblem,
    y: Sequence[float],
    z: Sequence[float],
    counts: np.ndarray,
    background: Sequence[float],
    theta: np.ndarray,
    fractions: Fractions = psf_fractions,
) -> float:
    """C of the model built as dense images (no separability, every pixel)."""
    total = 0.0
    counts = np.asarray(counts, float).reshape(len(y), problem.n_bands)
    background = problem.model.background_amplitudes(background)
    for b, data in enumerate(problem.bands):
        m = data.background_image(background[b])
        for s in range(len(y)):
            frac = fractions(problem, b, y[s], z[s], theta[s])
            m = m + counts[s, b] * data.exposure * frac
        usable = data.exposure > 0
        mu = m[usable]
        c = data.counts[usable]
        total += 2.0 * (mu.sum() - float(np.sum(c * np.log(np.maximum(mu, MODEL_FLOOR)))))
    return float(total)


def model_fractions(problem: DetectionProblem, b: int, y0: float, z0: float, theta: float) -> np.ndarray:
    """Dense pixel fractions of the fit's own PSF representation (its separable terms
    multiplied out into a full image): the baseline of the speed benchmark, which then
    differs from the fast path only in how the model and its optimum are computed."""
    return problem.psfs[b].terms(problem.y_edges, problem.z_edges, [y0], [z0], theta).image(0)


def _pack(y, z, counts, background):
    return np.r_[np.asarray(y, float), np.asarray(z, float), np.asarray(counts, float).ravel(), np.asarray(background, float).ravel()]


def _unpack(x, n_src, n_bands):
    y = x[:n_src]
    z = x[n_src : 2 * n_src]
    counts = x[2 * n_src : 2 * n_src + n_src * n_bands].reshape(n_src, n_bands)
    bkg = x[2 * n_src + n_src * n_bands :]
    return y, z, counts, bkg


def iminuit_fit(
    problem: DetectionProblem,
    y0: Sequence[float],
    z0: Sequence[float],
    counts0: np.ndarray,
    background0: Sequence[float],
    theta: np.ndarray | None = None,
    *,
    tol: float = 1e-4,
    fractions: Fractions = psf_fractions,
) -> DenseFit:
    """Fit all parameters with MINUIT (MIGRAD, errordef 1) on the dense model.

    Requires ``iminuit`` (pip extra ``validation``).
    """
    from mxt_pipeline.extras import require

    Minuit = require("iminuit", "validation", "the MINUIT reference fit").Minuit

    n_src = len(y0)
    theta = problem.theta(y0, z0) if theta is None else np.asarray(theta, float)
    x0 = _pack(y0, z0, counts0, background0)

    def fcn(x):
        y, z, c, b = _unpack(np.asarray(x), n_src, problem.n_bands)
        return dense_cstat(problem, y, z, c, b, theta, fractions)

    m = Minuit(fcn, x0)
    m.errordef = Minuit.LEAST_SQUARES  # = 1: C is -2 ln L + const
    m.tol = tol
    m.strategy = 2
    (ylo, yhi), (zlo, zhi) = problem.bounds
    limits = [(ylo, yhi)] * n_src + [(zlo, zhi)] * n_src
    limits += [(0.0, None)] * (n_src * problem.n_bands) + [(1e-12, None)] * np.size(background0)
    m.limits = limits
    # Step sizes: a fraction of a pixel for positions, of sqrt(N) for amplitudes.
    steps = np.r_[np.full(2 * n_src, 0.1), 0.1 * np.sqrt(np.maximum(np.ravel(counts0), 1.0)), 0.05 * np.maximum(np.ravel(background0), 1e-6)]
    m.errors = steps
    m.migrad(ncall=100_000)
    y, z, c, b = _unpack(np.asarray(m.values), n_src, problem.n_bands)
    return DenseFit(y.copy(), z.copy(), c.copy(), b.copy(), float(m.fval), int(m.nfcn), bool(m.valid))


def scipy_fit(
    problem: DetectionProblem,
    y0: Sequence[float],
    z0: Sequence[float],
    counts0: np.ndarray,
    background0: Sequence[float],
    theta: np.ndarray | None = None,
    *,
    max_iter: int = 500,
    fractions: Fractions = psf_fractions,
) -> DenseFit:
    """Fit all parameters with L-BFGS-B and finite-difference gradients (dense model).

    Parameters are scaled to order unity (counts by their start, background by its
    start) so that one finite-difference step suits them all.
    """
    n_src = len(y0)
    theta = problem.theta(y0, z0) if theta is None else np.asarray(theta, float)
    counts0 = np.maximum(np.asarray(counts0, float), 1.0)
    background0 = np.maximum(np.asarray(background0, float).ravel(), 1e-6)
    scale = _pack(np.ones(n_src), np.ones(n_src), counts0, background0)
    n_calls = 0

    def fcn(u):
        nonlocal n_calls
        n_calls += 1
        y, z, c, b = _unpack(u * scale, n_src, problem.n_bands)
        return dense_cstat(problem, y, z, c, b, theta, fractions)

    (ylo, yhi), (zlo, zhi) = problem.bounds
    bounds = [(ylo, yhi)] * n_src + [(zlo, zhi)] * n_src
    bounds += [(0.0, None)] * (n_src * problem.n_bands) + [(1e-9, None)] * background0.size
    res = optimize.minimize(
        fcn,
        _pack(y0, z0, counts0, background0) / scale,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iter, "ftol": 1e-12, "gtol": 1e-6, "eps": 1e-7},
    )
    y, z, c, b = _unpack(res.x * scale, n_src, problem.n_bands)
    return DenseFit(y.copy(), z.copy(), c.copy(), b.copy(), float(res.fun), n_calls, bool(res.success))
