"""An analytic lobster-eye PSF with known separable terms, independent of the CALDB.

Used to test the statistics of the detection on their own (the CALDB PSF is tested with
the real model in the other tests): a Gaussian spot, two cross arms (Cauchy along the
arm, Gaussian across it) and a broad Gaussian halo, all separable, so pixel fractions
are outer products of CDF differences (Gaussian and Cauchy CDFs written out here).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from mxt_pipeline.detect.likelihood import SeparableTerms


class _Gauss:
    def __init__(self, s):
        self.s = s

    def cdf(self, x):
        return special.ndtr(x / self.s)

    def pdf(self, x):
        return np.exp(-0.5 * (x / self.s) ** 2) / (self.s * np.sqrt(2 * np.pi))

    def rvs(self, n, rng):
        return rng.normal(0.0, self.s, n)


class _Cauchy:
    def __init__(self, g):
        self.g = g

    def cdf(self, x):
        return 0.5 + np.arctan(x / self.g) / np.pi

    def pdf(self, x):
        return 1.0 / (np.pi * self.g * (1.0 + (x / self.g) ** 2))

    def rvs(self, n, rng):
        return self.g * np.tan(np.pi * (rng.uniform(size=n) - 0.5))


class AnalyticLobsterPSF:
    """Spot + arms + halo with fixed parameters (pixels); energy and theta ignored."""

    def __init__(self, sigma=3.0, arm_gamma=6.0, halo_sigma=25.0, fractions=(0.5, 0.15, 0.15, 0.2)):
        self.sigma = float(sigma)
        self.arm_gamma = float(arm_gamma)
        self.halo_sigma = float(halo_sigma)
        self.w = np.asarray(fractions, dtype=float)
        # (distribution along y, distribution along z) per term.
        g = _Gauss(self.sigma)
        c = _Cauchy(self.arm_gamma)
        h = _Gauss(self.halo_sigma)
        self.dists = [(g, g), (c, g), (g, c), (h, h)]

    def fwhm(self, theta=0.0) -> float:
        return 2.0 * np.sqrt(2.0 * np.log(2.0)) * self.sigma

    def _frac(self, edges, c0, axis, derivatives):
        x = np.asarray(edges, float)[None, :] - np.asarray(c0, float)[:, None]
        f = np.stack([np.diff(d[axis].cdf(x), axis=-1) for d in self.dists], axis=1)
        if not derivatives:
            return f, None
        df = np.stack([-np.diff(d[axis].pdf(x), axis=-1) for d in self.dists], axis=1)
        return f, df

    def terms(self, y_edges, z_edges, y, z, theta=None, derivatives=False) -> SeparableTerms:
        fy, dfy = self._frac(y_edges, y, 0, derivatives)
        fz, dfz = self._frac(z_edges, z, 1, derivatives)
        w = np.broadcast_to(self.w, (len(np.atleast_1d(y)), self.w.size)).copy()
        return SeparableTerms(w, fy, fz, dfy, dfz)

    def pixel_fractions(self, y_edges, z_edges, y0, z0, theta=0.0):
        """Dense pixel integral, written without the separable terms (reference)."""
        yc = np.asarray(y_edges, float) - y0
        zc = np.asarray(z_edges, float) - z0
        out = 0.0
        for w, (dy, dz) in zip(self.w, self.dists):
            # F(y1, z1) - F(y0, z1) - F(y1, z0) + F(y0, z0) of the 2-D CDF of the term.
            cdf2 = dy.cdf(yc)[:, None] * dz.cdf(zc)[None, :]
            out = out + w * (cdf2[1:, 1:] - cdf2[:-1, 1:] - cdf2[1:, :-1] + cdf2[:-1, :-1])
        return out

    def sample(self, n, rng):
        """Photon offsets (dy, dz) from the PSF: pick a term by weight, then each axis."""
        which = rng.choice(len(self.w), size=n, p=self.w / self.w.sum())
        dy = np.empty(n)
        dz = np.empty(n)
        for k, (d_y, d_z) in enumerate(self.dists):
            sel = which == k
            dy[sel] = d_y.rvs(int(sel.sum()), rng)
            dz[sel] = d_z.rvs(int(sel.sum()), rng)
        return dy, dz

    def terms_function(self, y_edges, z_edges):
        """A likelihood TermsFunction (same PSF in every band)."""

        def fn(b, y, z, theta, derivatives):
            return self.terms(y_edges, z_edges, y, z, theta, derivatives)

        return fn


class EnergyLobsterPSF:
    """A PSFModel-like double: the analytic PSF with energy- and angle-dependent widths.

    Methods follow the CALDB contract (``density``, ``pixel_fractions``, ``fwhm_spot``):
    the spot sigma grows as ``sigma0 (1 + 0.05 E / keV) (1 + theta / 100 arcmin)``, the
    arms and halo keep their shapes, the spot fraction falls with energy.
    """

    def __init__(self, sigma0=2.5, arm_gamma=8.0, halo_sigma=30.0):
        self.sigma0, self.arm_gamma, self.halo_sigma = sigma0, arm_gamma, halo_sigma

    def at(self, energy, theta=0.0):
        sigma = self.sigma0 * (1 + 0.05 * float(energy)) * (1 + float(theta) / 100.0)
        f_spot = 0.55 - 0.02 * float(energy)
        f_arm = 0.15
        return AnalyticLobsterPSF(sigma, self.arm_gamma, self.halo_sigma, (f_spot, f_arm, f_arm, 1 - f_spot - 2 * f_arm))

    def density(self, dy, dz, energy, theta=0.0):
        p = self.at(energy, theta)
        out = 0.0
        for w, (a, b) in zip(p.w, p.dists):
            out = out + w * a.pdf(np.asarray(dy, float)) * b.pdf(np.asarray(dz, float))
        return out

    def pixel_fractions(self, y_edges, z_edges, y0, z0, energy, theta=0.0):
        return self.at(energy, theta).pixel_fractions(y_edges, z_edges, y0, z0)

    def fwhm_spot(self, energy, theta=0.0):
        return self.at(energy, theta).fwhm()
