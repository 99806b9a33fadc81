"""Photon generation kernels: arrival times from a time profile, energies from a spectrum.

Arrival times (:func:`arrival_times`)
    An inhomogeneous Poisson process of intensity ``lambda(t) = rate0 * p(t)`` by
    thinning (Lewis & Shedler 1979, Naval Res. Logistics Q. 26, 403): on each segment
    ``[a, b)`` of the profile's grid, ``Poisson(rate0 * B (b - a))`` candidates uniform in
    time, with ``B >= p`` the profile's bound on the segment, each kept with probability
    ``p(t) / B``.  Exact for any profile whose bound holds; the number of candidates
    is at most the bound's excess over the mean, which the profile grids keep small.

Energies (:class:`EnergyTable`)
    Inverse-CDF sampling of a tabulated density ``f(E)`` (photons per keV, already
    multiplied by the effective area and vignetting envelope): the density is
    evaluated at the centres of uniform bins (5 eV by default, a fifteenth of the
    detector resolution at 1.5 keV) and taken constant within a bin; a bin is drawn
    from the cumulative sum and the energy uniformly inside it.  The discretisation
    changes the spectrum only inside 5 eV bins.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.timeprofiles import TimeProfile

__all__ = ["arrival_times", "EnergyTable", "expected_counts"]


def arrival_times(profile: TimeProfile, rate0: float, tstart: float, tstop: float, rng: np.random.Generator,
                  *, max_candidates: int = 200_000_000) -> np.ndarray:  # fmt: skip
    """Sorted arrival times on ``[tstart, tstop)`` of photons of intensity ``rate0 * p(t)``.

    Parameters
    ----------
    profile : TimeProfile
        Gives ``value``, ``bound`` and ``grid``.
    rate0 : float
        Photons per second where ``p = 1``.
    tstart, tstop : float
        Time span (s).
    rng : numpy.random.Generator
    max_candidates : int
        Refuse to draw more candidates than this (an input error, e.g. a flux typo).

    Returns
    -------
    ndarray
        Sorted times.

    Raises
    ------
    MXTInputError
        Negative rate, empty span, or too many photons.
    """
    if not (rate0 >= 0 and math.isfinite(rate0)):
        raise MXTInputError(f"photon rate must be finite and >= 0, got {rate0}")
    if not tstop > tstart:
        raise MXTInputError(f"empty time span [{tstart}, {tstop})")
    if rate0 == 0:
        return np.empty(0)
    edges = np.asarray(profile.grid(tstart, tstop), dtype=float)
    lo, hi = edges[:-1], edges[1:]
    bound = np.asarray(profile.bound(lo, hi), dtype=float)
    if np.any(~np.isfinite(bound)) or np.any(bound < 0):
        raise MXTInputError("the time profile's bound is not finite and non-negative")
    mean = rate0 * bound * (hi - lo)
    if mean.sum() > max_candidates:
        raise MXTInputError(
            f"{mean.sum():.3g} candidate photons requested (limit {max_candidates:.3g}): check the source flux"
        )
    n = rng.poisson(mean)
    seg = np.repeat(np.arange(lo.size), n)
    t = lo[seg] + rng.random(seg.size) * (hi - lo)[seg]
    keep = rng.random(seg.size) * bound[seg] < profile.value(t)
    t = t[keep]
    t.sort()
    return t


def expected_counts(profile: TimeProfile, rate0: float, tstart: float, tstop: float) -> float:
    """Mean number of photons of :func:`arrival_times` (``rate0 * integral of p``)."""
    return float(rate0 * profile.integral(tstart, tstop))


@dataclass(frozen=True)
class EnergyTable:
    """A tabulated photon density on uniform energy bins, for integration and sampling.

    Attributes
    ----------
    edges : ndarray
        Bin edges (keV).
    density : ndarray
        Photons per keV (per second, per unit of whatever the density carries) at the
        bin centres.
    """

    edges: np.ndarray
    density: np.ndarray

    @classmethod
    def from_function(cls, func: Callable[[np.ndarray], np.ndarray], e_lo: float, e_hi: float,
                      step_kev: float = 0.005) -> EnergyTable:  # fmt: skip
        """Tabulate ``func`` (vectorised, keV -> per keV) at the bin centres."""
        if not (0 < e_lo < e_hi):
            raise MXTInputError(f"bad energy range [{e_lo}, {e_hi}] keV")
        n = max(1, int(math.ceil((e_hi - e_lo) / step_kev)))
        edges = np.linspace(e_lo, e_hi, n + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        dens = np.asarray(func(centres), dtype=float)
        if dens.shape != centres.shape or np.any(~np.isfinite(dens)) or np.any(dens < 0):
            raise MXTInputError("photon density must be finite and >= 0 on the energy grid")
        return cls(edges, dens)

    @property
    def widths(self) -> np.ndarray:
        return np.diff(self.edges)

    @property
    def total(self) -> float:
        """Integral of the density (photons per second, for a rate density)."""
        return float(np.sum(self.density * self.widths))

    def bin_integrals(self) -> np.ndarray:
        return self.density * self.widths

    def sample_bins(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Indices of ``n`` bins drawn with probability proportional to their integral."""
        w = self.bin_integrals()
        if w.sum() <= 0:
            raise MXTInputError("cannot sample energies from a zero density")
        cdf = np.cumsum(w)
        cdf /= cdf[-1]
        # side='right' never returns a bin of zero weight (its cdf equals the previous one).
        k = np.searchsorted(cdf, rng.random(n), side="right")
        return np.minimum(k, w.size - 1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` energies (keV) drawn from the density (uniform within the drawn bin)."""
        k = self.sample_bins(n, rng)
        return self.edges[k] + rng.random(n) * self.widths[k]


@dataclass
class PhotonBatch:
    """Photons absorbed in the detector, one row each.

    Attributes
    ----------
    time : ndarray
        Arrival time (s).
    frame : ndarray of int
        Frame counter (frames of ``FRAMETIM`` from the observation start).
    rawy, rawz : ndarray
        Continuous RAW position of the absorption point.
    energy : ndarray
        True energy (keV).
    charge : ndarray
        Generated charge with Fano fluctuations (keV).
    component : ndarray of int
        Which simulated component made the photon (index into the bench's list).
    """

    time: np.ndarray
    frame: np.ndarray
    rawy: np.ndarray
    rawz: np.ndarray
    energy: np.ndarray
    charge: np.ndarray
    component: np.ndarray

    def __len__(self) -> int:
        return int(self.time.size)

    @classmethod
    def empty(cls) -> PhotonBatch:
        z = np.empty(0)
        return cls(z, np.empty(0, dtype=np.int64), z, z, z, z, np.empty(0, dtype=np.int32))

    @classmethod
    def concat(cls, batches: list[PhotonBatch]) -> PhotonBatch:
        """Concatenate batches and sort the photons by time (stable)."""
        if not batches:
            return cls.empty()
        cols = {name: np.concatenate([getattr(b, name) for b in batches])
                for name in ("time", "frame", "rawy", "rawz", "energy", "charge", "component")}  # fmt: skip
        order = np.argsort(cols["time"], kind="stable")
        return cls(**{k: v[order] for k, v in cols.items()})

    def select(self, mask: np.ndarray) -> PhotonBatch:
        return PhotonBatch(*(getattr(self, n)[mask] for n in ("time", "frame", "rawy", "rawz", "energy", "charge", "component")))
