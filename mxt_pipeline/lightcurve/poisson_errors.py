"""Confidence intervals for Poisson counts: Gehrels (1986), exact frequentist, KBN (1991).

Light-curve bins often hold a few counts, where ``sqrt(N)`` errors are wrong (zero for
an empty bin, symmetric where the distribution is not).  Three kinds of interval:

* **exact frequentist** (Neyman) limits, two-sided at ``sigma`` standard deviations
  (each tail holds ``alpha = P(Z > sigma)`` of a standard normal):
  ``lower = 1/2 chi2.ppf(alpha; 2N)`` (0 for ``N = 0``) and
  ``upper = 1/2 chi2.isf(alpha; 2N + 2)`` (Gehrels 1986, eqs. 3 and 4 written with the
  chi-square quantiles; the definition of astropy's ``frequentist-confidence``);
* **Gehrels (1986) approximations** at one sigma: upper ``N + 1 + sqrt(N + 3/4)``
  (eq. 9 with S = 1, better than 1 % for every N) and lower
  ``N (1 - 1/(9N) - 1/(3 sqrt N))^3`` (eq. 14 with S = 1, where Table 3 gives
  beta = 0; better than 1 %); the error ``1 + sqrt(N + 3/4)`` is the familiar upper
  error bar;
* **Kraft, Burrows & Nousek (1991)**: Bayesian interval for the source counts ``s >= 0``
  given ``N`` observed counts and a known expected background ``B`` in the same region,
  with a uniform prior on ``s``.  The posterior is
  ``f(s) = (s + B)^N exp(-(s + B)) / (N! Q(N + 1, B))`` (``Q`` the regularised upper
  incomplete gamma function, their eq. 8) and the interval is the shortest one (equal
  posterior density at both ends, eq. 9) holding the wanted probability, starting at 0
  when the density is highest there.  The posterior distribution function has the
  closed form ``[Q(N+1, B) - Q(N+1, s+B)] / Q(N+1, B)``, so no numerical integration is
  needed; the partner of a lower end with the same density is a Lambert-W expression.
"""

from __future__ import annotations

import numpy as np
from scipy import special
from scipy.optimize import brentq

from mxt_pipeline.errors import MXTInputError

__all__ = [
    "ONE_SIGMA",
    "frequentist_interval",
    "gehrels_upper",
    "gehrels_lower",
    "gehrels_errors",
    "poisson_interval",
    "kraft_burrows_nousek",
]

#: Two-sided probability content of +-1 standard deviation of a normal distribution.
ONE_SIGMA = float(special.erf(1.0 / np.sqrt(2.0)))


def _counts(n: object, name: str = "n") -> np.ndarray:
    arr = np.asarray(n, dtype=float)
    if np.any(~np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise MXTInputError(f"{name} must hold non-negative integer counts")
    return arr


def frequentist_interval(n: object, sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Exact two-sided frequentist (Neyman) limits on a Poisson mean.

    Parameters
    ----------
    n : int or array-like of int
        Observed counts.
    sigma : float
        Width in normal standard deviations: each tail holds ``P(Z > sigma)``.

    Returns
    -------
    (lower, upper) : tuple of ndarray
        Limits on the mean; ``lower = 0`` for ``n = 0``.
    """
    n = _counts(n)
    # chi2.ppf(a, 2k) / 2 = gammaincinv(k, a) and chi2.isf(a, 2k) / 2 = gammainccinv(k, a)
    # (scipy.stats computes the same; scipy.special keeps it out of the CLI start-up).
    alpha = special.ndtr(-sigma)
    with np.errstate(invalid="ignore"):
        lower = np.where(n > 0, special.gammaincinv(np.maximum(n, 1).astype(float), alpha), 0.0)
    upper = special.gammainccinv(n + 1.0, alpha)
    return lower, upper


def gehrels_upper(n: object) -> np.ndarray:
    """One-sigma upper limit of Gehrels (1986) eq. 9: ``N + 1 + sqrt(N + 3/4)``."""
    n = _counts(n)
    return n + 1.0 + np.sqrt(n + 0.75)


def gehrels_lower(n: object) -> np.ndarray:
    """One-sigma lower limit of Gehrels (1986) eq. 14 (beta = 0 at S = 1), 0 for N = 0."""
    n = _counts(n)
    safe = np.maximum(n, 1.0)
    low = safe * (1.0 - 1.0 / (9.0 * safe) - 1.0 / (3.0 * np.sqrt(safe))) ** 3
    return np.where(n > 0, low, 0.0)


def gehrels_errors(n: object) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric one-sigma errors ``(N - lower, upper - N)`` from Gehrels (1986)."""
    n = _counts(n)
    return n - gehrels_lower(n), gehrels_upper(n) - n


def poisson_interval(n: object, method: str = "frequentist", sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Confidence limits on a Poisson mean.

    Parameters
    ----------
    n : int or array-like of int
        Observed counts.
    method : {'frequentist', 'gehrels'}
        Exact Neyman limits at ``sigma``, or Gehrels' one-sigma approximations.
    sigma : float
        Width in standard deviations (``gehrels`` supports 1 only).

    Returns
    -------
    (lower, upper) : tuple of ndarray
    """
    if method == "frequentist":
        return frequentist_interval(n, sigma)
    if method == "gehrels":
        if sigma != 1.0:
            raise MXTInputError("the Gehrels approximations are implemented at one sigma only")
        return gehrels_lower(n), gehrels_upper(n)
    raise MXTInputError(f"unknown Poisson interval method {method!r}: use 'frequentist' or 'gehrels'")


# --------------------------------------------------------------------------------------
# Kraft, Burrows & Nousek (1991)
# --------------------------------------------------------------------------------------


def _kbn_one(n: int, b: float, cl: float) -> tuple[float, float]:
    """KBN interval for one (N, B) pair (see the module documentation)."""
    a = n + 1.0
    q_b = special.gammaincc(a, b)  # posterior normalisation, eq. 8

    def cdf(s: float) -> float:
        return (q_b - special.gammaincc(a, s + b)) / q_b

    def upper_at(mass: float) -> float:
        # s with cdf(s) = mass, from the inverse regularised upper incomplete gamma.
        return max(float(special.gammainccinv(a, q_b * (1.0 - mass))) - b, 0.0)

    mode = n - b
    if mode <= 0.0:
        return 0.0, upper_at(cl)  # density decreasing from s = 0

    def partner(s_lo: float) -> float:
        # The s > mode with the density of s_lo: with x = s + B, N ln x - x is equal at
        # both ends, so x_hi = -N W_{-1}(-(x_lo / N) exp(-x_lo / N)).
        x_lo = s_lo + b
        if x_lo <= 0.0:
            return np.inf  # density 0 at s = 0 when B = 0
        if x_lo >= n:
            return mode
        z = max(-(x_lo / n) * np.exp(-x_lo / n), -np.exp(-1.0))  # branch point -1/e
        return max(float(-n * special.lambertw(z, -1).real) - b, mode)

    def excess(s_lo: float) -> float:
        return cdf(partner(s_lo)) - cdf(s_lo) - cl

    if excess(0.0) < 0.0:
        # The density at s = 0 exceeds that at the upper end: the interval starts at 0.
        return 0.0, upper_at(cl)
    s_lo = brentq(excess, 0.0, mode, xtol=1e-11 * max(1.0, mode), rtol=1e-14)
    return float(s_lo), partner(s_lo)


def kraft_burrows_nousek(n: object, background: object, confidence_level: float = ONE_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Kraft, Burrows & Nousek (1991) interval on the source counts.

    Parameters
    ----------
    n : int or array-like of int
        Total counts observed in the source region.
    background : float or array-like
        Expected background counts in the source region (known without error).
    confidence_level : float
        Posterior probability inside the interval (default: one sigma, 0.6827).

    Returns
    -------
    (lower, upper) : tuple of ndarray
        Limits on the source counts (``lower = 0`` for upper-limit-like cases).
    """
    n_arr = _counts(n)
    b_arr = np.asarray(background, dtype=float)
    if np.any(~np.isfinite(b_arr)) or np.any(b_arr < 0):
        raise MXTInputError("background must be finite and >= 0")
    if not 0.0 < confidence_level < 1.0:
        raise MXTInputError("confidence_level must lie strictly between 0 and 1")
    n_b, b_b = np.broadcast_arrays(n_arr, b_arr)
    lower = np.empty(n_b.shape)
    upper = np.empty(n_b.shape)
    for i in np.ndindex(n_b.shape):
        lower[i], upper[i] = _kbn_one(int(n_b[i]), float(b_b[i]), float(confidence_level))
    return lower, upper
