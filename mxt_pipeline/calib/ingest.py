"""Ingest the L1 raw passes of an observation: merge, de-duplicate, sort, report.

A ground-station pass delivers the frames recorded since the previous contact; passes
may overlap (the same frames downlinked twice) and arrive in any order.  Rules:

* every pass must belong to the same observation (OBS_ID) and frame time (FRAMETIM);
* a frame counter seen in several passes is kept from **one** pass only: the copy with
  the most hits (a pass cut short by loss of signal can hold a truncated frame), ties
  going to the lowest PASS_ID.  The choice depends only on the content, not on the
  order in which the passes are given.  Copies that differ are counted as conflicts;
* within a frame, a second hit on the same pixel is impossible for a CCD read once per
  frame (telemetry corruption): the later copies are dropped;
* hits outside the 256 x 256 detector or with a non-finite time are dropped, as are
  hits outside the pass coverage (the union of the passes' GTIs);
* the result is sorted in canonical order, by FRAME then RAWY then RAWZ
  (:func:`mxt_pipeline.calib.patterns.pixel_keys`), and TIME must not decrease with
  FRAME.

Every dropped hit is counted under its reason in :class:`IngestReport`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from astropy.table import Table

from mxt_pipeline import constants as C
from mxt_pipeline.calib.energy import adc_dither
from mxt_pipeline.calib.patterns import pixel_keys
from mxt_pipeline.datamodel import GTI, RawHits
from mxt_pipeline.errors import MXTInputError

__all__ = ["IngestReport", "merge_passes", "DROP_REASONS"]

#: Reasons for which ingestion drops hits (keys of ``IngestReport.dropped``).
DROP_REASONS = (
    "duplicate_frame",  # frame also delivered by another pass, which was kept
    "duplicate_pixel",  # second hit on one pixel within one frame
    "outside_detector",  # RAWY or RAWZ outside 0-255
    "bad_time",  # TIME not finite
    "outside_coverage",  # TIME outside the GTI of every pass
)


@dataclass
class IngestReport:
    """What ingestion read, kept and dropped (and why)."""

    n_passes: int = 0
    pass_ids: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    n_hits_read: int = 0
    n_hits_kept: int = 0
    n_frames_kept: int = 0
    n_duplicate_frames: int = 0
    n_conflicting_frames: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))

    def to_dict(self) -> dict:
        """A JSON-serialisable copy."""
        return asdict(self)


def _pass_arrays(hits: RawHits, k: int) -> dict[str, np.ndarray]:
    # The stored integer types are kept (int16 pixels and PHA, int32 frames): widening
    # every column to int64 up front quadrupled the memory ingestion touches.  The
    # arithmetic that needs 64 bits (frame-pass and pixel keys) widens its own operands.
    def integer(name: str) -> np.ndarray:
        arr = np.asarray(hits[name])
        return arr if arr.dtype.kind in "iu" else arr.astype(np.int64)

    return {
        "TIME": np.asarray(hits["TIME"], dtype=np.float64),
        "FRAME": integer("FRAME"),
        "RAWY": integer("RAWY"),
        "RAWZ": integer("RAWZ"),
        "PHA": integer("PHA"),
        "PASS": np.full(len(hits), k, dtype=np.int16 if k < 2**15 else np.int64),
    }


def _check_consistency(passes: Sequence[RawHits]) -> tuple[str | None, float]:
    obs_ids = {p.meta.get("OBS_ID") for p in passes} - {None}
    if len(obs_ids) > 1:
        files = [p.meta.get("FILE", f"pass {i}") for i, p in enumerate(passes)]
        raise MXTInputError(f"passes of different observations {sorted(map(str, obs_ids))}: {files}", keyword="OBS_ID")
    ftimes = {float(p.meta.get("FRAMETIM", C.FRAME_TIME_S)) for p in passes}
    if len(ftimes) > 1:
        raise MXTInputError(f"passes with different frame times {sorted(ftimes)}", hdu="EVENTS", keyword="FRAMETIM")
    return (obs_ids.pop() if obs_ids else None), ftimes.pop()


def merge_passes(passes: Sequence[RawHits]) -> tuple[RawHits, IngestReport]:
    """Merge the raw hits of every pass into one canonical, de-duplicated hit list.

    Parameters
    ----------
    passes : sequence of RawHits
        One per L1 raw file (``meta`` with PASS_ID, OBS_ID, FRAMETIM, FILE).

    Returns
    -------
    hits : RawHits
        Sorted by (FRAME, RAWY, RAWZ); ``gti`` is the union of the pass coverages;
        ``meta`` holds OBS_ID, OBJECT, FRAMETIM and PASS_IDS.
    report : IngestReport

    Raises
    ------
    MXTInputError
        No pass, passes of different observations or frame times, two passes with the
        same PASS_ID, or TIME decreasing while FRAME increases.
    """
    if len(passes) == 0:
        raise MXTInputError("no L1 raw pass to ingest")
    obs_id, frametim = _check_consistency(passes)
    # Rank passes by PASS_ID (then by position when absent) so the result does not
    # depend on the order they were given in.
    ids = [int(p.meta["PASS_ID"]) if "PASS_ID" in p.meta else None for p in passes]
    if any(i is None for i in ids):
        if not all(i is None for i in ids):
            raise MXTInputError("some passes lack PASS_ID", keyword="PASS_ID")
        ids = list(range(len(passes)))
    if len(set(ids)) != len(ids):
        raise MXTInputError(f"duplicate PASS_ID values {sorted(ids)}", keyword="PASS_ID")
    rank_of = {pid: r for r, pid in enumerate(sorted(ids))}
    report = IngestReport(
        n_passes=len(passes),
        pass_ids=sorted(ids),
        # File names, not paths: the report is a product and must not depend on
        # where the dataset happened to lie.
        files=[os.path.basename(str(passes[ids.index(pid)].meta.get("FILE", ""))) for pid in sorted(ids)],
    )
    cols = [_pass_arrays(p, rank_of[pid]) for p, pid in zip(passes, ids)]
    a = {k: np.concatenate([c[k] for c in cols]) for k in cols[0]}
    del cols
    report.n_hits_read = int(a["TIME"].size)
    coverage = GTI.empty()
    for p in passes:
        coverage = coverage.union(p.gti)

    # Every hit is judged on the original arrays and the survivors are gathered once,
    # in their final order: at 1e7 hits each intermediate copy of the six columns is
    # ~0.3 GB of fresh memory, and zeroing fresh pages cost more than the work itself.
    # Reasons are counted in order (a hit with a bad time is not also counted outside
    # the detector).
    bad = ~np.isfinite(a["TIME"])
    report.dropped["bad_time"] += int(np.count_nonzero(bad))
    y, z = a["RAWY"], a["RAWZ"]
    outside = ((y < 0) | (y >= C.N_PIX) | (z < 0) | (z >= C.N_PIX)) & ~bad
    report.dropped["outside_detector"] += int(np.count_nonzero(outside))
    bad |= outside
    uncovered = ~coverage.contains(a["TIME"]) & ~bad
    report.dropped["outside_coverage"] += int(np.count_nonzero(uncovered))
    bad |= uncovered
    idx = np.flatnonzero(~bad)
    del bad, outside, uncovered

    n_pass = len(passes)
    if idx.size:
        # One (frame, pass) group per copy of a frame; pick one copy per frame.
        fp = a["FRAME"][idx].astype(np.int64) * n_pass + a["PASS"][idx]
        fp_u, fp_inv, fp_n = np.unique(fp, return_inverse=True, return_counts=True)
        del fp
        frame_u = fp_u // n_pass
        pass_u = fp_u % n_pass
        order = np.lexsort((pass_u, -fp_n, frame_u))
        first = np.r_[True, frame_u[order][1:] != frame_u[order][:-1]]
        chosen = np.zeros(fp_u.size, dtype=bool)
        chosen[order[first]] = True
        n_copies = np.bincount(np.searchsorted(np.unique(frame_u), frame_u))
        report.n_duplicate_frames = int(np.count_nonzero(n_copies > 1))
        # A duplicated frame is a conflict when its copies differ in size or content.
        dup_frames = np.unique(frame_u)[n_copies > 1]
        if dup_frames.size:
            kept = {k: v[idx] for k, v in a.items()}
            report.n_conflicting_frames = _count_conflicts(kept, fp_inv, frame_u, dup_frames)
            del kept
        keep = chosen[fp_inv]
        report.dropped["duplicate_frame"] += int(idx.size - np.count_nonzero(keep))
        idx = idx[keep]
        del fp_inv, keep

    key = pixel_keys(a["FRAME"][idx], a["RAWY"][idx], a["RAWZ"][idx])
    order = np.argsort(key, kind="stable")
    key = key[order]
    dup = np.r_[False, key[1:] == key[:-1]]
    report.dropped["duplicate_pixel"] += int(np.count_nonzero(dup))
    idx = idx[order[~dup]] if dup.any() else idx[order]
    del key, order, dup
    a = {k: v[idx] for k, v in a.items()}

    t, f = a["TIME"], a["FRAME"]
    if t.size > 1:
        back = np.flatnonzero(np.diff(t) < 0)
        if back.size:
            i = back[0]
            raise MXTInputError(
                f"TIME decreases while FRAME increases (frame {f[i]} at {t[i]!r} s, frame {f[i + 1]} at {t[i + 1]!r} s)",
                hdu="EVENTS",
                column="TIME",
            )
    report.n_hits_kept = int(t.size)
    report.n_frames_kept = int(np.count_nonzero(np.r_[True, f[1:] != f[:-1]])) if f.size else 0
    table = Table(
        {
            "TIME": t,
            "FRAME": f.astype(np.int32, copy=False),
            "RAWY": a["RAWY"].astype(np.int16, copy=False),
            "RAWZ": a["RAWZ"].astype(np.int16, copy=False),
            "PHA": a["PHA"].astype(np.int16, copy=False),
        },
        copy=False,
    )
    meta = {"FRAMETIM": frametim, "PASS_IDS": sorted(ids)}
    if obs_id is not None:
        meta["OBS_ID"] = obs_id
    objects = {p.meta.get("OBJECT") for p in passes} - {None}
    if objects:
        meta["OBJECT"] = sorted(objects)[0]
    return RawHits(table, gti=coverage, meta=meta), report


def _count_conflicts(a: dict[str, np.ndarray], fp_inv: np.ndarray, frame_u: np.ndarray, dup_frames: np.ndarray) -> int:
    """Number of duplicated frames whose copies are not identical (same hits, times, values).

    Each hit is hashed (:func:`~mxt_pipeline.calib.energy.adc_dither` mixing of pixel
    key, PHA and TIME bits); a copy of a frame is summarised by the count and the exact
    integer sum of its hashes, which does not depend on the order of its hits.
    """
    sel = np.isin(frame_u[fp_inv], dup_frames)
    if not sel.any():
        return 0
    k = pixel_keys(a["FRAME"][sel], a["RAWY"][sel], a["RAWZ"][sel])
    mix = k * 1_000_003 + a["PHA"][sel] * 7919 + a["TIME"][sel].view(np.int64)
    h = ((adc_dither(mix) + 0.5) * 2.0**40).astype(np.int64)
    groups = fp_inv[sel]
    n_groups = frame_u.size
    hsum = np.zeros(n_groups, dtype=np.int64)
    np.add.at(hsum, groups, h)
    count = np.bincount(groups, minlength=n_groups)
    present = count > 0
    g_frame, g_sum, g_count = frame_u[present], hsum[present], count[present]
    # Per frame: the copies agree when min == max of both summaries.
    order = np.argsort(g_frame, kind="stable")
    g_frame, g_sum, g_count = g_frame[order], g_sum[order], g_count[order]
    starts = np.flatnonzero(np.r_[True, g_frame[1:] != g_frame[:-1]])
    differ = (np.maximum.reduceat(g_sum, starts) != np.minimum.reduceat(g_sum, starts)) | (
        np.maximum.reduceat(g_count, starts) != np.minimum.reduceat(g_count, starts)
    )
    return int(np.count_nonzero(differ))
