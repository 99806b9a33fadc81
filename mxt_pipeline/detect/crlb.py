"""Cramer-Rao bound on the position of a point source, from the CALDB PSF.

Derivation.  The band images are independent Poisson counts ``c_bp`` with means
``m_bp(theta)``, ``theta = (y, z, N_1..N_B, B_1..B_B)`` (position, counts per band,
background per band; the model of :mod:`mxt_pipeline.detect.likelihood`)::

    ln L(theta) = sum_bp (c_bp ln m_bp - m_bp - ln c_bp!)

    d ln L / d theta_i = sum_bp (c_bp / m_bp - 1) d_i m_bp          (score)

The score has mean zero; since ``Var(c_bp) = m_bp`` and pixels are independent, its
covariance, the Fisher information, is::

    I_ij = E[score_i score_j] = sum_bp Var(c_bp) d_i m_bp d_j m_bp / m_bp^2
         = sum_bp d_i m_bp d_j m_bp / m_bp

(equivalently ``-E[d^2 ln L / d theta_i d theta_j]``, since the term with the second
derivative of m has zero mean).  With ``m_bp = g_p (N_b P_b(p | y, z)) + B_b t_bp``::

    d m / d y = N_b g_p dP_b/dy,   d m / d N_b = g_p P_b,   d m / d B_b = t_bp,

computed exactly from the separable PSF terms (dP/dy from the PSF density at the pixel
edges).  For any unbiased estimator ``Cov(theta_hat) >= I^-1``; the position block of
``I^-1`` (the inverse of the Schur complement ``I_pp - I_pn I_nn^-1 I_np``) is the
bound on the position with counts and background unknown (nuisance parameters), which
is the situation of the fit.  The maximum-likelihood estimator reaches it
asymptotically (many counts); the test suite checks the bound against a Monte-Carlo
of the fit, and against the textbook limit ``sigma^2 / N`` (plus the pixel term
``1/12``) for a Gaussian PSF without background.

The bound for the radial offset: for a 2-D Gaussian of covariance ``S`` the median of
``|x|`` is the radius holding probability 1/2
(:func:`mxt_pipeline.detect.radii.circular_radius`), ``sigma sqrt(2 ln 2)`` for a
circular one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.detect.problem import BandPSFLike
from mxt_pipeline.detect.radii import P_90, circular_radius
from mxt_pipeline.errors import MXTInputError

__all__ = ["PositionBound", "fisher_information", "position_bound"]


@dataclass(frozen=True)
class PositionBound:
    """The Cramer-Rao bound on a source position (pixels unless stated)."""

    covariance: np.ndarray  # (2, 2) bound on Cov(y, z)
    fisher: np.ndarray  # full Fisher information (2 + 2B square)
    median_offset: float  # median radial offset of a Gaussian with that covariance
    radius90: float  # radius holding 90%

    @property
    def sigma(self) -> np.ndarray:
        """1-sigma bounds on y and z."""
        return np.sqrt(np.diag(self.covariance))

    def median_offset_arcsec(self, pixel_arcsec: float = C.PIXEL_SCALE_ARCSEC) -> float:
        return self.median_offset * pixel_arcsec


def fisher_information(
    psfs: Sequence[BandPSFLike],
    y_edges: np.ndarray,
    z_edges: np.ndarray,
    y: float,
    z: float,
    counts: Sequence[float],
    background: Sequence[float],
    exposure: Sequence[np.ndarray] | np.ndarray | None = None,
    background_template: Sequence[np.ndarray] | None = None,
    theta: float = 0.0,
) -> np.ndarray:
    """Fisher information of (y, z, N_1..N_B, B_1..B_B) for one source.

    Parameters
    ----------
    psfs : sequence of BandPSFLike
        PSF of each band.
    y_edges, z_edges : ndarray
        Pixel edges of the grid.
    y, z : float
        Source position (pixels).
    counts, background : sequence of float
        Source counts and background per pixel of each band.
    exposure : ndarray or sequence of ndarray, optional
        Relative exposure per band (default 1 everywhere).
    background_template : sequence of ndarray, optional
        Background shape per band (default: the exposure).
    theta : float
        Off-axis angle of the PSF (arcmin).

    Returns
    -------
    ndarray (2 + 2B, 2 + 2B)
        A band with zero background has its background treated as known: its row and
        column are zero (a background level at its boundary 0 has no finite Fisher
        information), and :func:`position_bound` leaves it out of the inversion.
    """
    n_b = len(psfs)
    counts = np.asarray(counts, float)
    background = np.asarray(background, float)
    if counts.shape != (n_b,) or background.shape != (n_b,):
        raise MXTInputError("one count and one background value per band are needed")
    shape = (len(y_edges) - 1, len(z_edges) - 1)
    if exposure is None:
        exposure = [np.ones(shape)] * n_b
    elif isinstance(exposure, np.ndarray) and exposure.ndim == 2:
        exposure = [exposure] * n_b
    templates = background_template if background_template is not None else exposure
    n_par = 2 + 2 * n_b
    info = np.zeros((n_par, n_par))
    for b, psf in enumerate(psfs):
        t = psf.terms(y_edges, z_edges, [y], [z], theta, True)
        w, fy, fz, dfy, dfz = t.w[0], t.fy[0], t.fz[0], t.dfy[0], t.dfz[0]
        p = np.einsum("k,ki,kj->ij", w, fy, fz)
        dpy = np.einsum("k,ki,kj->ij", w, dfy, fz)
        dpz = np.einsum("k,ki,kj->ij", w, fy, dfz)
        g = np.asarray(exposure[b], float)
        tb = np.asarray(templates[b], float)
        m = counts[b] * g * p + background[b] * tb
        # Pixels with a vanishing model carry no information (their derivatives vanish
        # with it); the floor avoids dividing by denormal numbers.
        ok = m > 1e-200
        # Derivatives of m with respect to y, z, N_b, B_b (other bands' parameters: 0).
        derivs = np.zeros((n_par, int(ok.sum())))
        derivs[0] = (counts[b] * g * dpy)[ok]
        derivs[1] = (counts[b] * g * dpz)[ok]
        derivs[2 + b] = (g * p)[ok]
        if background[b] > 0:
            derivs[2 + n_b + b] = tb[ok]
        info += (derivs / m[ok][None, :]) @ derivs.T
    return info


def position_bound(
    psfs: Sequence[BandPSFLike],
    y_edges: np.ndarray,
    z_edges: np.ndarray,
    y: float,
    z: float,
    counts: Sequence[float],
    background: Sequence[float],
    **kwargs,
) -> PositionBound:
    """Cramer-Rao bound on (y, z) with counts and background as nuisance parameters.

    Keyword arguments go to :func:`fisher_information`.  Bands with zero counts and
    zero background carry no information and are dropped from the inversion.
    """
    info = fisher_information(psfs, y_edges, z_edges, y, z, counts, background, **kwargs)
    keep = np.flatnonzero(np.diag(info) > 0)
    if keep.size < 2 or keep[0] != 0 or keep[1] != 1:
        raise MXTInputError("the data hold no information on the position (no source counts)")
    cov_full = np.linalg.inv(info[np.ix_(keep, keep)])
    cov = cov_full[:2, :2]
    inv = np.linalg.inv(cov)
    return PositionBound(cov, info, circular_radius(0.5, inv), circular_radius(P_90, inv))
