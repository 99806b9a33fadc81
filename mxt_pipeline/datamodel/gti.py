"""Good time intervals and the gaps between them, each gap with its origin.

:class:`GTI` is a sorted set of disjoint half-open intervals ``[start, stop)`` in
mission time with the set operations screening needs (intersection, union,
subtraction, complement).  :class:`GapList` keeps the excluded intervals with the
reason each was excluded (SAA, EARTH, TELEMETRY, ...), so that light-curve previews can
say why the data are missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from mxt_pipeline.constants import GAP_ORIGINS
from mxt_pipeline.errors import MXTInputError

__all__ = ["GTI", "GapList"]


def _normalise(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort, drop empty intervals and merge overlapping or touching ones."""
    keep = stop > start
    start, stop = start[keep], stop[keep]
    if start.size == 0:
        return start, stop
    order = np.argsort(start, kind="stable")
    start, stop = start[order], stop[order]
    # An interval starts a new merged run when it begins after every earlier stop.
    run_max = np.maximum.accumulate(stop)
    new = np.r_[True, start[1:] > run_max[:-1]]
    idx = np.flatnonzero(new)
    merged_stop = np.maximum.reduceat(stop, idx)
    return start[idx], merged_stop


@dataclass(frozen=True)
class GTI:
    """Sorted, disjoint good time intervals (seconds since MJDREF).

    Build with ``GTI(start, stop)``: inputs are sorted and overlapping or touching
    intervals merged.
    """

    start: np.ndarray
    stop: np.ndarray

    def __init__(self, start: Iterable[float], stop: Iterable[float]) -> None:
        s = np.atleast_1d(np.asarray(start, dtype=float))
        e = np.atleast_1d(np.asarray(stop, dtype=float))
        if s.shape != e.shape or s.ndim != 1:
            raise MXTInputError("GTI start and stop must be 1-D arrays of equal length")
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(e))):
            raise MXTInputError("GTI boundaries must be finite")
        s, e = _normalise(s, e)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "stop", e)

    # ---- basic properties ------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.start.size)

    @property
    def exposure(self) -> float:
        """Total good time (s)."""
        return float(np.sum(self.stop - self.start))

    @property
    def tstart(self) -> float:
        return float(self.start[0]) if len(self) else np.nan

    @property
    def tstop(self) -> float:
        return float(self.stop[-1]) if len(self) else np.nan

    @classmethod
    def empty(cls) -> GTI:
        return cls(np.empty(0), np.empty(0))

    # ---- membership --------------------------------------------------------------------
    def contains(self, times: np.ndarray) -> np.ndarray:
        """Return a boolean mask: which ``times`` fall inside a GTI (``start <= t < stop``)."""
        t = np.asarray(times, dtype=float)
        if len(self) == 0:
            return np.zeros(t.shape, dtype=bool)
        # The intervals are disjoint and not touching, so their edges interleave in
        # strictly increasing order: a time is inside when an odd number of edges lie
        # at or before it (start counts at t == start, stop at t == stop: half-open).
        # One search and a parity test, no gather: this runs on every raw hit.
        edges = np.column_stack((self.start, self.stop)).ravel()
        return (np.searchsorted(edges, t, side="right") & 1).astype(bool)

    def overlap(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Good time inside each window ``[lo, hi)`` (vectorised over windows)."""
        lo = np.asarray(lo, dtype=float)
        hi = np.asarray(hi, dtype=float)
        if len(self) == 0:
            return np.zeros(np.broadcast(lo, hi).shape)
        # Cumulative good time up to t, evaluated at both ends of every window.
        cum = np.r_[0.0, np.cumsum(self.stop - self.start)]

        def upto(t: np.ndarray) -> np.ndarray:
            k = np.searchsorted(self.start, t, side="right")
            inside = np.clip(t - self.start[np.maximum(k - 1, 0)], 0, None)
            width = (self.stop - self.start)[np.maximum(k - 1, 0)]
            partial = np.where(k > 0, np.minimum(inside, width), 0.0)
            return cum[np.maximum(k - 1, 0)] * (k > 0) + partial

        return np.clip(upto(hi) - upto(lo), 0.0, None)

    # ---- set operations -------------------------------------------------------------------
    def union(self, other: GTI) -> GTI:
        return GTI(np.r_[self.start, other.start], np.r_[self.stop, other.stop])

    def intersect(self, other: GTI) -> GTI:
        """Intervals that are good in both.

        Each interval of ``self`` is paired with the intervals of ``other`` it overlaps
        (found by binary search; both are sorted and disjoint) and the overlaps are
        kept exactly, with no midpoint test, so intervals a few ulps long survive.
        """
        if len(self) == 0 or len(other) == 0:
            return GTI.empty()
        j0 = np.searchsorted(other.stop, self.start, side="right")
        j1 = np.searchsorted(other.start, self.stop, side="left")
        counts = np.maximum(j1 - j0, 0)
        i = np.repeat(np.arange(len(self)), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        j = np.arange(int(counts.sum())) - first + np.repeat(j0, counts)
        lo = np.maximum(self.start[i], other.start[j])
        hi = np.minimum(self.stop[i], other.stop[j])
        return GTI(lo, hi)

    def complement(self, tmin: float, tmax: float) -> GTI:
        """The bad time inside ``[tmin, tmax)`` as a GTI-shaped set."""
        clipped = self.intersect(GTI([tmin], [tmax]))
        starts = np.r_[tmin, clipped.stop]
        stops = np.r_[clipped.start, tmax]
        return GTI(starts, stops)

    def subtract(self, other: GTI) -> GTI:
        """Good time of ``self`` outside ``other``."""
        if len(self) == 0:
            return self
        if len(other) == 0:
            return self
        lo = min(self.tstart, other.tstart)
        hi = max(self.tstop, other.tstop)
        return self.intersect(other.complement(lo, hi))

    # ---- tables -------------------------------------------------------------------------
    def to_table(self) -> Table:
        return Table({"START": self.start.copy(), "STOP": self.stop.copy()})

    @classmethod
    def from_table(cls, table: Table) -> GTI:
        return cls(np.asarray(table["START"]), np.asarray(table["STOP"]))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, GTI)
            and np.array_equal(self.start, other.start)
            and np.array_equal(self.stop, other.stop)
        )

    def __hash__(self) -> int:  # frozen dataclass with arrays: hash by content
        return hash((self.start.tobytes(), self.stop.tobytes()))


@dataclass(frozen=True)
class GapList:
    """Intervals lost from the good time, each with the origin of the loss.

    Origins come from :data:`mxt_pipeline.constants.GAP_ORIGINS`. Gaps of different
    origins may overlap (an SAA passage during a telemetry gap): both are kept.
    """

    start: np.ndarray
    stop: np.ndarray
    origin: np.ndarray

    def __init__(self, start: Iterable[float], stop: Iterable[float], origin: Iterable[str]) -> None:
        s = np.atleast_1d(np.asarray(start, dtype=float))
        e = np.atleast_1d(np.asarray(stop, dtype=float))
        o = np.atleast_1d(np.asarray(origin, dtype="U10"))
        if not (s.shape == e.shape == o.shape):
            raise MXTInputError("gap start, stop and origin must have equal lengths")
        bad = sorted(set(o.tolist()) - set(GAP_ORIGINS))
        if bad:
            raise MXTInputError(f"unknown gap origin(s) {bad}; allowed: {list(GAP_ORIGINS)}")
        keep = e > s
        s, e, o = s[keep], e[keep], o[keep]
        order = np.lexsort((o, s))
        object.__setattr__(self, "start", s[order])
        object.__setattr__(self, "stop", e[order])
        object.__setattr__(self, "origin", o[order])

    def __len__(self) -> int:
        return int(self.start.size)

    @classmethod
    def empty(cls) -> GapList:
        return cls(np.empty(0), np.empty(0), np.empty(0, dtype="U10"))

    @classmethod
    def from_bad_time(cls, bad: GTI, origin: str) -> GapList:
        """Gaps of one origin from a set of bad intervals."""
        return cls(bad.start, bad.stop, np.full(len(bad), origin))

    def concat(self, other: GapList) -> GapList:
        return GapList(
            np.r_[self.start, other.start], np.r_[self.stop, other.stop], np.r_[self.origin, other.origin]
        )

    def of_origin(self, origin: str) -> GTI:
        """The union of the gaps of one origin, as an interval set."""
        sel = self.origin == origin
        return GTI(self.start[sel], self.stop[sel])

    def as_bad_time(self) -> GTI:
        """The union of every gap."""
        return GTI(self.start, self.stop)

    def to_table(self) -> Table:
        return Table({"START": self.start.copy(), "STOP": self.stop.copy(), "ORIGIN": self.origin.copy()})

    @classmethod
    def from_table(cls, table: Table) -> GapList:
        return cls(np.asarray(table["START"]), np.asarray(table["STOP"]), np.asarray(table["ORIGIN"]).astype(str))
