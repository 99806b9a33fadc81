"""Event reconstruction: pixel hits of a frame -> X-ray events with EPIC-pn pattern codes.

Rule (documented in ``docs/calibration.md``):

1. Hits below the **split threshold** are not part of any event (their charge is lost;
   the multiplicity correction of the CALDB accounts for it).
2. The remaining hits of one frame are grouped into **8-connected** components
   (pixels sharing an edge or a corner).  Diagonal contacts are linked on purpose: two
   photons landing diagonally next to each other then form one *invalid* event
   (pattern 13, flagged) instead of two singles with wrong energies.
3. A component is an event only if its brightest hit is above the **primary
   threshold**; the others are noise and are dropped (counted in the report).
4. The pattern code describes the shape relative to the brightest hit ``M`` (EPIC-pn
   convention, XMM-Newton SAS ``epevents``; axes: +Y = RAWY + 1, +Z = RAWZ + 1)::

       0          single
       1, 2, 3, 4 doubles: partner at +Z, +Y, -Z, -Y
                  (1 and 3 along the row axis, 2 and 4 along the column axis)
       5, 6, 7, 8 triples, L-shaped with M at the corner; the two partners are the
                  side neighbours of M at (+Y, +Z), (+Y, -Z), (-Y, -Z), (-Y, +Z)
       9-12       quadruples: 2x2 square with M at one corner, the square lying in the
                  quadrant (+Y, +Z), (+Y, -Z), (-Y, -Z), (-Y, +Z)
       13         anything else: more than 4 pixels, a diagonal-only contact, a straight
                  line of three, an L whose maximum is not at the corner (pile-up,
                  cosmic rays)

   MULTIPLICITY is the number of hits of the event (stored up to 9, the format limit).

Algorithm (no Python loop over frames or events; see ``docs/calibration.md`` for the
measured throughput): hits are addressed by the integer key
``(FRAME * 258 + RAWY + 1) * 258 + RAWZ + 1`` - a frame padded by one empty row and
column on each side, so that the four "forward" neighbours of a pixel are at key offsets
+1, +257, +258, +259 and no offset can wrap into another row or frame.  In the sorted key
array a pixel's forward neighbours are at most a few positions further on (frames are
sparse), so they are found by comparing the array with itself shifted by 1..K, with an
exact ``searchsorted`` fallback for the rare pixels whose window is crowded.  The
components are then labelled by min-label propagation with pointer jumping, and every
per-event quantity is a ``bincount`` reduction over event ids (no sort of the hits by
event).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io.formats import PATTERN_INVALID

__all__ = [
    "PATTERN_TABLE",
    "MAX_MULTIPLICITY_STORED",
    "Reconstruction",
    "pixel_keys",
    "neighbour_pairs",
    "label_components",
    "shape_mask",
    "reconstruct",
]

#: Padded frame width used in the pixel keys (one empty row/column on each side).
_W = C.N_PIX + 2
#: Key offsets of the forward neighbours (z+1; y+1 with z-1, z, z+1).
_FORWARD = np.array([1, _W - 1, _W, _W + 1], dtype=np.int64)
#: Window of the shifted comparison (see module docstring); 4 covers every pair unless
#: a frame has 4+ hits between a pixel and its next-row neighbours.
_BAND = 4

#: The format allows MULTIPLICITY up to 9; larger components are stored as 9.
MAX_MULTIPLICITY_STORED = 9


def _bit(dy: int, dz: int) -> int:
    """Bit of the 3x3 shape mask for an offset (dy, dz) in {-1, 0, 1} from the main hit."""
    return 1 << ((dy + 1) * 3 + (dz + 1))


def _build_pattern_table() -> np.ndarray:
    """Pattern code of every 3x3 shape mask (512 entries; the centre bit is the main hit)."""
    table = np.full(512, PATTERN_INVALID, dtype=np.int16)
    centre = _bit(0, 0)
    table[centre] = 0
    # Doubles: +Z, +Y, -Z, -Y.
    for code, (dy, dz) in zip((1, 2, 3, 4), ((0, 1), (1, 0), (0, -1), (-1, 0))):
        table[centre | _bit(dy, dz)] = code
    # Triples and quadruples by quadrant: (+Y,+Z), (+Y,-Z), (-Y,-Z), (-Y,+Z).
    for k, (sy, sz) in enumerate(((1, 1), (1, -1), (-1, -1), (-1, 1))):
        l_shape = centre | _bit(sy, 0) | _bit(0, sz)
        table[l_shape] = 5 + k
        table[l_shape | _bit(sy, sz)] = 9 + k
    return table


#: Pattern code indexed by the 9-bit shape mask around the brightest hit.
PATTERN_TABLE: np.ndarray = _build_pattern_table()


def pixel_keys(frame: np.ndarray, rawy: np.ndarray, rawz: np.ndarray) -> np.ndarray:
    """Integer pixel keys ``(FRAME * 258 + RAWY + 1) * 258 + RAWZ + 1`` (int64)."""
    f = np.asarray(frame, dtype=np.int64)
    return (f * _W + (np.asarray(rawy, dtype=np.int64) + 1)) * _W + (np.asarray(rawz, dtype=np.int64) + 1)


def neighbour_pairs(key: np.ndarray, band: int = _BAND) -> list[tuple[np.ndarray, np.ndarray]]:
    """All pairs ``(i, j)``, ``i < j``, of 8-connected neighbours among sorted unique keys.

    Parameters
    ----------
    key : ndarray of int64
        Pixel keys from :func:`pixel_keys`, strictly increasing.
    band : int
        Width of the shifted comparison; the result does not depend on it (pixels whose
        window is crowded are resolved by binary search), only the speed does.

    Returns
    -------
    list of (i, j)
        Groups of pairs (index arrays into ``key``); every pair appears in exactly one
        group, and within a group no index repeats among the ``i`` nor among the ``j``
        (a group holds one index shift or one neighbour offset), which lets
        :func:`label_components` scatter without write conflicts.
    """
    n = key.size
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    far = _FORWARD[-1]
    for d in range(1, min(band, n - 1) + 1):
        diff = key[d:] - key[:-d]
        cand = np.flatnonzero(diff <= far)
        if cand.size == 0:
            continue
        dc = diff[cand]
        hit = cand[(dc == 1) | (dc >= _W - 1)]
        if hit.size:
            groups.append((hit, hit + d))
    if n > band:
        # Pixels whose forward window holds more than `band` keys: neighbours beyond the
        # band may exist.  Search them exactly (rare: dense frames only).
        crowded = np.flatnonzero(key[band:] - key[:-band] <= far)
        if crowded.size:
            for off in _FORWARD:
                q = key[crowded] + off
                pos = np.searchsorted(key, q)
                found = (pos < n) & (pos - crowded > band)
                found[found] = key[pos[found]] == q[found]
                if found.any():
                    groups.append((crowded[found], pos[found]))
    return groups


def label_components(n: int, groups: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Component label of each of ``n`` nodes linked by edge groups: the smallest member index.

    Min-label propagation along the edges (``label[j] = min(label[j], label[i])`` then
    the reverse, one conflict-free scatter per group) alternated with pointer jumping
    (``label = label[label]``).  Labels never increase, every label is the index of a
    member of the same component, and each sweep strictly lowers a label across every
    edge whose ends still differ, so the fixed point - equal labels across every edge -
    is the component minimum.  X-ray events are a few pixels across, so two or three
    sweeps suffice; long cosmic-ray tracks take a few more (pointer jumping halves the
    remaining path length).
    """
    label = np.arange(n, dtype=np.intp)
    if not groups:
        return label
    while True:
        settled = True
        for i, j in groups:
            li = label[i]
            lj = label[j]
            if settled and not np.array_equal(li, lj):
                settled = False
            label[j] = np.minimum(lj, li)
            label[i] = np.minimum(label[i], label[j])
        if settled:
            return label
        label = label[label]
        label = label[label]


def shape_mask(dy: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """Bit of each hit offset in the 3x3 shape mask; 0 for offsets outside the 3x3 box."""
    inside = (np.abs(dy) <= 1) & (np.abs(dz) <= 1)
    bit = np.left_shift(1, ((dy + 1) * 3 + (dz + 1)).clip(0, 8))
    return np.where(inside, bit, 0)


@dataclass
class Reconstruction:
    """Events reconstructed from the hits of one observation.

    Hit arrays refer to the hits as given to :func:`reconstruct` (already in canonical
    order, or sorted by it: ``order`` maps them).

    Attributes
    ----------
    event_of_hit : ndarray of intp, shape (n_hits,)
        Event index of every hit; -1 for hits below the split threshold or in a
        component dropped by the primary threshold.
    main_hit : ndarray of intp, shape (n_events,)
        Index of the brightest hit of each event (its RAWY/RAWZ/TIME are the event's).
    multiplicity : ndarray of int, shape (n_events,)
        Number of hits of the event (not capped).
    pattern : ndarray of int16, shape (n_events,)
        Pattern code 0-13.
    n_below_split, n_below_primary : int
        Hits dropped by the split threshold, and components dropped by the primary
        threshold (noise).
    """

    event_of_hit: np.ndarray
    main_hit: np.ndarray
    multiplicity: np.ndarray
    pattern: np.ndarray
    n_below_split: int = 0
    n_below_primary: int = 0
    stats: dict = field(default_factory=dict)

    @property
    def n_events(self) -> int:
        return int(self.main_hit.size)

    def event_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-hit quantity over the hits of each event (float64)."""
        sel = self.event_of_hit >= 0
        return np.bincount(self.event_of_hit[sel], weights=np.asarray(values, dtype=float)[sel], minlength=self.n_events)

    def event_any(self, flags: np.ndarray) -> np.ndarray:
        """True for events with at least one hit where ``flags`` is true."""
        sel = (self.event_of_hit >= 0) & np.asarray(flags, dtype=bool)
        return np.bincount(self.event_of_hit[sel], minlength=self.n_events) > 0


def _check_hits(frame: np.ndarray, rawy: np.ndarray, rawz: np.ndarray) -> None:
    if rawy.size and (rawy.min() < 0 or rawy.max() >= C.N_PIX or rawz.min() < 0 or rawz.max() >= C.N_PIX):
        raise MXTInputError(f"hits outside the {C.N_PIX}x{C.N_PIX} detector", column="RAWY/RAWZ")
    if frame.size and frame.min() < 0:
        raise MXTInputError("negative frame counter", column="FRAME")


def reconstruct(
    frame: np.ndarray,
    rawy: np.ndarray,
    rawz: np.ndarray,
    energy: np.ndarray,
    split_threshold: float,
    primary_threshold: float,
    *,
    key: np.ndarray | None = None,
    engine: str = "auto",
) -> Reconstruction:
    """Group the hits into events and classify their patterns.

    Parameters
    ----------
    frame, rawy, rawz : ndarray of int
        Frame counter and pixel of every hit.  Best given in canonical order (sorted by
        :func:`pixel_keys`, as :func:`mxt_pipeline.calib.ingest.merge_passes` returns
        them); other orders are sorted here first, with the same result.
    energy : ndarray of float
        Hit energies (keV) after gain, offset and CTI correction: the thresholds apply
        to them.
    split_threshold, primary_threshold : float
        Thresholds in keV (CALDB PATTERN).
    key : ndarray of int64, optional
        :func:`pixel_keys` of the hits, when the caller has them already.
    engine : {"auto", "numba", "numpy"}
        Compiled single-pass kernel (:mod:`._kernels`, default when numba is installed)
        or the vectorised numpy implementation; both give identical results.

    Returns
    -------
    Reconstruction

    Raises
    ------
    MXTInputError
        Hits outside the detector, negative frame counters, or two hits of one frame on
        the same pixel.
    """
    from mxt_pipeline.calib import _kernels

    frame = np.asarray(frame)
    rawy = np.asarray(rawy)
    rawz = np.asarray(rawz)
    energy = np.asarray(energy, dtype=float)
    n_all = frame.size
    if not (rawy.size == rawz.size == energy.size == n_all):
        raise MXTInputError("hit columns of unequal length")
    _check_hits(frame, rawy, rawz)
    if engine == "auto":
        engine = "numba" if _kernels.HAVE_NUMBA else "numpy"
    if engine not in ("numba", "numpy"):
        raise ValueError(f"unknown engine {engine!r}")

    key = pixel_keys(frame, rawy, rawz) if key is None else np.asarray(key, dtype=np.int64)
    order = None
    if n_all > 1 and not np.all(key[1:] > key[:-1]):
        order = np.argsort(key, kind="stable")
        key = key[order]
        if np.any(key[1:] == key[:-1]):
            raise MXTInputError("two hits of one frame on the same pixel", column="RAWY/RAWZ")
    e = energy if order is None else energy[order]

    if engine == "numba":
        ev, main, mult, pattern, n_below_split, n_below_primary = _kernels.reconstruct_sorted(
            key, e, float(split_threshold), float(primary_threshold), PATTERN_TABLE, PATTERN_INVALID
        )
        event_of_hit = ev.astype(np.intp, copy=False)
        main = main.astype(np.intp, copy=False)
        stats = {}
    else:
        event_of_hit, main, mult, pattern, n_below_split, n_below_primary, stats = _reconstruct_numpy(
            key, e, split_threshold, primary_threshold
        )
    if order is not None:
        # Back to the caller's hit order.
        out = np.empty_like(event_of_hit)
        out[order] = event_of_hit
        event_of_hit = out
        main = order[main]
    return Reconstruction(
        event_of_hit=event_of_hit,
        main_hit=main,
        multiplicity=mult,
        pattern=pattern,
        n_below_split=int(n_below_split),
        n_below_primary=int(n_below_primary),
        stats=stats,
    )


def _reconstruct_numpy(key: np.ndarray, energy: np.ndarray, split_threshold: float, primary_threshold: float):
    """The vectorised numpy implementation of :func:`reconstruct` on sorted unique keys."""
    n_all = key.size
    idx_kept = np.flatnonzero(energy >= split_threshold)
    key = key[idx_kept]
    n = key.size
    e = energy[idx_kept]
    y = (key // _W) % _W
    z = key % _W

    groups = neighbour_pairs(key)
    label = label_components(n, groups)
    pi = np.concatenate([g[0] for g in groups]) if groups else np.zeros(0, dtype=np.intp)
    pj = np.concatenate([g[1] for g in groups]) if groups else np.zeros(0, dtype=np.intp)
    is_root = label == np.arange(n)
    comp_of_root = np.cumsum(is_root) - 1
    comp = comp_of_root[label]
    n_comp = int(comp_of_root[-1] + 1) if n else 0

    mult = np.bincount(comp, minlength=n_comp)
    # Brightest hit per component.  Most components are single hits: reduce only the
    # hits that have a partner.
    paired = np.zeros(n, dtype=bool)
    paired[pi] = True
    paired[pj] = True
    emax = np.full(n_comp, -np.inf)
    emax[comp[~paired]] = e[~paired]
    hp = np.flatnonzero(paired)
    np.maximum.at(emax, comp[hp], e[hp])
    main = np.empty(n_comp, dtype=np.intp)
    main[comp[~paired]] = np.flatnonzero(~paired)
    cand = hp[e[hp] == emax[comp[hp]]]
    if cand.size:
        # Ties (equal energies): the first hit in key order wins.
        first = np.full(n_comp, n, dtype=np.intp)
        np.minimum.at(first, comp[cand], cand)
        has = first < n
        main[has] = first[has]

    # Shape of the multi-hit components relative to their brightest hit.
    pattern = np.zeros(n_comp, dtype=np.int16)
    if hp.size:
        mask = np.full(n_comp, _bit(0, 0), dtype=np.int64)
        ch = comp[hp]
        dy = y[hp] - y[main[ch]]
        dz = z[hp] - z[main[ch]]
        bits = shape_mask(dy, dz)
        outside = bits == 0
        mask_sum = np.bincount(ch, weights=bits, minlength=n_comp)
        multi = mult > 1
        # Bits of distinct pixels never collide, so the sum of bits is their OR.
        mask[multi] = mask_sum[multi].astype(np.int64)
        pattern = PATTERN_TABLE[mask]
        far = np.bincount(ch[outside], minlength=n_comp) > 0
        pattern[far | (mult > 4)] = PATTERN_INVALID

    # Primary threshold on the brightest hit.
    good = emax >= primary_threshold
    n_below_primary = int(n_comp - np.count_nonzero(good))
    new_id = np.cumsum(good) - 1
    ev_kept = np.where(good[comp], new_id[comp], -1)
    event_of_hit = np.full(n_all, -1, dtype=np.intp)
    event_of_hit[idx_kept] = ev_kept
    stats = {"n_pairs": int(pi.size), "n_components": n_comp}
    return event_of_hit, idx_kept[main[good]], mult[good], pattern[good], n_all - n, n_below_primary, stats
