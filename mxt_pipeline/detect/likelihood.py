"""Cash statistic of point sources on binned band images, with analytic gradients.

Model (Cash 1979; the multi-band form of XMM ``emldetect``, Cruddace, Hasinger &
Schmitt 1988; eROSITA ``ermldet``).  For band ``b`` and pixel ``p`` the expected counts
are

    m_bp = g_bp * sum_s N_sb * P_b(p | y_s, z_s) + B_b * t_bp

* ``P_b(p | y, z)``: the probability that a photon of the band from a source at the
  continuous detector position ``(y, z)`` lands in pixel ``p`` (the CALDB PSF integrated
  over the pixel, normalised over the infinite plane, so a source whose spot lies off
  the chip still puts its cross arms on it);
* ``g_bp``: the relative exposure of the pixel in [0, 1] (bad pixels, chip coverage,
  good time and attitude motion; :mod:`mxt_pipeline.detect.images`);
* ``N_sb``: the source counts of the band that an unobstructed detector would have
  collected (all of the PSF, full exposure);
* ``sum_k B_bk t_bkp``: the background, a sum of components with non-negative linear
  amplitudes ``B_bk`` and fixed templates ``t_bkp`` (by default one component,
  ``t = g``: a flat background seen through the exposure; the detection fits two, the
  vignetted sky and the flat particle background, see :mod:`.images`).

(Below, "B" also stands for the vector of a band's background amplitudes.)

The statistic is ``C = 2 sum_bp (m_bp - c_bp ln m_bp)`` (the seed's formula; the
constant ``2 sum (c ln c - c)`` that turns it into the Poisson deviance is left out, so
only differences of C carry meaning).  Differences of C are distributed as a chi-square
in the large-count limit (Wilks), which sets the error levels (:mod:`.radii`).

Speed.  The CALDB PSF is a sum of separable terms ``w_k f_k(dy) g_k(dz)`` (central spot,
two cross arms, halo), so the pixel fractions of one source are
``P = sum_k w_k Fy_k (outer) Fz_k`` with 1-D arrays of CDF differences.  The statistic
never builds a model image:

* ``sum_p m_p`` needs ``sum_p g_p P(p) = sum_k w_k Fy_k . (g Fz_k)``: one matrix-vector
  product per term (a BLAS call), O(K * ny * nz) with a tiny constant;
* ``sum_p c_p ln m_p`` runs over the pixels that hold counts only (a few hundred to a
  few thousand in an MXT observation, against 65536 pixels), gathering the 1-D arrays.

Gradients with respect to the positions use the 1-D derivatives of the terms (PSF
densities at the pixel edges), so one evaluation with gradient costs about twice one
without.  The amplitudes ``N`` and ``B`` enter linearly: for fixed positions C is convex
in them and :func:`solve_amplitudes` finds them by a projected Newton method with the
exact Hessian; positions are then optimised on the *profile* ``min_{N,B} C`` whose
gradient is the partial derivative at the optimal amplitudes (envelope theorem).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mxt_pipeline.detect._newton import (
    _REL_NOISE,
    HAVE_NUMBA,
    gather_terms,
    gradient_sums,
    newton_amplitudes,
)
from mxt_pipeline.errors import MXTInputError

__all__ = [
    "SeparableTerms",
    "BandData",
    "TermsFunction",
    "CashModel",
    "AmplitudeSolution",
    "solve_amplitudes",
    "solve_linear_poisson",
    "FrozenSources",
    "cash_statistic",
]

#: Model values are floored here inside the logarithm (gammapy uses 1e-25 too): a pixel
#: with counts where the model vanishes would otherwise give an infinite statistic.
MODEL_FLOOR = 1e-25


@dataclass
class SeparableTerms:
    """Pixel fractions of S sources in one band as sums of K separable terms.

    The fraction of source ``s`` in pixel ``(i, j)`` is
    ``sum_k w[s, k] * fy[s, k, i] * fz[s, k, j]``.

    Attributes
    ----------
    w : ndarray, shape (S, K)
        Term weights (they sum to 1 over k for a PSF normalised on the infinite plane).
    fy, fz : ndarray, shape (S, K, ny) and (S, K, nz)
        Fraction of each 1-D term profile in each pixel row / column.
    dfy, dfz : ndarray or None
        Derivatives of ``fy`` with respect to the source coordinate ``y`` (and of ``fz``
        with respect to ``z``); None when not requested.
    """

    w: np.ndarray
    fy: np.ndarray
    fz: np.ndarray
    dfy: np.ndarray | None = None
    dfz: np.ndarray | None = None

    @property
    def n_sources(self) -> int:
        return int(self.w.shape[0])

    def image(self, index: int = 0) -> np.ndarray:
        """Dense (ny, nz) pixel-fraction image of source ``index`` (for checks and plots)."""
        return np.einsum("k,ki,kj->ij", self.w[index], self.fy[index], self.fz[index])


#: ``terms(band_index, y, z, theta, derivatives) -> SeparableTerms`` for sources at
#: detector positions (y, z) whose PSF is taken at off-axis angles ``theta`` (arcmin).
#: ``theta`` is held fixed during an optimisation (see :mod:`mxt_pipeline.detect.mlfit`)
#: so that the gradients stay exact.
TermsFunction = Callable[[int, np.ndarray, np.ndarray, np.ndarray, bool], SeparableTerms]


@dataclass
class BandData:
    """One band image, its relative exposure and its background template.

    Parameters
    ----------
    counts : ndarray of int, shape (ny, nz)
        Counts per pixel (indexed [y, z] on the detection grid).
    exposure : ndarray, shape (ny, nz)
        Relative exposure ``g`` in [0, 1]; pixels with 0 carry no data (bad pixels,
        outside the chip) and their counts are ignored.
    background : ndarray, shape (ny, nz) or (K, ny, nz), optional
        Background template ``t`` (expected background counts per unit of ``B``), or K
        component templates whose amplitudes are fitted separately (all >= 0);
        defaults to ``exposure`` (one flat component).

    Attributes
    ----------
    templates : ndarray (K, ny, nz)
        The component templates.
    background : ndarray (ny, nz)
        Their sum: the background image of unit amplitudes (for plots and checks).
    t_nz : ndarray (K, n)
        Templates at the pixels with counts.
    t_sum : ndarray (K,)
        Templates summed over the usable pixels (exposure > 0).
    """

    counts: np.ndarray
    exposure: np.ndarray
    background: np.ndarray | None = None
    # Derived: the pixels with counts, as flat indices and (row, column) indices.
    iy: np.ndarray = field(init=False, repr=False)
    iz: np.ndarray = field(init=False, repr=False)
    c: np.ndarray = field(init=False, repr=False)
    g_nz: np.ndarray = field(init=False, repr=False)
    t_nz: np.ndarray = field(init=False, repr=False)
    t_sum: np.ndarray = field(init=False, repr=False)
    exposure_t: np.ndarray = field(init=False, repr=False)
    templates: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts)
        exposure = np.asarray(self.exposure, dtype=float)
        if counts.ndim != 2 or counts.shape != exposure.shape:
            raise MXTInputError(
                f"band image {counts.shape} and exposure {exposure.shape} must be equal 2-D shapes"
            )
        if np.any(counts < 0) or not np.all(np.isfinite(counts)):
            raise MXTInputError("band image counts must be finite and non-negative")
        if np.any(exposure < 0) or not np.all(np.isfinite(exposure)):
            raise MXTInputError("relative exposure must be finite and non-negative")
        bkg = exposure if self.background is None else np.asarray(self.background, dtype=float)
        tmpl = bkg[None] if bkg.ndim == 2 else bkg
        if (tmpl.ndim != 3 or tmpl.shape[1:] != exposure.shape or tmpl.shape[0] < 1 or np.any(tmpl < 0)
                or not np.all(np.isfinite(tmpl))):
            raise MXTInputError("background templates must match the image ((ny, nz) or (K, ny, nz)) "
                                "and be finite and non-negative")
        self.counts = counts
        self.exposure = exposure
        # Contiguous transpose: products with it are BLAS calls without copies.
        self.exposure_t = np.ascontiguousarray(exposure.T)
        self.templates = np.ascontiguousarray(tmpl)
        self.background = tmpl.sum(axis=0)
        usable = (counts > 0) & (exposure > 0)
        iy, iz = np.nonzero(usable)
        self.iy, self.iz = iy.astype(np.intp), iz.astype(np.intp)
        self.c = counts[iy, iz].astype(float)
        self.g_nz = exposure[iy, iz]
        self.t_nz = np.ascontiguousarray(tmpl[:, iy, iz])
        self.t_sum = tmpl[:, exposure > 0].sum(axis=1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.counts.shape  # type: ignore[return-value]

    @property
    def n_counts(self) -> float:
        """Counts in usable pixels."""
        return float(self.c.sum())

    @property
    def n_components(self) -> int:
        """Number of background components K."""
        return int(self.templates.shape[0])

    def background_image(self, amplitudes: np.ndarray | float) -> np.ndarray:
        """Background counts per pixel for component amplitudes (K,) (a scalar: all equal)."""
        amp = np.broadcast_to(np.asarray(amplitudes, float).ravel(), (self.n_components,))
        return np.tensordot(amp, self.templates, axes=1)

    def background_start(self, amplitudes=None) -> np.ndarray:
        """Component amplitudes (K,) from ``amplitudes`` (scalar or (K,)), or the counts
        shared equally among the components when None."""
        if amplitudes is None:
            return 0.5 * self.n_counts / (self.n_components * np.maximum(self.t_sum, 1e-12))
        return np.array(np.broadcast_to(np.asarray(amplitudes, float).ravel(), (self.n_components,)))


# --------------------------------------------------------------------------------------
# Per-band building blocks
# --------------------------------------------------------------------------------------


@dataclass
class _BandTerms:
    """Quantities of one band for fixed source positions (reused by amplitude solves)."""

    a_nz: np.ndarray  # (S, n): g_p * P_s(p) at the pixels with counts
    tot: np.ndarray  # (S,): sum over all pixels of g_p * P_s(p)
    terms: SeparableTerms
    gfz: np.ndarray  # (S, K, ny): g @ fz per term (for the y derivatives)
    gfy: np.ndarray | None  # (S, K, nz): fy @ g per term (for the z derivatives; None without them)
    # fy, fz gathered at the rows / columns of the counted pixels, (S, K, n); None
    # with the compiled kernels, which read the 1-D tables in place.
    fy_nz: np.ndarray | None
    fz_nz: np.ndarray | None


def _band_terms(data: BandData, terms: SeparableTerms) -> _BandTerms:
    g = data.exposure
    s, k, ny = terms.fy.shape
    nz = terms.fz.shape[2]
    # (S*K, nz) @ (nz, ny) -> per-term column sums weighted by the exposure.
    gfz = (terms.fz.reshape(s * k, nz) @ data.exposure_t).reshape(s, k, ny)
    # The z derivatives only (the gradient): not computed for a value alone.
    gfy = (terms.fy.reshape(s * k, ny) @ g).reshape(s, k, nz) if terms.dfz is not None else None
    tot = np.einsum("sk,sk->s", terms.w, np.einsum("sky,sky->sk", terms.fy, gfz))
    if HAVE_NUMBA:
        return _BandTerms(gather_terms(terms.w, terms.fy, terms.fz, data.iy, data.iz, data.g_nz), tot, terms,
                          gfz, gfy, None, None)
    fy_nz = terms.fy[:, :, data.iy]
    fz_nz = terms.fz[:, :, data.iz]
    p_nz = np.einsum("sk,skn->sn", terms.w, fy_nz * fz_nz)
    return _BandTerms(p_nz * data.g_nz[None, :], tot, terms, gfz, gfy, fy_nz, fz_nz)


@dataclass
class AmplitudeSolution:
    """Best amplitudes of one band (or one set of histograms) for fixed positions."""

    counts: np.ndarray  # (S,) source counts N_s
    background: np.ndarray  # (K,) background component amplitudes B_k
    cstat: float  # C at the solution
    hessian: np.ndarray  # (S+K, S+K) Hessian of C in (N_1..N_S, B_1..B_K)
    converged: bool


def _cstat_linear(x: np.ndarray, a: np.ndarray, tot: np.ndarray, c: np.ndarray) -> tuple[float, np.ndarray]:
    m = np.maximum(x @ a, MODEL_FLOOR)
    return 2.0 * (float(x @ tot) - float(c @ np.log(m))), m


def solve_linear_poisson(
    a: np.ndarray,
    tot: np.ndarray,
    c: np.ndarray,
    x0: np.ndarray,
    free: np.ndarray,
    *,
    max_iter: int = 60,
    tol: float = 1e-10,
    engine: str = "auto",
) -> tuple[np.ndarray, float, np.ndarray, bool]:
    """Minimise ``C(x) = 2 (x.tot - sum_p c_p ln (x.a)_p)`` over ``x >= 0``.

    The model of every bin is linear in the amplitudes ``x`` (source counts and the
    background level): ``m_p = sum_j x_j a_jp``, with ``tot_j`` the sum of column ``j``
    over *all* bins (those without counts included).  C is convex, so a projected Newton
    method with the exact Hessian ``H_jk = 2 sum_p c_p a_jp a_kp / m_p^2`` and an Armijo
    backtracking line search reaches the global minimum.

    Parameters
    ----------
    a : ndarray, shape (J, n)
        Model per unit amplitude at the ``n`` bins with counts.
    tot : ndarray, shape (J,)
        Model per unit amplitude summed over all bins.
    c : ndarray, shape (n,)
        Counts of those bins (all > 0).
    x0 : ndarray, shape (J,)
        Start (clipped at 0); amplitudes that are not free keep their start value.
    free : ndarray of bool, shape (J,)
    engine : {"auto", "numba", "numpy"}
        The compiled single-sweep kernel of :mod:`mxt_pipeline.detect._newton` (default
        when numba is installed) or the vectorised numpy version; same algorithm.

    Returns
    -------
    x, cstat, hessian, converged
    """
    if engine == "numba" or (engine == "auto" and HAVE_NUMBA):
        return newton_amplitudes(a, tot, c, x0, np.asarray(free, bool), max_iter, tol)
    if engine not in ("auto", "numpy"):
        raise ValueError(f"unknown engine {engine!r}")
    x = np.maximum(np.asarray(x0, dtype=float), 0.0)
    cval, m = _cstat_linear(x, a, tot, c)
    converged = False
    n_var = x.size
    diag = np.arange(n_var)
    noise = _REL_NOISE * 2.0 * float(np.sum(c))
    held = np.zeros(n_var, bool)
    for _ in range(max_iter):
        r = c / m
        grad = 2.0 * (tot - a @ r)
        hess = 2.0 * (a * (r / m)) @ a.T
        # Variables at the bound 0 (or whose share of the model is below the rounding
        # noise) that the gradient pushes further down are held: the epsilon-active set
        # (see the compiled kernel).
        at_bound = (x <= 0.0) | (x * np.abs(tot) <= _REL_NOISE * float(np.sum(c))) | held
        hold = (~free) | (at_bound & (grad > 0.0))
        if hold.any():
            idx = np.flatnonzero(~hold)
            if idx.size == 0:
                converged = True
                break
            h = hess[np.ix_(idx, idx)]
            gi = grad[idx]
        else:
            idx = diag
            h = hess.copy()
            gi = grad
        h[np.arange(idx.size), np.arange(idx.size)] += 1e-12 * max(1.0, float(np.trace(h)) / idx.size)
        try:
            step = -np.linalg.solve(h, gi)
        except np.linalg.LinAlgError:
            step = -gi / np.maximum(np.diag(h), 1e-12)
        decrement = -float(gi @ step)
        if not np.isfinite(decrement) or decrement < max(tol, _REL_NOISE * abs(cval) + noise):
            converged = True
            break
        t = 1.0
        accepted = False
        for _ in range(50):
            x_new = x.copy()
            x_new[idx] = np.maximum(x[idx] + t * step, 0.0)
            c_new, m_new = _cstat_linear(x_new, a, tot, c)
            if c_new <= cval - 1e-4 * t * decrement:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            # Hold the variables the full step takes below 0 and retry from the same
            # point; otherwise no decrease at machine precision: at the minimum.
            clip = idx[(x[idx] + step < 0.0) & ~held[idx]]
            if 0 < clip.size < idx.size:
                held[clip] = True
                continue
            converged = True
            break
        held[:] = False
        x, cval, m = x_new, c_new, m_new
    hess = 2.0 * (a * (c / (m * m))[None, :]) @ a.T
    return x, float(cval), hess, converged


@dataclass
class FrozenSources:
    """Pixel quantities of sources held at fixed positions (one band).

    ``a_nz`` (F, n): exposure x PSF fraction at the pixels with counts; ``tot`` (F,):
    the same summed over all pixels.
    """

    a_nz: np.ndarray
    tot: np.ndarray

    @staticmethod
    def concat(parts: Sequence[FrozenSources]) -> FrozenSources:
        return FrozenSources(np.vstack([p.a_nz for p in parts]), np.concatenate([p.tot for p in parts]))

    def take(self, index: np.ndarray) -> FrozenSources:
        return FrozenSources(self.a_nz[index], self.tot[index])


def _solve(
    data: BandData,
    a_nz: np.ndarray,
    tot: np.ndarray,
    start: tuple[np.ndarray, np.ndarray | float] | None,
    free: np.ndarray | None,
) -> AmplitudeSolution:
    """Amplitudes of one band for given per-source pixel quantities (see solve_amplitudes)."""
    n_src = tot.shape[0]
    n_bkg = data.n_components
    free_s = np.ones(n_src, dtype=bool) if free is None else np.asarray(free, dtype=bool)
    total = data.n_counts
    if total == 0.0:
        # No counts: C decreases with every amplitude, the MLE is zero.
        k = n_src + n_bkg
        return AmplitudeSolution(np.zeros(n_src), np.zeros(n_bkg), 0.0, np.zeros((k, k)), True)
    # Components that see no usable pixel (t_sum 0) carry no information: held at 0.
    live = data.t_sum > 0
    b_floor = 1e-6 * total / (n_bkg * np.maximum(data.t_sum, 1e-12))
    if start is None:
        n = np.where(free_s, 0.5 * total / max(n_src, 1) / np.maximum(tot, 1e-3), 0.0)
        b = data.background_start()
    else:
        n = np.maximum(np.asarray(start[0], dtype=float), 0.0)
        if n.shape != (n_src,):
            raise MXTInputError(f"amplitude start has {n.shape} counts for {n_src} sources")
        n = np.where(free_s, np.maximum(n, 1e-3), n)
        # A component at its bound 0 restarts just above it, so that the Newton step
        # can leave the bound when the other amplitudes have moved.
        b = np.maximum(data.background_start(start[1]), b_floor)
    b = np.where(live, b, 0.0)
    a = np.vstack([a_nz, data.t_nz])
    x, cval, hess, ok = solve_linear_poisson(a, np.r_[tot, data.t_sum], data.c, np.r_[n, b], np.r_[free_s, live])
    return AmplitudeSolution(x[:n_src].copy(), x[n_src:].copy(), cval, hess, ok)


def solve_amplitudes(
    data: BandData,
    bt: _BandTerms,
    start: tuple[np.ndarray, np.ndarray | float] | None = None,
    *,
    free: np.ndarray | None = None,
) -> AmplitudeSolution:
    """Minimise the band's C over the amplitudes (N_s >= 0, B_k >= 0) at fixed positions.

    Parameters
    ----------
    data : BandData
    bt : _BandTerms
        Per-source pixel quantities of the band (from :meth:`CashModel.band_terms`).
    start : (ndarray, float), optional
        Starting amplitudes (N, B) with B a scalar or one value per background
        component; default: half the counts shared among the sources, half among the
        background components.
    free : ndarray of bool, shape (S,), optional
        Sources whose counts are fitted; the others keep their start value (0 when
        there is no start): the null hypothesis of DET_ML fixes one source at 0.
    """
    return _solve(data, bt.a_nz, bt.tot, start, free)


def cash_statistic(counts: np.ndarray, model: np.ndarray) -> float:
    """``C = 2 sum (m - c ln m)`` of a dense model image (reference implementation).

    Pixels where ``model`` is 0 and ``counts`` is 0 contribute nothing; the model is
    floored at :data:`MODEL_FLOOR` inside the logarithm.
    """
    c = np.asarray(counts, dtype=float)
    m = np.asarray(model, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(c > 0, c * np.log(np.maximum(m, MODEL_FLOOR)), 0.0)
    return float(2.0 * (m.sum() - log_term.sum()))


# --------------------------------------------------------------------------------------
# The multi-band model
# --------------------------------------------------------------------------------------


class CashModel:
    """C of S point sources over B band images, with analytic gradients.

    Parameters
    ----------
    bands : sequence of BandData
        One image per energy band, all on the same pixel grid.
    terms : TermsFunction
        ``terms(b, y, z, theta, derivatives)``: separable PSF terms of band ``b`` for
        sources at ``(y, z)`` (arrays of length S) on the grid of the images.
    """

    def __init__(self, bands: Sequence[BandData], terms: TermsFunction) -> None:
        if not bands:
            raise MXTInputError("at least one band image is needed")
        shape = bands[0].shape
        if any(b.shape != shape for b in bands):
            raise MXTInputError("all band images must share one pixel grid")
        if any(b.n_components != bands[0].n_components for b in bands):
            raise MXTInputError("all band images must have the same number of background components")
        self.bands = list(bands)
        self.terms = terms
        #: Number of model evaluations (for benchmarks and tests).
        self.n_evaluations = 0

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    @property
    def n_counts(self) -> float:
        """Counts in usable pixels, all bands."""
        return float(sum(b.n_counts for b in self.bands))

    @property
    def n_components(self) -> int:
        """Background components K per band."""
        return self.bands[0].n_components

    def background_amplitudes(self, background) -> np.ndarray:
        """Background amplitudes as a (B, K) array (from (B,) when K = 1, or (B, K))."""
        return np.asarray(background, float).reshape(self.n_bands, self.n_components)

    def band_terms(
        self, b: int, y: np.ndarray, z: np.ndarray, theta: np.ndarray, derivatives: bool = False
    ) -> _BandTerms:
        """Per-source pixel quantities of band ``b`` for sources at (y, z)."""
        y, z, theta = _as_positions(y, z, theta)
        return _band_terms(self.bands[b], self.terms(b, y, z, theta, derivatives))

    # ---- C and its gradient for all parameters ------------------------------------------
    def evaluate(
        self,
        y: np.ndarray,
        z: np.ndarray,
        theta: np.ndarray,
        counts: np.ndarray,
        background: np.ndarray,
        *,
        gradient: bool = True,
    ) -> tuple[float, dict[str, np.ndarray]]:
        """C and its partial derivatives for positions, counts (S, B) and background (B, K).

        ``background`` holds the K component amplitudes of every band ((B,) when K = 1).

        Returns
        -------
        cstat : float
        grad : dict
            ``'y'``, ``'z'`` (S,), ``'counts'`` (S, B), ``'background'`` (B, K); empty when
            ``gradient`` is false.
        """
        y, z, theta = _as_positions(y, z, theta)
        counts = np.asarray(counts, float).reshape(y.size, self.n_bands)
        background = self.background_amplitudes(background)
        total = 0.0
        gy = np.zeros(y.size)
        gz = np.zeros(y.size)
        gn = np.zeros((y.size, self.n_bands))
        gb = np.zeros_like(background)
        self.n_evaluations += 1
        for b, data in enumerate(self.bands):
            bt = self.band_terms(b, y, z, theta, derivatives=gradient)
            n = counts[:, b]
            x = np.r_[n, background[b]]
            a = np.vstack([bt.a_nz, data.t_nz])
            cval, m = _cstat_linear(x, a, np.r_[bt.tot, data.t_sum], data.c)
            total += cval
            if not gradient:
                continue
            r = data.c / m
            gn[:, b] = 2.0 * (bt.tot - bt.a_nz @ r)
            gb[b] = 2.0 * (data.t_sum - data.t_nz @ r)
            gy_b, gz_b = _position_gradient(data, bt, r)
            gy += 2.0 * n * gy_b
            gz += 2.0 * n * gz_b
        grad = {"y": gy, "z": gz, "counts": gn, "background": gb} if gradient else {}
        return total, grad

    # ---- profile over amplitudes ------------------------------------------------------------
    def profile(
        self,
        y: np.ndarray,
        z: np.ndarray,
        theta: np.ndarray,
        start: Sequence[tuple[np.ndarray, np.ndarray | float]] | None = None,
        *,
        free: np.ndarray | None = None,
        gradient: bool = True,
        frozen: Sequence[FrozenSources] | None = None,
    ) -> tuple[float, np.ndarray, np.ndarray, list[AmplitudeSolution]]:
        """``min over counts and background of C`` at fixed positions, with its gradient.

        Parameters
        ----------
        y, z, theta : ndarray (S,)
            Positions (detector pixels) of the sources whose PSF terms are computed
            here, and the off-axis angles of their PSFs.
        start : list of (counts, background) per band, optional
            Warm start of the amplitudes (counts of the S sources, then of the frozen
            ones).
        free : ndarray of bool (S + F,), optional
            Sources whose counts are fitted (the others keep their start counts).
        frozen : list of FrozenSources per band, optional
            F further sources whose positions do not change during a search: their
            pixel quantities are computed once (:meth:`freeze`) and only their counts
            are re-fitted.

        Returns
        -------
        cstat : float
        grad_y, grad_z : ndarray (S,)
            Gradient of the profile with respect to the S positions: the partial
            derivatives at the optimal amplitudes (envelope theorem).
        solutions : list of AmplitudeSolution, one per band (counts: S, then F)
        """
        y, z, theta = _as_positions(y, z, theta)
        total = 0.0
        gy = np.zeros(y.size)
        gz = np.zeros(y.size)
        sols = []
        self.n_evaluations += 1
        for b, data in enumerate(self.bands):
            if y.size:
                bt = self.band_terms(b, y, z, theta, derivatives=gradient)
                a_nz, tot = bt.a_nz, bt.tot
            else:
                bt = None
                a_nz, tot = np.zeros((0, data.c.size)), np.zeros(0)
            if frozen is not None:
                a_nz = np.vstack([a_nz, frozen[b].a_nz])
                tot = np.r_[tot, frozen[b].tot]
            sol = _solve(data, a_nz, tot, None if start is None else start[b], free)
            sols.append(sol)
            total += sol.cstat
            if gradient and bt is not None and data.c.size:
                m = np.maximum(sol.counts @ a_nz + sol.background @ data.t_nz, MODEL_FLOOR)
                gy_b, gz_b = _position_gradient(data, bt, data.c / m)
                gy += 2.0 * sol.counts[: y.size] * gy_b
                gz += 2.0 * sol.counts[: y.size] * gz_b
        return total, gy, gz, sols

    def freeze(self, y: np.ndarray, z: np.ndarray, theta: np.ndarray) -> list[FrozenSources]:
        """Pixel quantities of sources at fixed positions, per band, for :meth:`profile`."""
        y, z, theta = _as_positions(y, z, theta)
        out = []
        for b, data in enumerate(self.bands):
            if y.size:
                bt = self.band_terms(b, y, z, theta)
                out.append(FrozenSources(bt.a_nz, bt.tot))
            else:
                out.append(FrozenSources(np.zeros((0, data.c.size)), np.zeros(0)))
        return out

    # ---- dense model (for simulations, plots and reference checks) ---------------------------
    def model_images(
        self, y: np.ndarray, z: np.ndarray, theta: np.ndarray, counts: np.ndarray, background: np.ndarray
    ) -> list[np.ndarray]:
        """Expected counts per pixel of every band (dense images); background (B, K)."""
        y, z, theta = _as_positions(y, z, theta)
        counts = np.asarray(counts, float).reshape(y.size, self.n_bands)
        background = self.background_amplitudes(background)
        out = []
        for b, data in enumerate(self.bands):
            img = np.zeros(data.shape)
            if y.size:
                t = self.terms(b, y, z, theta, False)
                img = np.einsum("s,sk,ski,skj->ij", counts[:, b], t.w, t.fy, t.fz)
            out.append(data.exposure * img + data.background_image(background[b]))
        return out


def _as_positions(y, z, theta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.atleast_1d(np.asarray(y, dtype=float))
    z = np.atleast_1d(np.asarray(z, dtype=float))
    theta = np.broadcast_to(np.atleast_1d(np.asarray(theta, dtype=float)), y.shape)
    if y.shape != z.shape or y.ndim != 1:
        raise MXTInputError("source positions y and z must be 1-D arrays of equal length")
    return y, z, np.ascontiguousarray(theta)


def _position_gradient(data: BandData, bt: _BandTerms, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``d/dy_s`` and ``d/dz_s`` of ``sum_p (g P_s)(p) - sum_p r_p (g P_s)(p)``.

    ``r = c / m`` at the pixels with counts.  Multiply by ``2 N_s`` to get dC/dy_s.
    """
    t = bt.terms
    if t.dfy is None or t.dfz is None or bt.gfy is None:
        raise MXTInputError("position gradient requested from terms without derivatives")
    dtot_y = np.einsum("sk,sk->s", t.w, np.einsum("sky,sky->sk", t.dfy, bt.gfz))
    dtot_z = np.einsum("sk,sk->s", t.w, np.einsum("skz,skz->sk", bt.gfy, t.dfz))
    rg = r * data.g_nz
    if bt.fy_nz is None or bt.fz_nz is None:
        dy_sum, dz_sum = gradient_sums(t.fy, t.fz, t.dfy, t.dfz, data.iy, data.iz, rg)
    else:
        s, k, n = bt.fy_nz.shape
        dy_sum = ((t.dfy[:, :, data.iy] * bt.fz_nz).reshape(s * k, n) @ rg).reshape(s, k)
        dz_sum = ((bt.fy_nz * t.dfz[:, :, data.iz]).reshape(s * k, n) @ rg).reshape(s, k)
    return dtot_y - np.einsum("sk,sk->s", t.w, dy_sum), dtot_z - np.einsum("sk,sk->s", t.w, dz_sum)
