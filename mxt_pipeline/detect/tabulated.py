"""Separable terms of a PSF known only through its density, by cross approximation.

The likelihood engine needs the PSF of a band as a short sum of separable terms with
1-D cumulative integrals (:class:`~mxt_pipeline.detect.likelihood.SeparableTerms`).  The
CALDB PSF is such a sum (spot, two cross arms, halo: CALDB contract), and a band
average is a weighted mixture of them over energy, so its density ``D(dy, dz)`` is a
matrix of low rank.  This module recovers a separable form from the density alone
(the documented ``PSFModel.density``), without depending on how the model stores its
components:

1. **Cross approximation** (adaptive cross approximation with full pivoting, Bebendorf
   2000; Tyrtyshnikov's skeleton decomposition): on a sample grid (fine near the core,
   geometric out to ``extent``; rows and columns weighted by the square root of their
   cell widths, so the error is measured in probability), the residual's largest entry
   picks a pivot row and column; the cross they form is subtracted; repeat until the
   residual is below ``tol`` of the largest entry.  For a sum of K separable products
   this stops after K steps with an exact decomposition.
2. **Factors on fine 1-D grids.**  Each cross factor is a combination of 1-D slices of
   the density, ``u_r(y) = D(y, z_r) - sum_{q<r} u_q(y) v_q(z_r)`` and
   ``v_r(z) = (D(y_r, z) - sum_{q<r} u_q(y_r) v_q(z)) / pivot_r``, evaluated on grids of
   step ``step`` pixels over +/- ``extent``.
3. **Cumulative integrals.**  Simpson's rule on the cells (the factors are also
   evaluated at the cell midpoints) gives the 1-D CDF of every factor at the nodes; between nodes the CDF is the cubic Hermite interpolant of
   (CDF, density), whose derivative is continuous, so pixel fractions (CDF differences)
   and their derivatives with respect to the source position (minus density
   differences) are consistent to round-off, as L-BFGS needs.

Accuracy: for profiles wider than a few tenths of a pixel, Simpson's rule at
``step = 1/16`` pixel is exact to about 1e-8 of the PSF; the mass beyond
``extent`` (the far tails of the arms) is left out, a fraction ``2 gamma / (pi extent)``
of a Cauchy arm's flux (about 0.6% of the arm for gamma = 10 px, extent = 1024 px),
which biases counts, not positions.  The tests compare with the model's own exact
``pixel_fractions``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mxt_pipeline.detect._newton import HAVE_NUMBA
from mxt_pipeline.detect.likelihood import SeparableTerms
from mxt_pipeline.errors import MXTCalibrationError

if HAVE_NUMBA:
    import numba

__all__ = ["TabulatedSeparable", "sample_grid", "cross_approximation"]


def sample_grid(extent: float, core: float = 16.0, core_step: float = 0.25, n_outer: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric sample points and their cell widths: uniform in the core, geometric outside."""
    inner = np.arange(-core, core + 0.5 * core_step, core_step)
    outer = np.geomspace(core + core_step, extent, n_outer)
    pts = np.r_[-outer[::-1], inner, outer]
    edges = np.r_[pts[0] - 0.5 * (pts[1] - pts[0]), 0.5 * (pts[1:] + pts[:-1]), pts[-1] + 0.5 * (pts[-1] - pts[-2])]
    return pts, np.diff(edges)


def cross_approximation(matrix: np.ndarray, tol: float, max_rank: int) -> tuple[list[int], list[int]]:
    """Pivot rows and columns of the adaptive cross approximation with full pivoting."""
    resid = np.array(matrix, dtype=float, copy=True)
    scale = float(np.max(np.abs(resid)))
    rows: list[int] = []
    cols: list[int] = []
    for _ in range(max_rank):
        i, j = np.unravel_index(int(np.argmax(np.abs(resid))), resid.shape)
        piv = resid[i, j]
        if abs(piv) <= tol * scale:
            break
        rows.append(int(i))
        cols.append(int(j))
        resid -= np.outer(resid[:, j], resid[i, :] / piv)
    return rows, cols


def _hermite_on_grid(cdf, f, step, i0, t, m, n_edges, derivative, val, der):
    """Compiled body of :meth:`_Factor1D.evaluate_grid`: ``val[s, r, k]``, ``der[s, r, k]``.

    The same cubic Hermite formulas as the numpy version, one pass over the outputs
    (the arrays are small: the per-call overhead of a dozen numpy operations dominated
    the evaluation of the likelihood's PSF terms).
    """
    n_rank = cdf.shape[0]
    for s in range(i0.size):
        tt = t[s]
        t2 = tt * tt
        t3 = t2 * tt
        h00 = 2.0 * t3 - 3.0 * t2 + 1.0
        h01 = -2.0 * t3 + 3.0 * t2
        h10 = (t3 - 2.0 * t2 + tt) * step
        h11 = (t3 - t2) * step
        d0 = (6.0 * t2 - 6.0 * tt) / step
        d10 = 3.0 * t2 - 4.0 * tt + 1.0
        d11 = 3.0 * t2 - 2.0 * tt
        for r in range(n_rank):
            for k in range(n_edges):
                i = i0[s] + m * k
                ca = cdf[r, i]
                cb = cdf[r, i + 1]
                fa = f[r, i]
                fb = f[r, i + 1]
                val[s, r, k] = h00 * ca + h01 * cb + h10 * fa + h11 * fb
                if derivative:
                    der[s, r, k] = d0 * (ca - cb) + d10 * fa + d11 * fb


if HAVE_NUMBA:
    _hermite_on_grid = numba.njit(cache=True)(_hermite_on_grid)


class _Factor1D:
    """Tabulated 1-D functions on a uniform grid with Hermite-interpolated CDFs.

    ``values`` are given on a grid of half the node spacing (2 n - 1 points): the cell
    integrals between nodes use Simpson's rule (error of order step^4).
    """

    def __init__(self, x0: float, step: float, values: np.ndarray) -> None:
        self.x0 = float(x0)
        self.step = float(step)
        nodes = values[:, ::2]
        mids = values[:, 1::2]
        self.f = np.ascontiguousarray(nodes)  # (R, n) densities at the nodes
        cells = (nodes[:, :-1] + 4.0 * mids + nodes[:, 1:]) * (step / 6.0)
        cum = np.cumsum(cells, axis=1)
        self.cdf = np.ascontiguousarray(np.concatenate([np.zeros((values.shape[0], 1)), cum], axis=1))
        self.n = nodes.shape[1]

    def evaluate_grid(
        self, e0: float, de: float, n_edges: int, c0: np.ndarray, derivative: bool
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """:meth:`evaluate` at ``e0 + k de - c0_s`` (k < n_edges) for every source s.

        When ``de`` is a whole number of table steps, every edge of one source falls at
        the same fraction of a table cell, so the Hermite weights are four numbers per
        source and the table values are strided slices (no gathering).  Returns None
        when the fast path does not apply (the caller then uses :meth:`evaluate`).
        Arrays are (S, R, n_edges), source-major; compiled with numba when available.
        """
        ratio = de / self.step
        m = int(round(ratio))
        if m < 1 or abs(ratio - m) > 1e-9:
            return None
        u0 = (e0 - np.asarray(c0, float) - self.x0) / self.step
        i0 = np.floor(u0).astype(np.int64)
        if np.any(i0 < 0) or np.any(i0 + m * (n_edges - 1) + 1 > self.n - 1):
            return None
        if HAVE_NUMBA:
            frac = np.ascontiguousarray(u0 - i0)
            val = np.empty((i0.size, self.f.shape[0], n_edges))
            der = np.empty_like(val) if derivative else np.empty((0, 0, 0))
            _hermite_on_grid(self.cdf, self.f, self.step, np.ascontiguousarray(i0), frac, m, n_edges, derivative,
                             val, der)
            return val, (der if derivative else None)
        t = (u0 - i0)[None, :, None]
        t2 = t * t
        t3 = t2 * t
        idx = i0[:, None] + m * np.arange(n_edges)[None, :]  # (S, n_edges)
        c_a = self.cdf[:, idx]
        c_b = self.cdf[:, idx + 1]
        f_a = self.f[:, idx]
        f_b = self.f[:, idx + 1]
        val = (2 * t3 - 3 * t2 + 1) * c_a + (-2 * t3 + 3 * t2) * c_b + self.step * ((t3 - 2 * t2 + t) * f_a + (t3 - t2) * f_b)
        if not derivative:
            return val.transpose(1, 0, 2), None
        der = (6 * t2 - 6 * t) * (c_a - c_b) / self.step + (3 * t2 - 4 * t + 1) * f_a + (3 * t2 - 2 * t) * f_b
        return val.transpose(1, 0, 2), der.transpose(1, 0, 2)

    def evaluate(self, x: np.ndarray, derivative: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """CDF (R, *x.shape) of every factor at x, and its derivative (the density)."""
        u = (np.asarray(x, float) - self.x0) / self.step
        u = np.clip(u, 0.0, self.n - 1.0)
        i = np.minimum(u.astype(np.int64), self.n - 2)
        t = u - i
        t2 = t * t
        t3 = t2 * t
        h00 = 2 * t3 - 3 * t2 + 1
        h10 = t3 - 2 * t2 + t
        h01 = -2 * t3 + 3 * t2
        h11 = t3 - t2
        c0, c1 = self.cdf[:, i], self.cdf[:, i + 1]
        f0, f1 = self.f[:, i], self.f[:, i + 1]
        val = h00 * c0 + h10 * self.step * f0 + h01 * c1 + h11 * self.step * f1
        if not derivative:
            return val, None
        d00 = 6 * t2 - 6 * t
        d10 = 3 * t2 - 4 * t + 1
        d01 = -6 * t2 + 6 * t
        d11 = 3 * t2 - 2 * t
        der = (d00 * c0 + d01 * c1) / self.step + d10 * f0 + d11 * f1
        # Outside the table the CDF is flat (no mass beyond the extent).
        out = (np.asarray(x, float) < self.x0) | (np.asarray(x, float) > self.x0 + (self.n - 1) * self.step)
        return val, np.where(out, 0.0, der)


class TabulatedSeparable:
    """A PSF density turned into separable terms (see the module docstring).

    Parameters
    ----------
    density : callable
        ``density(dy, dz) -> ndarray`` (broadcasting), probability per pixel^2 at the
        offset (dy, dz) pixels from the source.
    fwhm : float
        FWHM of the central spot (pixels), reported by :meth:`fwhm`.
    extent : float
        Half-width (pixels) of the tables.
    step : float
        Node spacing (pixels) of the 1-D tables.
    tol : float
        Relative stopping level of the cross approximation.
    max_rank : int
        Most terms.
    """

    def __init__(
        self,
        density: Callable[[np.ndarray, np.ndarray], np.ndarray],
        fwhm: float,
        *,
        extent: float = 1024.0,
        step: float = 1.0 / 16.0,
        tol: float = 1e-7,
        max_rank: int = 24,
    ) -> None:
        self._fwhm = float(fwhm)
        # The sample grid only picks the pivots: a 32nd of the FWHM resolves the core
        # (a quarter pixel at least); the factors themselves come from the fine grids.
        pts, width = sample_grid(extent, core=max(16.0, 4.0 * fwhm), core_step=max(0.25, fwhm / 32.0))
        sample = np.asarray(density(pts[:, None], pts[None, :]), float)
        if sample.shape != (pts.size, pts.size) or not np.all(np.isfinite(sample)):
            raise MXTCalibrationError("PSF density: not a finite array of the requested shape")
        weighted = np.sqrt(width)[:, None] * sample * np.sqrt(width)[None, :]
        rows, cols = cross_approximation(weighted, tol, max_rank)
        if not rows:
            raise MXTCalibrationError("PSF density is zero on the sample grid")
        y_piv, z_piv = pts[rows], pts[cols]
        n = int(round(2 * extent / step)) + 1
        grid = -extent + 0.5 * step * np.arange(2 * n - 1)  # nodes and midpoints
        # Residual crosses evaluated on the fine grids (recursion of the ACA).
        col_slices = np.asarray(density(grid[:, None], z_piv[None, :]), float).T  # (R, n): D(y, z_r)
        row_slices = np.asarray(density(y_piv[:, None], grid[None, :]), float)  # (R, n): D(y_r, z)
        d_pp = np.asarray(density(y_piv[:, None], z_piv[None, :]), float)  # (R, R): D(y_q, z_r)
        rank = len(rows)
        u = np.zeros((rank, grid.size))
        v = np.zeros((rank, grid.size))
        u_at_piv = np.zeros((rank, rank))  # u_q(y_r)
        v_at_piv = np.zeros((rank, rank))  # v_q(z_r)
        for r in range(rank):
            u[r] = col_slices[r] - v_at_piv[:r, r] @ u[:r]
            u_piv_r = d_pp[:, r] - u_at_piv[:r].T @ v_at_piv[:r, r] if r else d_pp[:, r].copy()
            piv = u_piv_r[r]
            v[r] = (row_slices[r] - u_at_piv[:r, r] @ v[:r]) / piv
            v_piv_r = (d_pp[r, :] - u_at_piv[:r, r] @ v_at_piv[:r]) / piv if r else d_pp[r, :] / piv
            u_at_piv[r] = u_piv_r
            v_at_piv[r] = v_piv_r
        self.rank = rank
        self.extent = float(extent)
        self._fy = _Factor1D(-extent, step, u)
        self._fz = _Factor1D(-extent, step, v)

    def fwhm(self, theta: float = 0.0) -> float:
        return self._fwhm

    def terms(self, y_edges, z_edges, y, z, theta=0.0, derivatives=False) -> SeparableTerms:
        """Separable terms of sources at (y, z) on the given pixel edges."""
        y = np.atleast_1d(np.asarray(y, float))
        z = np.atleast_1d(np.asarray(z, float))
        cy, dy = self._along(self._fy, np.asarray(y_edges, float), y, derivatives)  # (S, R, ny + 1)
        cz, dz = self._along(self._fz, np.asarray(z_edges, float), z, derivatives)
        fy = np.diff(cy, axis=2)
        fz = np.diff(cz, axis=2)
        w = np.ones((y.size, self.rank))
        if not derivatives:
            return SeparableTerms(w, fy, fz)
        return SeparableTerms(w, fy, fz, -np.diff(dy, axis=2), -np.diff(dz, axis=2))

    def pixel_fractions(self, y_edges, z_edges, y0, z0, theta=0.0) -> np.ndarray:
        return self.terms(y_edges, z_edges, [y0], [z0]).image(0)

    @staticmethod
    def _along(factor: _Factor1D, edges: np.ndarray, c0: np.ndarray, derivatives: bool):
        """CDF and density of every factor at the edges, (S, R, n_edges) each."""
        if edges.size > 2:
            step = np.diff(edges)
            if np.ptp(step) <= 1e-9 * max(1.0, abs(step[0])):  # uniform pixel edges
                fast = factor.evaluate_grid(float(edges[0]), float(step[0]), edges.size, c0, derivatives)
                if fast is not None:
                    return fast
        val, der = factor.evaluate(edges[None, :] - c0[:, None], derivatives)
        return val.transpose(1, 0, 2), (None if der is None else der.transpose(1, 0, 2))
