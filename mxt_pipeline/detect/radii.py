"""Position errors from the Cash statistic, detection likelihood, alert quality factor.

Position errors (profile likelihood).  For a source with best position ``x*`` and best
statistic ``C*``, the profile ``dC(x) = min_nuisance C(x, nuisance) - C*`` re-fits every
other parameter (the counts and background of all bands, and the positions of the
sources within the neighbour radius) with the source held at ``x``.  By Wilks'
theorem ``dC`` is asymptotically chi-square with 2 degrees of freedom, so the regions
``dC <= 2.30`` and ``dC <= 4.61`` are the 68.3% and 90% confidence regions of the
position (``scipy.stats.chi2.ppf(0.683, 2) = 2.296``, ``chi2.ppf(0.9, 2) = 4.605``;
the table of the reference notes).

The contour is found along ``n_rays`` rays from ``x*`` (root bracketing, then Brent).
A circular radius is then derived: the contour points give the ellipse
``x^T Q x = 1`` (least squares on ``1 / r(phi)^2 = u^T Q u``), read as the Gaussian
with inverse covariance ``q Q`` (q the dC level), and the radius is that of the circle
centred on ``x*`` holding the same probability (68.3% or 90%) of that Gaussian.  For a
circular contour this is the contour radius itself (``R90 = sqrt(4.61) sigma``); for an
elongated one it is the radius that keeps the stated coverage, which an area-equivalent
radius would not.  Each level uses its own contour, so the non-quadratic shape of the
profile at low counts is kept.

Systematics.  The MXT alerts quote R90 with a 25" systematic added in quadrature (GCN
circulars 41243, 44468; CALDB ``SYSERR``).  The systematic is read as a 90% radius of a
circular Gaussian (Rayleigh-distributed offset); its 68% counterpart is
``sys * sqrt(-2 ln 0.317) / sqrt(-2 ln 0.1)`` (= 0.703 sys).

DET_ML (XMM ``emldetect``, reference notes): ``DET_ML = -ln(1 - P(nu/2, L'))`` with
``L' = (C_null - C_best) / 2``, ``nu = 2 + n_bands`` and ``P`` the regularised lower
incomplete gamma function; ``1 - P(nu/2, L') `` is the chi-square survival function of
``2 L'`` with ``nu`` degrees of freedom, evaluated in logarithm (:func:`log_chi2_sf`)
so that bright sources keep finite, exact values.

Quality factor of the SVOM alerts (FSC notice documentation): 4 when R90 < 30",
3 for 30-60", 2 for 60-120", 1 for 120-300", 0 above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special

from mxt_pipeline import constants as C

__all__ = [
    "DC_68",
    "DC_90",
    "P_68",
    "P_90",
    "det_ml",
    "det_ml_gain",
    "log_chi2_sf",
    "quality_factor",
    "systematic_68",
    "add_systematic",
    "circular_probability",
    "circular_radius",
    "ellipse_from_contour",
    "ContourResult",
    "contour_rays",
]

#: Coverage of the two error radii and the dC levels for 2 free parameters.
P_68 = 0.6827
P_90 = 0.90
# chi2.ppf(p, k) = 2 gammaincinv(k / 2, p): scipy.special, not scipy.stats, whose import
# (distribution docstrings built at import) costs a large share of the CLI start-up.
DC_68 = float(2.0 * special.gammaincinv(1.0, P_68))  # 2.30
DC_90 = float(2.0 * special.gammaincinv(1.0, P_90))  # 4.61


def det_ml(delta_c: np.ndarray, n_bands: int) -> np.ndarray:
    """emldetect detection likelihood from ``C_null - C_best``.

    Parameters
    ----------
    delta_c : array_like
        ``C_null - C_best`` (= 2 L'), clipped at 0.
    n_bands : int
        Number of energy bands fitted (nu = 2 + n_bands).

    Returns
    -------
    ndarray
        ``-ln(1 - P(nu/2, L'))`` = ``-ln chi2.sf(delta_c, nu)`` (0 for delta_c = 0).
    """
    d = np.maximum(np.asarray(delta_c, dtype=float), 0.0)
    return -log_chi2_sf(d, 2 + int(n_bands)) + 0.0


def det_ml_gain(threshold: float, n_bands: int) -> float:
    """``C_null - C_best`` at which DET_ML equals ``threshold`` (inverse of :func:`det_ml`)."""
    if threshold <= 0:
        return 0.0
    lo, hi = 0.0, 2.0 * threshold + 10.0 * (2 + n_bands)
    while det_ml(hi, n_bands) < threshold:
        hi *= 2.0
    return float(optimize.brentq(lambda d: float(det_ml(d, n_bands)) - threshold, lo, hi, xtol=1e-10))


def log_chi2_sf(x: np.ndarray, nu: int) -> np.ndarray:
    """``ln`` of the chi-square survival function, finite for any x >= 0.

    ``Q(a, t) = Gamma(a, t) / Gamma(a)`` with ``a = nu / 2``, ``t = x / 2`` (the upper
    regularised incomplete gamma function).  Where it underflows (t above ~700) the
    asymptotic series ``Gamma(a, t) ~ t^(a-1) e^-t sum_k (a-1)(a-2)...(a-k) / t^k``
    (Abramowitz & Stegun 6.5.32) is used in logarithm; for these t its terms fall
    fast and 8 of them are exact to double precision.
    """
    a = 0.5 * float(nu)
    t = 0.5 * np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        out = np.log(special.gammaincc(a, t))
    far = ~np.isfinite(out) | (out < -600.0)
    if np.any(far):
        tf = t[far] if t.ndim else t
        series = np.ones_like(tf)
        term = np.ones_like(tf)
        for k in range(1, 9):
            term = term * (a - k) / tf
            series = series + term
        val = (a - 1.0) * np.log(tf) - tf - special.gammaln(a) + np.log(series)
        if t.ndim:
            out[far] = val
        else:
            out = val
    return out


def quality_factor(r90_arcsec: np.ndarray) -> np.ndarray:
    """SVOM alert quality factor (0-4) of 90% error radii in arcsec.

    The edges are :data:`mxt_pipeline.constants.QF_R90_EDGES_ARCSEC`; a radius on an edge
    belongs to the worse class (R90 < 30" is required for qf 4). NaN gives 0.
    """
    r = np.asarray(r90_arcsec, dtype=float)
    edges = np.asarray(C.QF_R90_EDGES_ARCSEC, dtype=float)
    # searchsorted 'right': r = 30 -> index 1 -> qf 3.
    qf = 4 - np.searchsorted(edges, r, side="right")
    return np.where(np.isfinite(r), qf, 0).astype(np.int16)


def systematic_68(sys90_arcsec: float) -> float:
    """68% radius of a circular Gaussian systematic given as a 90% radius."""
    return float(sys90_arcsec) * np.sqrt(-2.0 * np.log(1.0 - P_68)) / np.sqrt(-2.0 * np.log(1.0 - P_90))


def add_systematic(r_stat: np.ndarray, r_sys: float) -> np.ndarray:
    """Quadrature sum of a statistical radius and a systematic radius."""
    return np.hypot(np.asarray(r_stat, dtype=float), float(r_sys))


def circular_probability(radius: float, inv_cov: np.ndarray) -> float:
    """Probability of the circle of ``radius`` about the mean of N(0, inv(inv_cov)).

    In polar coordinates the 2-D Gaussian density integrates over r in closed form:
    ``P(R) = 1 / (2 pi sqrt|S|) int_0^{2 pi} (1 - exp(-R^2 Q(phi) / 2)) / Q(phi) dphi``
    with ``Q(phi) = u^T S^-1 u``; the angle integral is done by quadrature.
    """
    a = np.asarray(inv_cov, dtype=float)
    det_inv = float(np.linalg.det(a))
    if det_inv <= 0:
        return 0.0

    def integrand(phi):
        c, s = np.cos(phi), np.sin(phi)
        q = a[0, 0] * c * c + 2 * a[0, 1] * c * s + a[1, 1] * s * s
        return -np.expm1(-0.5 * radius * radius * q) / q

    val, _ = integrate.quad(integrand, 0.0, 2.0 * np.pi, limit=200)
    return float(val * np.sqrt(det_inv) / (2.0 * np.pi))


def circular_radius(prob: float, inv_cov: np.ndarray) -> float:
    """Radius of the circle about the mean holding ``prob`` of N(0, inv(inv_cov))."""
    a = np.asarray(inv_cov, dtype=float)
    ev = np.linalg.eigvalsh(a)
    if ev[0] <= 0:
        return np.inf
    s_min, s_max = 1.0 / np.sqrt(ev[1]), 1.0 / np.sqrt(ev[0])
    # The radius lies between those of circular Gaussians of the smallest and largest
    # sigma (probability grows with both axes).
    k = np.sqrt(-2.0 * np.log(1.0 - prob))
    lo, hi = 0.999 * k * s_min, 1.001 * k * s_max + 1e-12
    if np.isclose(s_min, s_max, rtol=1e-9):
        return float(k * s_min)
    return float(optimize.brentq(lambda r: circular_probability(r, a) - prob, lo, hi, xtol=1e-10 * hi))


def ellipse_from_contour(phi: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Matrix Q of the ellipse ``x^T Q x = 1`` best matching contour points (phi, r).

    Least squares on ``1 / r^2 = Q00 cos^2 + 2 Q01 cos sin + Q11 sin^2``; the result is
    made positive definite (eigenvalues floored) for contours that are far from
    ellipses.
    """
    c, s = np.cos(phi), np.sin(phi)
    design = np.stack([c * c, 2 * c * s, s * s], axis=1)
    coef, *_ = np.linalg.lstsq(design, 1.0 / np.asarray(r, float) ** 2, rcond=None)
    q = np.array([[coef[0], coef[1]], [coef[1], coef[2]]])
    ev, vec = np.linalg.eigh(q)
    floor = 1.0 / np.max(r) ** 2 * 0.25
    ev = np.maximum(ev, floor)
    return (vec * ev) @ vec.T


def _ray_root(
    sqrt_dc: Callable[[float], float],
    target: float,
    guess: float,
    r_max: float,
    rtol: float,
    cache: dict[float, float],
) -> tuple[float, bool]:
    """Root of ``sqrt_dc(r) = target`` on a ray, by safeguarded secant steps.

    ``sqrt(dC)`` grows about linearly with r, so secant steps from the known points
    converge in two or three evaluations; a bracket, once found, is kept and bisection
    takes over when a secant step leaves it.  Returns the root and False when the
    contour lies beyond ``r_max``.
    """
    # Points already known on this ray give the initial secant pair and bracket.
    known = sorted((r, np.sqrt(max(v, 0.0)) - target) for r, v in cache.items())
    lo = max((r for r, f in known if f < 0), default=0.0)
    hi = min((r for r, f in known if f >= 0), default=np.inf)
    r_a, f_a = lo, (np.sqrt(max(cache[lo], 0.0)) - target) if lo in cache else -target
    r_b = min(max(guess, 1e-12), r_max)
    if hi < np.inf and not lo < r_b < hi:
        r_b = 0.5 * (lo + hi)
    for _ in range(60):
        f_b = sqrt_dc(r_b) - target
        if f_b < 0:
            lo = max(lo, r_b)
        else:
            hi = min(hi, r_b)
        if abs(f_b) <= 1e-9 or (hi < np.inf and hi - lo <= rtol * hi):
            return (r_b if abs(f_b) <= 1e-9 else 0.5 * (lo + hi)), True
        if r_b >= r_max and f_b < 0:
            return r_max, False
        denom = f_b - f_a
        r_new = r_b - f_b * (r_b - r_a) / denom if denom != 0 else np.inf
        if hi == np.inf:
            # No bracket yet: step outwards, at least 20% and at most a factor 3.
            r_new = min(max(r_new, 1.2 * r_b) if np.isfinite(r_new) else 2.0 * r_b, 3.0 * r_b, r_max)
        elif not (lo < r_new < hi):
            r_new = 0.5 * (lo + hi)
        if abs(r_new - r_b) <= 0.25 * rtol * max(r_b, 1e-12) and hi < np.inf:
            r_a, f_a, r_b = r_b, f_b, r_new
            return r_new, True
        r_a, f_a, r_b = r_b, f_b, r_new
    return 0.5 * (lo + hi) if hi < np.inf else r_max, hi < np.inf


@dataclass
class ContourResult:
    """Profile-likelihood contours of one source position."""

    phi: np.ndarray  # (R,) ray angles
    r68: np.ndarray  # (R,) contour radius at dC = 2.30 along each ray (pixels)
    r90: np.ndarray  # (R,) at dC = 4.61
    radius68: float  # circular radii (pixels)
    radius90: float
    n_evaluations: int
    closed: bool  # False when a contour reached the search limit


def contour_rays(
    delta_c: Callable[[float, float], float],
    sigma: float | Callable[[float], float],
    *,
    n_rays: int = 8,
    r_max: float = np.inf,
    levels: tuple[float, float] = (DC_68, DC_90),
    rtol: float = 1e-3,
    nominal: tuple[float, float] = (DC_68, DC_90),
) -> ContourResult:
    """Find the dC contours of a 2-D profile along rays from its minimum.

    Along a ray, ``sqrt(dC(r))`` is close to linear in r (exactly so for a quadratic
    profile), so the root of ``sqrt(dC) - sqrt(level)`` is found by safeguarded secant
    steps from the quadratic guess in two or three evaluations per level.

    Parameters
    ----------
    delta_c : callable
        ``delta_c(dy, dz)``: profile C at the offset (dy, dz) from the best position,
        minus the best C (>= 0 near the minimum).
    sigma : float or callable
        Expected offset where dC = 1 (pixels), or a function of the ray angle giving it
        (from the local curvature); used for the first bracket.
    n_rays : int
        Rays over the full circle (8 resolve an ellipse and its orientation).
    r_max : float
        Largest radius searched; contours beyond it are reported at ``r_max``.
    levels : (float, float)
        The two dC levels traced (68% and 90% by default).  Calibrated levels
        (:class:`mxt_pipeline.detect.levels.ErrorLevels`) replace Wilks' values near the
        detection threshold.
    nominal : (float, float)
        The chi-square(2) levels of the two probabilities: the contour traced at
        ``levels[j]`` is read as the ``nominal[j]`` contour of a Gaussian when the
        circular radius of probability 68.3% (90%) is derived from it.

    Returns
    -------
    ContourResult
    """
    phi = 2.0 * np.pi * np.arange(n_rays) / n_rays
    radii = np.zeros((2, n_rays))
    n_eval = 0
    closed = True
    sig = sigma if callable(sigma) else (lambda _p, s=float(sigma): s)
    for i, p in enumerate(phi):
        u = np.array([np.cos(p), np.sin(p)])
        cache: dict[float, float] = {0.0: 0.0}

        def sqrt_dc(r: float, u=u, cache=cache) -> float:
            nonlocal n_eval
            if r not in cache:
                n_eval += 1
                cache[r] = float(delta_c(r * u[0], r * u[1]))
            return np.sqrt(max(cache[r], 0.0))

        guess = min(max(float(sig(p)), 1e-9) * np.sqrt(levels[0]), r_max)
        for j, level in enumerate(levels):
            root, ok = _ray_root(sqrt_dc, np.sqrt(level), guess, r_max, rtol, cache)
            radii[j, i] = root
            closed &= ok
            guess = root * np.sqrt(levels[j + 1] / level) if j + 1 < len(levels) else guess
    out = []
    for j, level in enumerate(nominal):
        q = ellipse_from_contour(phi, radii[j])
        out.append(circular_radius(P_68 if j == 0 else P_90, level * q))
    return ContourResult(phi, radii[0], radii[1], out[0], out[1], n_eval, closed)
