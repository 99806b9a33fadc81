"""Time bins for light curves: fixed width, constant signal-to-noise, Bayesian blocks.

Every function returns bins as two arrays ``(lo, hi)`` of half-open intervals
``[lo, hi)``, increasing and not overlapping; they may leave holes (long gaps) between
them.  Exposure, counts and rates are computed afterwards by
:func:`mxt_pipeline.lightcurve.rates.light_curve`, which drops bins with no good time.

Constant-S/N bins (:func:`snr_bins`) follow the practice of the UKSSDC Swift-XRT light
curves (Evans et al. 2007, A&A 469, 379; 2009, MNRAS 397, 1177): a bin grows, event by
event, until it holds at least ``min_counts`` counts *and* its background-subtracted
signal-to-noise reaches ``target_snr``:

``S/N = (N - a N_b) / sqrt(N + a^2 N_b)``

(``a`` the source-to-background area ratio; ``sqrt(N)`` without background).  A bin
never spans a gap longer than ``max_gap``: the good time is first cut into *segments*
separated by such gaps, and bins are made inside each segment.  A segment's last bin
that falls short of the criteria is merged into the previous bin of the segment (or
kept alone, flagged by its low S/N, when it is the only one).  Bin boundaries lie
halfway between the last event of a bin and the first of the next (events of one
frame, which share a time, stay in one bin); the first bin of a
segment starts at the segment's start and the last ends at its end, so every second
of good time belongs to a bin.
"""

from __future__ import annotations

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.lightcurve.bayesian_blocks import bayesian_blocks

__all__ = ["fixed_bins", "snr_bins", "block_bins", "good_segments", "snr"]


def fixed_bins(
    tstart: float, tstop: float, width: float, *, t0: float | None = None, min_width: float = C.FRAME_TIME_S
) -> tuple[np.ndarray, np.ndarray]:
    """Bins of constant width covering ``[tstart, tstop)``.

    Parameters
    ----------
    tstart, tstop : float
        Time range (s), usually the first GTI start and the last GTI stop.
    width : float
        Bin width (s).
    t0 : float, optional
        A bin edge falls on ``t0`` (e.g. the trigger time); default ``tstart``.
    min_width : float
        A first or last bin cut shorter than this (default one frame) joins its
        neighbour.

    Returns
    -------
    (lo, hi) : tuple of ndarray
        The first and last bins are cut at ``tstart`` and ``tstop``.
    """
    if not (np.isfinite(width) and width > 0):
        raise MXTInputError(f"bin width must be positive, got {width}")
    if not tstop > tstart:
        raise MXTInputError("tstop must be after tstart")
    ref = tstart if t0 is None else float(t0)
    k0 = np.floor((tstart - ref) / width)
    k1 = np.ceil((tstop - ref) / width)
    edges = ref + width * np.arange(k0, k1 + 1)
    edges = np.unique(np.clip(edges, tstart, tstop))
    if edges.size > 2 and edges[-1] - edges[-2] < min_width:
        edges = np.delete(edges, -2)
    if edges.size > 2 and edges[1] - edges[0] < min_width:
        edges = np.delete(edges, 1)
    return edges[:-1], edges[1:]


def good_segments(gti: GTI, max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Spans of good time separated by gaps longer than ``max_gap`` (s).

    Shorter gaps are bridged (their bins include them; the exposure accounts for them).
    """
    if len(gti) == 0:
        raise MXTInputError("no good time")
    gaps = gti.start[1:] - gti.stop[:-1]
    cut = np.flatnonzero(gaps > max_gap)
    starts = np.r_[gti.start[0], gti.start[cut + 1]]
    stops = np.r_[gti.stop[cut], gti.stop[-1]]
    return starts, stops


def snr(n: np.ndarray, n_bkg: np.ndarray | float = 0.0, area_ratio: float = 0.0) -> np.ndarray:
    """Background-subtracted signal-to-noise ``(N - a Nb) / sqrt(N + a^2 Nb)`` (0 when empty)."""
    n = np.asarray(n, dtype=float)
    var = n + area_ratio**2 * np.asarray(n_bkg, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (n - area_ratio * np.asarray(n_bkg, dtype=float)) / np.sqrt(var)
    return np.where(var > 0, out, 0.0)


def _first_meeting(
    src: np.ndarray,
    i: int,
    lo: float,
    bkg: np.ndarray | None,
    area_ratio: float,
    target_snr: float,
    min_counts: int,
    min_width: float,
) -> int:
    """Index of the first event ``j >= i`` closing a bin started at ``lo``; -1 if none."""
    n = src.size
    # The bin must hold min_counts events and reach lo + min_width before it closes (a
    # relative 1e-6 of slack so that frame times rounded in binary still qualify).
    j0 = max(i + min_counts - 1, int(np.searchsorted(src, lo + min_width * (1.0 - 1e-6), side="left")))
    if j0 >= n:
        return -1
    width = max(64, min_counts)
    while True:
        j1 = min(n, j0 + width)
        js = np.arange(j0, j1)
        counts = js - i + 1
        if bkg is not None and area_ratio > 0:
            # A bin closed at event j ends halfway to the next event (snr_bins), and
            # its background runs to there: counted only up to event j, the bin could
            # close on an S/N that the background after it brings under the target.
            nxt = np.minimum(js + 1, n - 1)
            edge = np.where(js + 1 < n, 0.5 * (src[js] + src[nxt]), src[js])
            nb = np.searchsorted(bkg, edge, side="left") - np.searchsorted(bkg, lo, side="left")
            ok = snr(counts, nb, area_ratio) >= target_snr
        else:
            ok = np.sqrt(counts) >= target_snr
        hit = np.flatnonzero(ok)
        if hit.size:
            return int(js[hit[0]])
        if j1 >= n:
            return -1
        j0 = j1
        width *= 2  # geometric growth: the search costs O(log) array passes per bin


def snr_bins(
    src_times: np.ndarray,
    gti: GTI,
    *,
    target_snr: float = 3.0,
    min_counts: int = 15,
    max_gap: float = 1000.0,
    bkg_times: np.ndarray | None = None,
    area_ratio: float = 0.0,
    min_width: float = C.FRAME_TIME_S,
) -> tuple[np.ndarray, np.ndarray]:
    """Constant signal-to-noise bins (see the module documentation).

    Parameters
    ----------
    src_times : ndarray
        Event times in the source region (inside the GTIs).
    gti : GTI
        Good time intervals.
    target_snr : float
        S/N each bin must reach.
    min_counts : int
        Counts each bin must hold (at least 1).
    max_gap : float
        Gaps longer than this (s) are never spanned by a bin.
    bkg_times : ndarray, optional
        Event times in the background region.
    area_ratio : float
        Source-to-background area ratio.
    min_width : float
        Shortest bin (s); default one frame, the time resolution of the events.

    Returns
    -------
    (lo, hi) : tuple of ndarray
    """
    if min_counts < 1:
        raise MXTInputError("min_counts must be at least 1")
    if not target_snr >= 0:
        raise MXTInputError("target_snr must be >= 0")
    src = np.sort(np.asarray(src_times, dtype=float))
    bkg = None if bkg_times is None else np.sort(np.asarray(bkg_times, dtype=float))
    seg_lo, seg_hi = good_segments(gti, max_gap)
    out_lo: list[float] = []
    out_hi: list[float] = []
    for s_lo, s_hi in zip(seg_lo, seg_hi):
        a, b = np.searchsorted(src, [s_lo, s_hi], side="left")
        seg = src[a:b]
        if seg.size == 0:
            out_lo.append(float(s_lo))
            out_hi.append(float(s_hi))
            continue
        edges = [float(s_lo)]
        i = 0
        j = -1
        while i < seg.size:
            j = _first_meeting(seg, i, edges[-1], bkg, area_ratio, target_snr, min_counts, min_width)
            if j >= 0:
                # Events of one frame share a time: they all go to the same bin.
                j = int(np.searchsorted(seg, seg[j], side="right")) - 1
            if j < 0 or j == seg.size - 1:
                break
            edges.append(0.5 * (seg[j] + seg[j + 1]))
            i = j + 1
        # The remainder (criteria not met, or the last event) closes the segment; a
        # short remainder is merged into the previous bin.
        if len(edges) > 1 and j < 0:
            edges.pop()
        edges.append(float(s_hi))
        out_lo.extend(edges[:-1])
        out_hi.extend(edges[1:])
    return np.asarray(out_lo), np.asarray(out_hi)


def block_bins(
    src_times: np.ndarray,
    gti: GTI,
    *,
    p0: float = 0.05,
    ncp_prior: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bayesian-block bins of the source events, measured in good time.

    Parameters
    ----------
    src_times : ndarray
        Event times in the source region (inside the GTIs).
    gti : GTI
        Good time intervals (blocks count only good time; see
        :func:`~mxt_pipeline.lightcurve.bayesian_blocks.bayesian_blocks`).
    p0, ncp_prior : float
        Prior on the number of blocks.

    Returns
    -------
    (lo, hi) : tuple of ndarray
        Contiguous blocks from the first GTI start to the last GTI stop.
    """
    src = np.asarray(src_times, dtype=float)
    if src.size == 0:
        return np.array([gti.tstart]), np.array([gti.tstop])
    edges = bayesian_blocks(src, fitness="events", gti=gti, p0=p0, ncp_prior=ncp_prior)
    if edges.size < 2:  # a single distinct time: one block over the good time
        edges = np.array([gti.tstart, gti.tstop])
    return edges[:-1], edges[1:]
